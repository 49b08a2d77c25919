"""The input of the facts: one market's series on one time grid, real or simulated.

Only `price` is required; every other series is optional and the facts that need it report
"no ... series" when it is absent. Per-bar series (volume, signed volume, spread, depth, time)
have the price's length; returns are aligned with their bar's end (element 1..n-1).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from calibrate.facts.liquidity import relative_spread_bps
from calibrate.facts.memory import order_signs
from calibrate.facts.returns import log_returns, simple_returns


@dataclass(frozen=True)
class MarketSeries:
    """price: mid or last trade price per bar. signs: per-trade signs (+1/-1) when known,
    else they are taken from the sign of each bar's signed volume."""

    price: np.ndarray
    t_ns: np.ndarray | None = None
    volume: np.ndarray | None = None
    signed_volume: np.ndarray | None = None
    spread: np.ndarray | None = None
    depth: np.ndarray | None = None
    signs: np.ndarray | None = None
    label: str = "real"

    def __post_init__(self) -> None:
        price = np.asarray(self.price, dtype=np.float64)
        if price.ndim != 1:
            raise ValueError(f"{self.label}.price: expected a 1-d array, got shape {price.shape}")
        object.__setattr__(self, "price", price)
        for name in ("t_ns", "volume", "signed_volume", "spread", "depth"):
            v = getattr(self, name)
            if v is None:
                continue
            v = np.asarray(v, dtype=np.int64 if name == "t_ns" else np.float64)
            if v.shape != price.shape:
                raise ValueError(f"{self.label}.{name}: {len(v)} values for {len(price)} prices")
            object.__setattr__(self, name, v)
        if self.signs is not None:
            object.__setattr__(self, "signs", np.asarray(self.signs, dtype=np.float64))

    @cached_property
    def returns(self) -> np.ndarray:
        """Log returns, length n - 1, NaN across missing prices."""
        return log_returns(self.price)

    @cached_property
    def simple(self) -> np.ndarray:
        return simple_returns(self.price)

    def bar(self, name: str) -> np.ndarray | None:
        """A per-bar series aligned with `returns` (bars 1..n-1), or None."""
        v = getattr(self, name)
        return None if v is None else v[1:]

    @cached_property
    def order_signs(self) -> np.ndarray | None:
        if self.signs is not None:
            return self.signs[np.isfinite(self.signs) & (self.signs != 0)]
        return None if self.signed_volume is None else order_signs(self.signed_volume)

    @cached_property
    def spread_bps(self) -> np.ndarray | None:
        return None if self.spread is None else relative_spread_bps(self.spread, self.price)
