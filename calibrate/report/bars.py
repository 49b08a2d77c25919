"""Coarser bars from a per-step series: last price, summed volumes, mean spread and depth.

Replay steps are often 100 ms, where most steps hold no trade; facts read better on bars of a
second or a minute. Bars are aligned to multiples of the bar length from the first timestamp.
"""

from __future__ import annotations

import numpy as np

from calibrate.facts import MarketSeries


def _last_finite(x: np.ndarray, ends: np.ndarray) -> np.ndarray:
    idx = np.where(np.isfinite(x), np.arange(len(x)), -1)
    np.maximum.accumulate(idx, out=idx)
    last = idx[ends]
    return np.where(last >= 0, x[np.maximum(last, 0)], np.nan)


def _sum(x: np.ndarray, starts: np.ndarray) -> np.ndarray:
    return np.add.reduceat(np.nan_to_num(x, nan=0.0), starts)


def _mean(x: np.ndarray, starts: np.ndarray) -> np.ndarray:
    ok = np.isfinite(x)
    n = np.add.reduceat(ok.astype(np.float64), starts)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, _sum(x, starts) / np.maximum(n, 1), np.nan)


def resample(s: MarketSeries, bar_ns: int) -> MarketSeries:
    """`s` on bars of `bar_ns`; needs timestamps. Per-trade signs are kept as they are."""
    if s.t_ns is None:
        raise ValueError(f"{s.label}: resampling needs timestamps")
    if len(s.price) == 0:
        return s
    group = (s.t_ns - s.t_ns[0]) // bar_ns
    starts = np.concatenate(([0], np.flatnonzero(np.diff(group)) + 1))
    ends = np.concatenate((starts[1:] - 1, [len(group) - 1]))
    return MarketSeries(
        price=_last_finite(s.price, ends), t_ns=s.t_ns[0] + group[starts] * bar_ns,
        volume=None if s.volume is None else _sum(s.volume, starts),
        signed_volume=None if s.signed_volume is None else _sum(s.signed_volume, starts),
        spread=None if s.spread is None else _mean(s.spread, starts),
        depth=None if s.depth is None else _mean(s.depth, starts),
        signs=s.signs, label=s.label)
