"""Causal Kalman filter for the fitted DFM state space, one step at a time.

Why our own filter: statsmodels re-creates a results object for every new row
(`results.extend`), about 60 ms per row; a replay over days needs microseconds.
This kernel runs the recursions of statsmodels' default filter on the matrices
taken from the fitted model, so it reproduces `filtered_state` to rounding:

- conventional (multivariate) update with Durbin-Koopman timing; missing entries
  are dropped from the observation vector and a fully missing row leaves the
  prediction unchanged;
- when the forecast-error covariance F is not positive definite (Cholesky fails,
  or a single observation has F < 1e-12) that step falls back to the sequential
  univariate update, which skips observations with variance <= 1e-10;
- the predicted covariance is symmetrised after each prediction;
- steady state: once the predicted covariance moves by less than 1e-19 (sum of
  squares) between two complete rows, F, P_{t|t} and the predicted covariance
  are frozen (at statsmodels' stored values) until a row with a missing entry
  arrives.

The carried state is the *predicted* pair (a_{t|t-1}, P_{t|t-1}) plus the
steady-state bookkeeping, exactly what statsmodels starts `extend` from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

CONVERGENCE_TOL = 1e-19  # statsmodels' KalmanFilter default `tolerance`


@dataclass
class StateSpace:
    """Time-invariant state space y_t = Z a_t + e_t, a_{t+1} = T a_t + R eta_t.

    `state_cov` is the selected covariance R Q R' (k_states x k_states) and
    `obs_cov` is H (zero in a DFM with idiosyncratic AR(1) states).
    """

    transition: np.ndarray
    design: np.ndarray
    state_cov: np.ndarray
    obs_cov: np.ndarray

    @property
    def k_states(self) -> int:
        return self.transition.shape[0]

    @property
    def k_endog(self) -> int:
        return self.design.shape[0]


@dataclass
class FilterState:
    """Everything the filter carries from one row to the next.

    flags[0]: steady state reached; flags[1]: previous row had a missing entry
    (a fresh filter starts with 1 so that its first row cannot declare convergence).
    """

    a: np.ndarray
    p: np.ndarray
    flags: np.ndarray
    conv_f: np.ndarray
    conv_chol: np.ndarray
    conv_pf: np.ndarray
    conv_p: np.ndarray

    @classmethod
    def start(cls, a: np.ndarray, p: np.ndarray, k_endog: int) -> FilterState:
        """A fresh filter run from the predicted state (a, p) of its first row."""
        k = a.shape[0]
        return cls(
            a=np.array(a, dtype=np.float64, copy=True),
            p=np.array(p, dtype=np.float64, copy=True),
            flags=np.array([0, 1], dtype=np.int64),
            conv_f=np.zeros((k_endog, k_endog)),
            conv_chol=np.zeros((k_endog, k_endog)),
            conv_pf=np.zeros((k, k)),
            conv_p=np.zeros((k, k)),
        )

    def copy(self) -> FilterState:
        return FilterState(*(x.copy() for x in (
            self.a, self.p, self.flags, self.conv_f, self.conv_chol, self.conv_pf, self.conv_p)))


def run_filter(
    ss: StateSpace, state: FilterState, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Filter the rows of y (NaN = missing) from `state`, which is advanced in place.

    Returns the filtered states a_{t|t} (n x k_states) and the diagonals of P_{t|t}.
    """
    y = np.ascontiguousarray(y, dtype=np.float64)
    n = y.shape[0]
    out_state = np.empty((n, ss.k_states))
    out_var = np.empty((n, ss.k_states))
    filter_rows(
        y, ss.transition, ss.design, ss.state_cov, ss.obs_cov,
        state.a, state.p, state.flags, state.conv_f, state.conv_chol, state.conv_pf,
        state.conv_p, out_state, out_var,
    )
    return out_state, out_var


