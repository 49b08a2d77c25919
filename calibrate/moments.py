"""Moments and the method-of-simulated-moments distance (docs/concepts/calibration.md).

Real and simulated windows go through one builder (`Bars` -> `MarketSeries`) and one moment
function, so the two sides are measured alike: real = the run's book mid, spread, depth and the
tape's per-step volume and signed volume; simulated = the sim stage's mid, spread, depth and its
trades summed per step. Order signs are the sign of each step's signed volume on both sides.

The weighting matrix comes from a block bootstrap of the real bars: blocks of consecutive steps
are drawn with replacement and joined with a missing bar between them (so no return spans two
blocks); the moments of each draw give their covariance S. Moments are standardised by the
bootstrap standard deviations and W = inverse of the shrunk correlation
(1 - shrinkage) * C + shrinkage * I, which stays invertible when moments are nearly collinear
or draws are few. Distance = d' W d with d = (mean simulated - real) / sd.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import orjson

from calibrate.facts import MOMENT_NAMES, FactParams, MarketSeries, moments_of

log = logging.getLogger("smabm.calibrate")

# Beyond calibrate.facts.MOMENT_NAMES: activity and liquidity levels, which rates, spreads and
# sizes move most directly. The mean spread is continuous where the median jumps tick by tick.
EXTRA_MOMENTS: tuple[str, ...] = ("zero_return_share", "log_volume_mean", "spread_bps_mean",
                                  "log_depth_mean")
ALL_MOMENTS: tuple[str, ...] = MOMENT_NAMES + EXTRA_MOMENTS


@dataclass(frozen=True)
class Bars:
    """Per-step market series on one step grid (NaN price = no valid quote that step)."""

    price: np.ndarray
    spread: np.ndarray
    depth: np.ndarray
    volume: np.ndarray
    signed_volume: np.ndarray
    t_ns: np.ndarray

    def __len__(self) -> int:
        return len(self.price)

    def head(self, n: int) -> Bars:
        return Bars(*(getattr(self, f)[:n] for f in _FIELDS))

    def take(self, idx: np.ndarray) -> Bars:
        return Bars(*(getattr(self, f)[idx] for f in _FIELDS))

    def series(self, label: str) -> MarketSeries:
        return MarketSeries(self.price, t_ns=self.t_ns, volume=self.volume,
                            signed_volume=self.signed_volume, spread=self.spread, depth=self.depth,
                            label=label)


_FIELDS = ("price", "spread", "depth", "volume", "signed_volume", "t_ns")


def real_bars(book: dict[str, np.ndarray], tape: dict[str, np.ndarray] | None) -> Bars:
    """The real window from the book and tape stage outputs (steps where the book is invalid
    have no price)."""
    valid = np.asarray(book["valid"], bool)
    n = len(valid)

    def col(d, name):
        return np.where(valid, np.asarray(d[name], np.float64), np.nan)

    vol = np.asarray(tape["volume"], np.float64) if tape is not None else np.full(n, np.nan)
    sv = np.asarray(tape["signed_volume"], np.float64) if tape is not None else np.full(n, np.nan)
    return Bars(col(book, "mid"), col(book, "spread"), col(book, "bid_depth") + col(book, "ask_depth"),
                vol, sv, np.asarray(book["t_ns"], np.int64))


def sim_bars(steps: dict[str, np.ndarray], trade_step: np.ndarray, trade_size: np.ndarray,
             trade_side: np.ndarray, t_ns: np.ndarray) -> Bars:
    """The simulated window: sim stage step columns plus its trades summed per (absolute) step."""
    n = len(t_ns)
    vol = np.bincount(trade_step, weights=trade_size, minlength=n)[:n]
    sv = np.bincount(trade_step, weights=trade_size * trade_side, minlength=n)[:n]
    return Bars(np.asarray(steps["mid"], np.float64), np.asarray(steps["spread"], np.float64),
                np.asarray(steps["bid_depth"], np.float64) + np.asarray(steps["ask_depth"], np.float64),
                vol, sv, np.asarray(t_ns, np.int64))


def check_names(names: Sequence[str] | None) -> tuple[str, ...]:
    """`calibrate.moments` (None = all), validated against ALL_MOMENTS."""
    if names is None:
        return ALL_MOMENTS
    names = tuple(str(n) for n in names)
    bad = [n for n in names if n not in ALL_MOMENTS]
    if bad:
        raise ValueError(f"calibrate.moments: unknown moment {bad[0]!r} (known: {', '.join(ALL_MOMENTS)})")
    if not names:
        raise ValueError("calibrate.moments: empty list")
    return names


def moment_values(bars: Bars, names: Sequence[str], params: FactParams | None = None) -> np.ndarray:
    """The moments `names` of `bars` (float64, NaN where not computable)."""
    s = bars.series("bars")
    out = dict(moments_of(s, params))
    r = s.returns[np.isfinite(s.returns)]
    out["zero_return_share"] = float(np.mean(r == 0)) if len(r) else math.nan
    v = bars.volume[np.isfinite(bars.price) & np.isfinite(bars.volume)]
    out["log_volume_mean"] = float(np.log(v.mean())) if len(v) and v.mean() > 0 else math.nan
    sb = s.spread_bps
    out["spread_bps_mean"] = float(sb.mean()) if sb is not None and len(sb) else math.nan
    dep = bars.depth[np.isfinite(bars.price) & np.isfinite(bars.depth)]
    out["log_depth_mean"] = float(np.log(dep.mean())) if len(dep) and dep.mean() > 0 else math.nan
    return np.array([out[n] for n in names], dtype=np.float64)


def block_bootstrap(bars: Bars, names: Sequence[str], draws: int, block_steps: int,
                    seed: np.random.SeedSequence, params: FactParams | None = None) -> np.ndarray:
    """(draws, len(names)) moments of circular block-bootstrap resamples of `bars`."""
    n = len(bars)
    if block_steps < 2 or block_steps > n:
        raise ValueError(f"calibrate.bootstrap.block_steps={block_steps}: must be in [2, {n}] "
                         "(the window's steps)")
    rng = np.random.default_rng(seed)
    n_blocks = math.ceil(n / block_steps)
    # one separator row (index n) between blocks: its NaN price breaks the return across the joint
    ext = Bars(np.r_[bars.price, np.nan], np.r_[bars.spread, np.nan], np.r_[bars.depth, np.nan],
               np.r_[bars.volume, 0.0], np.r_[bars.signed_volume, 0.0], np.zeros(n + 1, np.int64))
    out = np.empty((draws, len(names)))
    offs = np.arange(block_steps)
    for d in range(draws):
        starts = rng.integers(0, n, n_blocks)
        idx = (starts[:, None] + offs[None, :]) % n
        idx = np.concatenate([idx, np.full((n_blocks, 1), n)], axis=1).ravel()
        out[d] = moment_values(ext.take(idx), names, params)
    return out


@dataclass(frozen=True)
class Target:
    """The real moments, their bootstrap scale and the weighting matrix of the distance.

    `names` are the moments kept (computable on the real window and varying across bootstrap
    draws); `checkpoints[i]` are the real moments on the first `steps[i]` steps, compared with
    partial simulations for pruning (the last checkpoint is the whole window)."""

    names: tuple[str, ...]
    real: np.ndarray
    sd: np.ndarray
    weight: np.ndarray
    steps: tuple[int, ...]
    checkpoints: tuple[np.ndarray, ...]
    nan_penalty: float
    dropped: dict[str, str]

    def distance(self, sim: np.ndarray, checkpoint: int = -1) -> float:
        """d' W d, d = (sim - real) / sd; a NaN simulated moment counts as nan_penalty sd (a
        moment not computable on a short real checkpoint counts as 0 there)."""
        real = self.checkpoints[checkpoint]
        d = (np.asarray(sim, np.float64) - real) / self.sd
        d = np.where(np.isfinite(real), np.where(np.isfinite(d), d, self.nan_penalty), 0.0)
        return float(d @ self.weight @ d)

    def to_dict(self) -> dict:
        return {"names": list(self.names), "real": self.real.tolist(), "sd": self.sd.tolist(),
                "weight": self.weight.tolist(), "steps": list(self.steps),
                "checkpoints": [c.tolist() for c in self.checkpoints],
                "nan_penalty": self.nan_penalty, "dropped": self.dropped}

    def sha256(self) -> str:
        """Fingerprint that workers joining a shared study compare with the study's."""
        return hashlib.sha256(orjson.dumps(self.to_dict(), option=orjson.OPT_SORT_KEYS
                                           | orjson.OPT_SERIALIZE_NUMPY)).hexdigest()


