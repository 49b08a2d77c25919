"""The exogenous state handed to the market each step, and what-if shocks applied to it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.agents.base import N_X

EXOG_DTYPE = np.dtype(
    [
        ("ts_ns", np.int64),  # step time
        ("sentiment", np.float64),  # score in [-1, 1]
        ("epistemic", np.float64),  # sentiment model uncertainty (MC-dropout spread)
        ("aleatoric", np.float64),
        ("mood", np.float64),  # DFM factor values
        ("volatility", np.float64),
        ("liquidity", np.float64),
        ("regime", np.int64),  # volatility regime label: 0 calm, 1 normal, 2 stressed
        ("ref_mid", np.float64),  # real mid price (quote currency), NaN if unknown
        ("fundamental", np.float64),  # informed traders' target price, NaN -> ref_mid
    ]
)

SHOCKABLE = ("sentiment", "epistemic", "aleatoric", "mood", "volatility", "liquidity")


def make_exog(n: int, **columns) -> np.ndarray:
    """An EXOG_DTYPE array of n rows: zeros, NaN prices, then the given columns."""
    unknown = sorted(set(columns) - set(EXOG_DTYPE.names))
    if unknown:
        raise ValueError(f"unknown exog field(s): {', '.join(unknown)}")
    out = np.zeros(n, dtype=EXOG_DTYPE)
    out["ref_mid"] = np.nan
    out["fundamental"] = np.nan
    for name, values in columns.items():
        out[name] = values
    return out


@dataclass(frozen=True)
class Shock:
    """Add ``size`` to exog ``field`` for steps [start_step, start_step + duration_steps)."""

    field: str
    size: float
    start_step: int
    duration_steps: int

    def __post_init__(self):
        if self.field not in SHOCKABLE:
            raise ValueError(f"sim.shock.field must be one of {SHOCKABLE}, got {self.field!r}")
        if self.duration_steps < 0 or self.start_step < 0:
            raise ValueError("sim.shock.start_step and duration_steps must be >= 0")


def shocked(exog: np.ndarray, first_step: int, shocks: tuple[Shock, ...]) -> np.ndarray:
    """Copy of exog (rows = steps first_step, first_step+1, ...) with shocks added."""
    if not shocks:
        return exog
    out = exog.copy()
    steps = first_step + np.arange(exog.shape[0])
    for s in shocks:
        hit = (steps >= s.start_step) & (steps < s.start_step + s.duration_steps)
        out[s.field][hit] += s.size
    return out


def to_rule_inputs(exog: np.ndarray, tick_size: float) -> np.ndarray:
    """EXOG rows -> the float matrix the compiled rules read (prices in ticks)."""
    x = np.empty((exog.shape[0], N_X), dtype=np.float64)
    for j, name in enumerate(
        ("sentiment", "epistemic", "aleatoric", "mood", "volatility", "liquidity", "regime")
    ):
        x[:, j] = exog[name]
    x[:, 7] = exog["ref_mid"] / tick_size
    x[:, 8] = exog["fundamental"] / tick_size
    return x