@numba.njit(cache=True)
def filter_rows(
    y: np.ndarray,
    transition: np.ndarray,
    design: np.ndarray,
    state_cov: np.ndarray,
    obs_cov: np.ndarray,
    a: np.ndarray,
    p: np.ndarray,
    flags: np.ndarray,
    conv_f: np.ndarray,
    conv_chol: np.ndarray,
    conv_pf: np.ndarray,
    conv_p: np.ndarray,
    out_state: np.ndarray,
    out_var: np.ndarray,
) -> None:
    """Kernel behind `run_filter`; all state arrays are updated in place."""
    n, k_endog = y.shape
    k = a.shape[0]
    obs = np.empty(k_endog, dtype=np.int64)
    af = np.empty(k)
    pf = np.empty((k, k))
    design_t = np.ascontiguousarray(design.T)
    transition_t = np.ascontiguousarray(transition.T)
    for t in range(n):
        n_obs = 0
        for i in range(k_endog):
            if not np.isnan(y[t, i]):
                obs[n_obs] = i
                n_obs += 1
        missing = n_obs < k_endog
        if missing:
            flags[0] = 0
        converged = flags[0] == 1
        multivariate = False
        f = np.empty((0, 0))
        chol = np.empty((0, 0))
        if n_obs == 0:
            af[:] = a
            pf[:, :] = p
        elif converged:
            v = y[t] - design @ a
            pz = p @ design_t
            if k_endog == 1:
                finv_v = v / conv_f[0, 0]
            else:
                finv_v = _chol_solve(conv_chol, v.reshape(k_endog, 1)).ravel()
            af[:] = a + pz @ finv_v
            pf[:, :] = conv_pf
        else:
            z = np.empty((n_obs, k))
            v = np.empty(n_obs)
            for r in range(n_obs):
                z[r, :] = design[obs[r], :]
                v[r] = y[t, obs[r]] - np.dot(z[r, :], a)
            pz = p @ np.ascontiguousarray(z.T)  # k x n_obs
            f = z @ pz
            for r in range(n_obs):
                for c in range(n_obs):
                    f[r, c] += obs_cov[obs[r], obs[c]]
            chol = np.zeros((n_obs, n_obs))
            if n_obs > 1 and _cholesky(f, chol):
                finv_v = _chol_solve(chol, v.reshape(n_obs, 1)).ravel()
                finv_z = _chol_solve(chol, z)
                af[:] = a + pz @ finv_v
                pf[:, :] = p - (pz @ finv_z) @ p
                multivariate = True
            elif n_obs == 1 and f[0, 0] >= 1e-12:
                af[:] = a + pz[:, 0] * (v[0] / f[0, 0])
                pf[:, :] = p - (pz @ (z / f[0, 0])) @ p
                multivariate = True
            else:
                _univariate_update(y[t], obs[:n_obs], design, obs_cov, a, p, af, pf)
        out_state[t, :] = af
        for i in range(k):
            out_var[t, i] = pf[i, i]
        a[:] = transition @ af
        if converged:
            p[:, :] = conv_p
        else:
            pn = (transition @ pf) @ transition_t + state_cov
            pn = 0.5 * (pn + pn.T)
            if multivariate and not missing and flags[1] == 0:
                d = p - pn
                if np.sum(d * d) < CONVERGENCE_TOL:
                    flags[0] = 1
                    conv_f[:, :] = f
                    conv_chol[:, :] = chol
                    conv_pf[:, :] = pf
                    conv_p[:, :] = p
            p[:, :] = pn
        flags[1] = 1 if missing else 0


@numba.njit(cache=True)
def _univariate_update(
    y_t: np.ndarray,
    obs: np.ndarray,
    design: np.ndarray,
    obs_cov: np.ndarray,
    a: np.ndarray,
    p: np.ndarray,
    af: np.ndarray,
    pf: np.ndarray,
) -> None:
    """Sequential (univariate) update, statsmodels' fallback when F is singular.

    Observations whose forecast variance is at most 1e-10 carry no information
    and are skipped, as in statsmodels' univariate filter.
    """
    af[:] = a
    pf[:, :] = p
    k = a.shape[0]
    pz = np.empty(k)
    for i in obs:
        f = obs_cov[i, i]
        v = y_t[i]
        for r in range(k):
            pz[r] = 0.0
            for c in range(k):
                pz[r] += pf[r, c] * design[i, c]
        for r in range(k):
            f += design[i, r] * pz[r]
            v -= design[i, r] * af[r]
        if f < 0.0:
            f = 0.0
        if f > 1e-10:
            for r in range(k):
                af[r] += pz[r] * v / f
            for r in range(k):
                for c in range(k):
                    pf[r, c] -= pz[r] * pz[c] / f
    for r in range(k):
        for c in range(r + 1, k):
            pf[c, r] = pf[r, c]


@numba.njit(cache=True)
def _cholesky(f: np.ndarray, chol: np.ndarray) -> bool:
    """Lower Cholesky factor of f into chol; False when f is not positive definite."""
    m = f.shape[0]
    for j in range(m):
        s = f[j, j]
        for q in range(j):
            s -= chol[j, q] * chol[j, q]
        if not s > 0.0:
            return False
        d = np.sqrt(s)
        chol[j, j] = d
        for i in range(j + 1, m):
            s = f[i, j]
            for q in range(j):
                s -= chol[i, q] * chol[j, q]
            chol[i, j] = s / d
    return True


@numba.njit(cache=True)
def _chol_solve(chol: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve (L L') x = b for lower-triangular L by two triangular sweeps."""
    m, ncol = b.shape
    x = np.empty((m, ncol))
    for c in range(ncol):
        for i in range(m):
            s = b[i, c]
            for j in range(i):
                s -= chol[i, j] * x[j, c]
            x[i, c] = s / chol[i, i]
        for i in range(m - 1, -1, -1):
            s = x[i, c]
            for j in range(i + 1, m):
                s -= chol[j, i] * x[j, c]
            x[i, c] = s / chol[i, i]
    return x
