"""Fit the block dynamic factor model with statsmodels and extract its state space.

The fit is statsmodels' `DynamicFactorMQ` (EM, missing data, one factor per named
block) on a window of past rows that we standardise ourselves, so that the same
means/stds can be applied to later rows. Everything the causal filter needs is
read off the fitted model: transition, design, R Q R', H, the state layout (each
block's factor and its lags, then one idiosyncratic AR(1) state per series) and
the predicted state after the last window row. Factor signs are then fixed by
anchor series (see `anchor_signs`).

A factor's scale and level are only identified up to the fit (EM picks them), so
the model reports each factor as a z-score against its filtered values over the
fit window: values stay comparable across refits, and "+1" means one window
standard deviation above the window's average state.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from statsmodels.tsa.statespace.dynamic_factor_mq import DynamicFactorMQ

from models.regimes.config import RegimeConfig
from models.regimes.kalman import FilterState, StateSpace


class DegenerateWindowError(ValueError):
    """The fit window cannot identify the model (a series is constant or too sparse)."""


@dataclass
class FittedDFM:
    """One fit: standardisation, sign-anchored state space and where the filter resumes."""

    params: np.ndarray  # statsmodels' parameter vector, kept to warm-start the next fit
    mean: np.ndarray
    std: np.ndarray
    ss: StateSpace
    factor_index: np.ndarray  # state position of each block's current factor
    signs: np.ndarray  # +1/-1 applied to each block after the fit
    end_state: FilterState  # predicted state for the first row after the window
    factor_mean: np.ndarray  # mean and std of each filtered factor over the window:
    factor_std: np.ndarray  # reported factors are z-scores against these
    window_factors: np.ndarray  # z-scored filtered factors over the window (rows x blocks)
    em_iterations: int
    state_names: list[str]


def statsmodels_factors(config: RegimeConfig) -> dict[str, list[str]]:
    """`factors={series: [block names]}` as DynamicFactorMQ expects it."""
    return {
        s: [b for b, series in config.blocks.items() if s in series] for s in config.series
    }


def standardise_window(window: np.ndarray, config: RegimeConfig) -> tuple[np.ndarray, np.ndarray]:
    """Means and stds of each series on the window; raise if a series cannot be fitted."""
    counts = np.sum(~np.isnan(window), axis=0)
    for name, count in zip(config.series, counts, strict=True):
        if count < config.min_obs:
            raise DegenerateWindowError(
                f"series {name!r}: {int(count)} observed values in the fit window, "
                f"need regimes.min_obs={config.min_obs}"
            )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(window, axis=0)
        std = np.nanstd(window, axis=0)
    for name, s in zip(config.series, std, strict=True):
        if not s > 1e-10:
            raise DegenerateWindowError(f"series {name!r} is constant in the fit window")
    return mean, std


def fit_dfm(
    window: np.ndarray, config: RegimeConfig, start_params: np.ndarray | None = None
) -> FittedDFM:
    """Fit on `window` (rows x series, raw units, NaN = missing), warm-started if given."""
    mean, std = standardise_window(window, config)
    endog = pd.DataFrame((window - mean) / std, columns=list(config.series))
    model = DynamicFactorMQ(
        endog,
        factors=statsmodels_factors(config),
        factor_orders={(b,): config.factor_order for b in config.block_names},
        idiosyncratic_ar1=True,
        standardize=False,
    )
    with warnings.catch_warnings():
        # EM stopping at em_maxiter is the configured budget, not a failure.
        warnings.simplefilter("ignore")
        res = model.fit(
            start_params=start_params,
            maxiter=config.em_maxiter,
            tolerance=config.em_tolerance,
            disp=False,
        )
    ss = StateSpace(
        transition=np.array(model["transition"], dtype=np.float64),
        design=np.array(model["design"], dtype=np.float64),
        state_cov=np.array(model["selection"] @ model["state_cov"] @ model["selection"].T),
        obs_cov=np.array(model["obs_cov"], dtype=np.float64),
    )
    blocks = model._s.factor_blocks
    order = {block.factor_names[0]: block for block in blocks}
    factor_index = np.array(
        [order[b]["factors_L1"].start for b in config.block_names], dtype=np.int64
    )
    end_state = FilterState.start(
        res.predicted_state[:, -1], res.predicted_state_cov[:, :, -1], len(config.series)
    )
    filtered = np.array(res.filtered_state.T, dtype=np.float64)
    signs = anchor_signs(ss, factor_index, config)
    state_signs = np.ones(ss.k_states)
    for b, sign in zip(config.block_names, signs, strict=True):
        state_signs[order[b]["factors"]] = sign
    flip_states(ss, end_state, state_signs)
    filtered *= state_signs
    if not (np.all(np.isfinite(filtered)) and np.all(np.isfinite(end_state.p))):
        raise DegenerateWindowError("EM produced non-finite filtered states")
    window_factors = filtered[:, factor_index]
    factor_mean = window_factors.mean(axis=0)
    factor_std = window_factors.std(axis=0)
    if not np.all(factor_std > 0):
        raise DegenerateWindowError("a filtered factor is constant over the fit window")
    return FittedDFM(
        params=np.array(res.params, dtype=np.float64),
        mean=mean,
        std=std,
        ss=ss,
        factor_index=factor_index,
        signs=signs,
        end_state=end_state,
        factor_mean=factor_mean,
        factor_std=factor_std,
        window_factors=(window_factors - factor_mean) / factor_std,
        em_iterations=int(res.mle_retvals.iter),
        state_names=list(model.state_names),
    )


def anchor_signs(ss: StateSpace, factor_index: np.ndarray, config: RegimeConfig) -> np.ndarray:
    """+1/-1 per block so that each block's anchor series loads positively on it."""
    rows = {s: i for i, s in enumerate(config.series)}
    loadings = np.array(
        [ss.design[rows[config.anchors[b]], j] for b, j in zip(
            config.block_names, factor_index, strict=True)]
    )
    return np.where(loadings < 0.0, -1.0, 1.0)


def flip_states(ss: StateSpace, state: FilterState, signs: np.ndarray) -> None:
    """Re-express the model in states S a (S = diag(signs)), in place.

    T -> S T S, Z -> Z S, R Q R' -> S R Q R' S, a -> S a, P -> S P S: the same
    model and the same likelihood, only the sign convention of the factors changes.
    """
    outer = np.outer(signs, signs)
    ss.transition *= outer
    ss.design *= signs
    ss.state_cov *= outer
    state.a *= signs
    state.p *= outer
