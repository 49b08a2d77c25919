"""Memory in returns, volatility and order flow: ACFs, Ljung-Box, ARCH-LM, power-law decay.

- Linear autocorrelation of returns is small beyond a few lags (arbitrage), while |r| and r^2
  stay correlated for hours to days (volatility clustering) and their ACF decays like a power
  law tau^-beta. Trade signs are long-memory too: ACF(sign) ~ tau^-gamma with gamma < 1 (order
  splitting). Exponents are OLS slopes on log-log over log-spaced lags 1..max_lag with a positive
  ACF, so that long lags do not outweigh short ones.
"""

from __future__ import annotations

import math

import numpy as np
from statsmodels.stats.diagnostic import het_arch
from statsmodels.tsa.stattools import acf as sm_acf
from statsmodels.tsa.stattools import q_stat

from calibrate.facts.config import FactParams
from calibrate.facts.result import Band, Fact, judged, missing
from calibrate.facts.returns import finite


def acf(x: np.ndarray, max_lag: int) -> np.ndarray:
    """Sample ACF at lags 1..max_lag (FFT, biased estimator); NaN for a constant series."""
    x = finite(x)
    lags = min(max_lag, len(x) - 1)
    if lags < 1 or not np.std(x) > 0:
        return np.full(max(lags, 0), np.nan)
    return np.asarray(sm_acf(x, nlags=lags, fft=True, missing="none"))[1:]


def loglags(max_lag: int, points: int = 30) -> np.ndarray:
    """About `points` distinct integer lags, evenly spaced in log between 1 and max_lag."""
    return np.unique(np.round(np.logspace(0, math.log10(max_lag), points)).astype(np.int64))


def powerlaw_exponent(rho: np.ndarray, floor: float = 0.0,
                      min_points: int = 5) -> tuple[float, float, int]:
    """(exponent, R^2, points) of rho(tau) ~ tau^-exponent, rho given at lags 1..len(rho), fitted
    on the log-spaced lags where rho > floor (pass the noise level 1.96/sqrt(n) so that an
    uncorrelated series has nothing to fit rather than a spurious slope)."""
    if len(rho) < 2:
        return math.nan, math.nan, 0
    lags = loglags(len(rho))
    vals = rho[lags - 1]
    ok = np.isfinite(vals) & (vals > floor)
    if ok.sum() < min_points:
        return math.nan, math.nan, int(ok.sum())
    lx, ly = np.log(lags[ok]), np.log(vals[ok])
    slope, icpt = np.polyfit(lx, ly, 1)
    resid = ly - (slope * lx + icpt)
    tot = np.sum((ly - ly.mean()) ** 2)
    r2 = 1.0 - np.sum(resid ** 2) / tot if tot > 0 else math.nan
    return float(-slope), float(r2), int(ok.sum())


def noise_level(n: int) -> float:
    """95% band of a sample ACF under no correlation."""
    return 1.96 / math.sqrt(n)


def _short(name: str, band: Band | None, x: np.ndarray, params: FactParams) -> Fact | None:
    if len(x) < params.min_returns:
        return missing(name, band, f"{len(x)} values < min_returns={params.min_returns}")
    if not np.std(x) > 0:
        return missing(name, band, "series is constant")
    return None


def linear_autocorrelation_fact(r: np.ndarray, band: Band | None, params: FactParams) -> Fact:
    x = finite(r)
    if (bad := _short("linear_autocorrelation", band, x, params)) is not None:
        return bad
    rho = acf(x, max(params.linear_lags, params.ljung_box_lags))
    # Ljung-Box from the FFT ACF (statsmodels' acorr_ljungbox recomputes it in O(n^2))
    q, p = q_stat(rho[:params.ljung_box_lags], len(x))
    return judged("linear_autocorrelation", float(np.nanmax(np.abs(rho[:params.linear_lags]))), band,
                  {"acf_lag1": float(rho[0]), "ljung_box_q": float(q[-1]),
                   "ljung_box_p": float(p[-1]), "ljung_box_lags": len(q)})


def volatility_clustering_fact(r: np.ndarray, band: Band | None, params: FactParams) -> Fact:
    x = finite(r)
    if (bad := _short("volatility_clustering", band, x, params)) is not None:
        return bad
    a = acf(np.abs(x), params.cluster_lags)
    s = acf(x * x, params.cluster_lags)
    return judged("volatility_clustering", float(np.nanmean(a)), band,
                  {"acf_abs_lag1": float(a[0]), "acf_sq_lag1": float(s[0]),
                   "acf_sq_mean": float(np.nanmean(s)), "lags": len(a)})


def volatility_decay_fact(r: np.ndarray, band: Band | None, params: FactParams) -> Fact:
    x = finite(r)
    if (bad := _short("volatility_decay_exponent", band, x, params)) is not None:
        return bad
    beta, r2, pts = powerlaw_exponent(acf(np.abs(x), params.max_lag), noise_level(len(x)))
    if not math.isfinite(beta):
        return missing("volatility_decay_exponent", band,
                       f"only {pts} lags with ACF(|r|) above the noise level to fit", {"points": pts})
    return judged("volatility_decay_exponent", beta, band, {"r2": r2, "points": pts})


def arch_fact(r: np.ndarray, band: Band | None, params: FactParams) -> Fact:
    x = finite(r)
    if (bad := _short("arch_effect", band, x, params)) is not None:
        return bad
    lags = min(params.arch_lags, len(x) // 4)
    res = het_arch(x - x.mean(), nlags=lags, result_object=True)
    return judged("arch_effect", float(res.lmpval), band, {"lm": float(res.lm), "lags": lags})


def leverage_fact(r: np.ndarray, band: Band | None, params: FactParams) -> Fact:
    """mean over tau of corr(r_t, r^2_{t+tau}): reported, since crypto shows no stable sign."""
    x = finite(r)
    if (bad := _short("leverage", band, x, params)) is not None:
        return bad
    lags = range(1, min(params.leverage_lags, len(x) // 4) + 1)
    sq = x * x
    corr = [float(np.corrcoef(x[:-t], sq[t:])[0, 1]) for t in lags]
    return judged("leverage", float(np.nanmean(corr)), band, {"by_lag": corr})


def order_signs(signed_volume: np.ndarray) -> np.ndarray:
    """Per-bar order-flow sign (+1 buy-initiated, -1 sell-initiated); bars with none dropped."""
    s = np.sign(finite(signed_volume))
    return s[s != 0]


def sign_memory_fact(signs: np.ndarray, band: Band | None, params: FactParams) -> Fact:
    s = finite(signs)
    if (bad := _short("order_sign_memory", band, s, params)) is not None:
        return bad
    gamma, r2, pts = powerlaw_exponent(acf(s, params.max_lag), noise_level(len(s)))
    if not math.isfinite(gamma):
        return missing("order_sign_memory", band,
                       f"only {pts} lags with sign ACF above the noise level to fit",
                       {"points": pts, "n": len(s)})
    return judged("order_sign_memory", gamma, band, {"r2": r2, "points": pts, "n": len(s)})