def make_target(bars: Bars, names: Sequence[str], fractions: Sequence[float], *, draws: int,
                block_steps: int, shrinkage: float, nan_penalty: float,
                seed: np.random.SeedSequence, params: FactParams | None = None) -> Target:
    """Real moments, bootstrap covariance and weighting matrix of one window."""
    if not 0 <= shrinkage <= 1:
        raise ValueError(f"calibrate.bootstrap.shrinkage={shrinkage}: must be in [0, 1]")
    if draws < 10:
        raise ValueError(f"calibrate.bootstrap.draws={draws}: need at least 10")
    if not nan_penalty > 0:
        raise ValueError(f"calibrate.nan_penalty={nan_penalty}: must be > 0")
    names = check_names(names)
    real = moment_values(bars, names, params)
    boot = block_bootstrap(bars, names, draws, block_steps, seed, params)
    dropped: dict[str, str] = {}
    keep = []
    for j, name in enumerate(names):
        col = boot[:, j]
        ok = np.isfinite(col)
        if not math.isfinite(real[j]):
            dropped[name] = "not computable on the real window"
        elif ok.mean() < 0.9:
            dropped[name] = f"not computable in {1 - ok.mean():.0%} of bootstrap draws"
        elif not np.std(col[ok]) > 0:
            dropped[name] = "constant across bootstrap draws"
        else:
            keep.append(j)
    if not keep:
        raise ValueError("calibrate.moments: no moment is computable on the real window "
                         f"({'; '.join(f'{k}: {v}' for k, v in dropped.items())})")
    for k, v in dropped.items():
        log.info("moment %s dropped: %s", k, v)
    kept = [names[j] for j in keep]
    b = boot[:, keep]
    b = b[np.isfinite(b).all(axis=1)]
    sd = b.std(axis=0, ddof=1)
    corr = np.corrcoef(b, rowvar=False) if len(keep) > 1 else np.ones((1, 1))
    weight = np.linalg.inv((1 - shrinkage) * np.atleast_2d(corr) + shrinkage * np.eye(len(keep)))
    fractions = sorted(float(f) for f in fractions)
    if any(not 0 < f < 1 for f in fractions):
        raise ValueError(f"calibrate.pruning.fractions={fractions}: each must be in (0, 1)")
    n = len(bars)
    steps = tuple(sorted({max(int(round(f * n)), 2) for f in fractions} - {n})) + (n,)
    checkpoints = tuple(moment_values(bars.head(s), kept, params) for s in steps[:-1]) + (real[keep],)
    return Target(tuple(kept), real[keep], sd, weight, steps, checkpoints, float(nan_penalty), dropped)
