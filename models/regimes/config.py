"""Configuration of the regime model: factor blocks, sign anchors, refit schedule."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

DEFAULT_BLOCKS: dict[str, tuple[str, ...]] = {
    "mood": ("sentiment", "sentiment_unc", "post_rate"),
    "volatility": ("realized_var", "abs_return", "hl_range"),
    "liquidity": ("spread", "depth", "abs_imbalance", "ofi"),
}
DEFAULT_ANCHORS: dict[str, str] = {
    "mood": "sentiment",
    "volatility": "realized_var",
    "liquidity": "spread",
}


@dataclass(frozen=True)
class RegimeConfig:
    """What the regime model fits and when.

    blocks: factor name -> series loading on it (a series may load on several).
    anchors: factor name -> series whose loading is made positive after every fit,
        so that "mood up" = more positive sentiment, "volatility up" = more
        realised variance, "liquidity up" = wider spread (more stress).
    factor_order: VAR order of each single-factor block.
    min_history: rows seen before the first fit is attempted.
    refit_every: rows between fit attempts (a failed attempt waits as long).
    fit_window: at most this many most recent rows are used by a fit.
    em_maxiter, em_tolerance: EM iteration cap and relative-likelihood tolerance.
    min_obs: non-missing values a series needs in the window for a fit to go ahead.
    label_quantiles: (low, high) quantiles of the fit window's filtered factor that
        split the labels low (0) / normal (1) / high (2).
    """

    blocks: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_BLOCKS))
    anchors: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_ANCHORS))
    factor_order: int = 1
    min_history: int = 720
    refit_every: int = 240
    fit_window: int = 4320
    em_maxiter: int = 30
    em_tolerance: float = 1e-5
    min_obs: int = 30
    label_quantiles: tuple[float, float] = (0.2, 0.8)

    def __post_init__(self) -> None:
        blocks = {str(b): tuple(str(s) for s in series) for b, series in self.blocks.items()}
        object.__setattr__(self, "blocks", blocks)
        object.__setattr__(self, "anchors", {str(b): str(s) for b, s in self.anchors.items()})
        object.__setattr__(self, "label_quantiles", tuple(float(q) for q in self.label_quantiles))
        if not blocks:
            raise ValueError("regimes.blocks: at least one factor block is required")
        for name, series in blocks.items():
            if not series:
                raise ValueError(f"regimes.blocks.{name}: a block needs at least one series")
            if len(set(series)) != len(series):
                raise ValueError(f"regimes.blocks.{name}: series listed twice")
        if set(self.anchors) != set(blocks):
            raise ValueError(
                f"regimes.anchors: need exactly one anchor per block {sorted(blocks)}, "
                f"got {sorted(self.anchors)}"
            )
        for name, anchor in self.anchors.items():
            if anchor not in blocks[name]:
                raise ValueError(f"regimes.anchors.{name}: {anchor!r} does not load on {name!r}")
        for key in ("factor_order", "refit_every", "em_maxiter", "min_obs"):
            if int(getattr(self, key)) < 1:
                raise ValueError(f"regimes.{key}: must be >= 1")
        if self.min_history < 2:
            raise ValueError("regimes.min_history: must be >= 2")
        if self.fit_window < self.min_history:
            raise ValueError("regimes.fit_window: must be >= min_history")
        if self.min_obs > self.min_history:
            raise ValueError("regimes.min_obs: must be <= min_history")
        if not self.em_tolerance > 0:
            raise ValueError("regimes.em_tolerance: must be > 0")
        lo_hi = self.label_quantiles
        if len(lo_hi) != 2 or not 0.0 < lo_hi[0] < lo_hi[1] < 1.0:
            raise ValueError("regimes.label_quantiles: need 0 < low < high < 1")

    @property
    def series(self) -> tuple[str, ...]:
        """Feature order expected by `RegimeModel.update`: first appearance across blocks."""
        seen: dict[str, None] = {}
        for series in self.blocks.values():
            for s in series:
                seen.setdefault(s, None)
        return tuple(seen)

    @property
    def block_names(self) -> tuple[str, ...]:
        return tuple(self.blocks)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RegimeConfig:
        """Build from a plain mapping (e.g. a Hydra node), rejecting unknown keys."""
        known = {f.name for f in fields(cls)}
        for key in values:
            if key not in known:
                raise ValueError(f"regimes.{key}: unknown setting (known: {sorted(known)})")
        return cls(**dict(values))
