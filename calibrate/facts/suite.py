"""All facts of one series (and, given a reference, the simulated-vs-real comparisons), and the
named moment vector a method-of-simulated-moments objective compares across trials.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

from calibrate.facts.config import FactParams, bands
from calibrate.facts.liquidity import (
    depth_fact,
    impact_fact,
    spread_fact,
    volume_volatility_fact,
)
from calibrate.facts.memory import (
    acf,
    arch_fact,
    leverage_fact,
    linear_autocorrelation_fact,
    sign_memory_fact,
    volatility_clustering_fact,
    volatility_decay_fact,
)
from calibrate.facts.result import Fact, judged, missing
from calibrate.facts.returns import finite, kurtosis_by_horizon
from calibrate.facts.seasonality import seasonality_fact
from calibrate.facts.series import MarketSeries
from calibrate.facts.tails import ad_fact, excess_kurtosis_fact, hill_fact, hill_plateau, ks_fact


def aggregational_fact(r: np.ndarray, band, params: FactParams) -> Fact:
    name = "aggregational_gaussianity"
    hs, k = kurtosis_by_horizon(r, params.kurt_min_obs)
    detail = {"horizons": hs, "excess_kurtosis": k}
    if len(hs) < 2:
        return missing(name, band, f"fewer than 2 horizons with >= kurt_min_obs={params.kurt_min_obs} "
                                   f"blocks ({len(finite(r))} returns)", detail)
    if not k[0] >= 1.0:
        return missing(name, band, f"base-horizon excess kurtosis {k[0]:.3g} < 1: "
                                   "returns are already close to Gaussian", detail)
    return judged(name, float(k[-1] / k[0]), band, detail)


def evaluate(series: MarketSeries, reference: MarketSeries | None = None,
             band_overrides: dict[str, Any] | None = None,
             params: FactParams | None = None) -> list[Fact]:
    """Every fact of `series`; with `reference` (the real window) also the two-sample tests of
    `series` against it. Never raises on short or missing data (see Fact.reason)."""
    b = bands(band_overrides)
    p = params or FactParams()
    r = series.returns
    out = [
        excess_kurtosis_fact(r, b["excess_kurtosis"], p),
        hill_fact(r, b["hill_tail_index"], p),
        linear_autocorrelation_fact(r, b["linear_autocorrelation"], p),
        volatility_clustering_fact(r, b["volatility_clustering"], p),
        volatility_decay_fact(r, b["volatility_decay_exponent"], p),
        arch_fact(r, b["arch_effect"], p),
        aggregational_fact(r, b["aggregational_gaussianity"], p),
        volume_volatility_fact(r, series.bar("volume"), b["volume_volatility_correlation"], p),
        leverage_fact(r, b["leverage"], p),
        (sign_memory_fact(series.order_signs, b["order_sign_memory"], p)
         if series.order_signs is not None
         else missing("order_sign_memory", b["order_sign_memory"], "no trade signs or signed volume")),
        impact_fact(r, series.bar("signed_volume"), b["price_impact_concavity"], p),
        spread_fact(series.spread_bps, b["spread_bps"], p),
        depth_fact(series.depth, b["depth"], p),
        seasonality_fact(r, series.bar("t_ns"), b["intraday_seasonality"], p),
    ]
    if reference is not None:
        out += compare(series, reference, band_overrides, p)
    return out


def compare(sim: MarketSeries, real: MarketSeries, band_overrides: dict[str, Any] | None = None,
            params: FactParams | None = None) -> list[Fact]:
    """Two-sample tests of the simulated distributions against the real ones."""
    b = bands(band_overrides)
    p = params or FactParams()
    out = [ks_fact("return_ks", sim.returns, real.returns, b["return_ks"], p),
           ad_fact(sim.returns, real.returns, b["return_ad"], p)]
    for name, a, c in (("spread_ks", sim.spread_bps, real.spread_bps),
                       ("depth_ks", sim.depth, real.depth)):
        if a is None or c is None:
            out.append(missing(name, b[name], "spread/depth missing in "
                                              + ("the simulation" if a is None else "the real data")))
        else:
            out.append(ks_fact(name, a, c, b[name], p))
    return out


MOMENT_NAMES: tuple[str, ...] = (
    "mean", "std", "skew", "excess_kurtosis", "hill_tail_index",
    "acf_r_1", "acf_abs_1", "acf_abs_5", "acf_abs_20", "acf_sq_1",
    "kurtosis_ratio_10", "volume_abs_r_corr", "sign_acf_1", "spread_bps_median",
)


def moment_vector(series: MarketSeries, params: FactParams | None = None) -> np.ndarray:
    """The MOMENT_NAMES of `series` as float64 (NaN where not computable): the same estimators
    as the facts, so a calibrated simulation is judged on what the report shows."""
    return np.array([v for v in moments_of(series, params).values()], dtype=np.float64)


def moments_of(series: MarketSeries, params: FactParams | None = None) -> dict[str, float]:
    p = params or FactParams()
    nan = math.nan
    r = finite(series.returns)
    out = dict.fromkeys(MOMENT_NAMES, nan)
    if len(r) >= 2:
        out["mean"], out["std"] = float(np.mean(r)), float(np.std(r, ddof=1))
    if len(r) >= p.min_returns and np.std(r) > 0:
        out["skew"], out["excess_kurtosis"] = float(stats.skew(r)), float(stats.kurtosis(r))
        est = hill_plateau(r, p)
        out["hill_tail_index"] = est.alpha if est is not None else nan
        a1 = acf(r, 1)
        aa = acf(np.abs(r), 20)
        sq = acf(r * r, 1)
        out["acf_r_1"] = float(a1[0]) if len(a1) else nan
        if len(aa) == 20:
            out["acf_abs_1"], out["acf_abs_5"], out["acf_abs_20"] = map(float, aa[[0, 4, 19]])
        out["acf_sq_1"] = float(sq[0]) if len(sq) else nan
        hs, k = kurtosis_by_horizon(r, p.kurt_min_obs)
        if 10 in hs and k[0] != 0:
            out["kurtosis_ratio_10"] = float(k[list(hs).index(10)] / k[0])
    vv = volume_volatility_fact(series.returns, series.bar("volume"), None, p)
    out["volume_abs_r_corr"] = vv.value
    s = series.order_signs
    if s is not None and len(s) >= p.min_returns and np.std(s) > 0:
        out["sign_acf_1"] = float(acf(s, 1)[0])
    if series.spread_bps is not None and len(series.spread_bps):
        out["spread_bps_median"] = float(np.median(series.spread_bps))
    return out
