"""Trading activity and liquidity: volume-volatility correlation, the price impact curve,
spread and depth distributions.

Impact curve: bars are put in `impact_bins` quantile bins of |signed volume| v; in each bin
the impact is mean(sign(v) * r) and the size mean(|v|). delta is the log-log slope of impact on
size over bins with positive impact; delta < 1 is a concave curve (square-root law: 0.5).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from calibrate.facts.config import FactParams
from calibrate.facts.result import Band, Fact, judged, missing


def _pairs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    return a[ok], b[ok]


def volume_volatility_fact(r: np.ndarray, volume: np.ndarray | None, band: Band | None,
                           params: FactParams) -> Fact:
    """Spearman rank correlation of bar volume with |r| of the same bar."""
    name = "volume_volatility_correlation"
    if volume is None:
        return missing(name, band, "no volume series")
    x, v = _pairs(np.abs(r), volume)
    if len(x) < params.min_returns:
        return missing(name, band, f"{len(x)} bars with volume < min_returns={params.min_returns}")
    if not (np.std(x) > 0 and np.std(v) > 0):
        return missing(name, band, "volume or |r| is constant")
    rho = stats.spearmanr(v, x)
    return judged(name, float(rho.statistic), band, {"p_value": float(rho.pvalue), "n": len(x)})


def impact_curve(r: np.ndarray, signed_volume: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean |v|, mean sign(v) r) per quantile bin of |v|, over bars with v != 0."""
    x, v = _pairs(r, signed_volume)
    keep = v != 0
    x, v = x[keep], v[keep]
    if len(v) < 2 * bins:
        return np.empty(0), np.empty(0)
    size = np.abs(v)
    edges = np.unique(np.quantile(size, np.linspace(0, 1, bins + 1)))
    idx = np.clip(np.searchsorted(edges, size, side="right") - 1, 0, len(edges) - 2)
    cnt = np.bincount(idx, minlength=len(edges) - 1)
    used = cnt > 0
    s = np.bincount(idx, weights=size, minlength=len(edges) - 1)[used] / cnt[used]
    imp = np.bincount(idx, weights=np.sign(v) * x, minlength=len(edges) - 1)[used] / cnt[used]
    return s, imp


def impact_fact(r: np.ndarray, signed_volume: np.ndarray | None, band: Band | None,
                params: FactParams) -> Fact:
    name = "price_impact_concavity"
    if signed_volume is None:
        return missing(name, band, "no signed volume series")
    size, imp = impact_curve(r, signed_volume, params.impact_bins)
    if len(size) == 0:
        return missing(name, band, f"fewer than {2 * params.impact_bins} bars with signed volume")
    ok = (imp > 0) & (size > 0)
    if ok.sum() < 4:
        return missing(name, band, f"impact positive in only {int(ok.sum())} size bins",
                       {"size": size, "impact": imp})
    delta, _ = np.polyfit(np.log(size[ok]), np.log(imp[ok]), 1)
    return judged(name, float(delta), band, {"size": size, "impact": imp, "bins_used": int(ok.sum())})


def relative_spread_bps(spread: np.ndarray, mid: np.ndarray) -> np.ndarray:
    s, m = np.asarray(spread, np.float64), np.asarray(mid, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where((m > 0) & (s >= 0), s / m * 1e4, np.nan)
    return out[np.isfinite(out)]


def spread_fact(spread_bps: np.ndarray | None, band: Band | None, params: FactParams) -> Fact:
    if spread_bps is None or len(spread_bps) == 0:
        return missing("spread_bps", band, "no spread series")
    x = np.asarray(spread_bps, np.float64)
    q = np.quantile(x, [0.05, 0.5, 0.95])
    return judged("spread_bps", float(q[1]), band, {"p05": float(q[0]), "p95": float(q[2]),
                                                    "mean": float(np.mean(x)), "n": len(x)})


def depth_fact(depth: np.ndarray | None, band: Band | None, params: FactParams) -> Fact:
    if depth is None:
        return missing("depth", band, "no depth series")
    x = np.asarray(depth, np.float64)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return missing("depth", band, "depth is all missing")
    q = np.quantile(x, [0.05, 0.5, 0.95])
    cv = float(np.std(x) / np.mean(x)) if np.mean(x) > 0 else math.nan
    return judged("depth", float(q[1]), band, {"p05": float(q[0]), "p95": float(q[2]), "cv": cv,
                                               "n": len(x)})
