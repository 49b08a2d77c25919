"""Intraday seasonality: mean |r| by UTC hour of day, where the window spans enough days.

Activity and volatility follow the clock (Asian/European/US sessions for crypto), so the
hourly profile of |r| is uneven: value = max / min of the hourly means, and the unevenness must
also be significant (Kruskal-Wallis across hours, p < seasonality_alpha). Needs timestamps,
bars shorter than an hour and at least `seasonality_min_days` days.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from calibrate.facts.config import FactParams
from calibrate.facts.result import Band, Fact, judged, missing

HOUR_NS = 3_600_000_000_000
DAY_NS = 24 * HOUR_NS


def hourly_profile(r: np.ndarray, t_ns: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Mean |r| for hours 0..23 (NaN if empty) and the |r| of each hour."""
    r, t = np.asarray(r, np.float64), np.asarray(t_ns, np.int64)
    ok = np.isfinite(r)
    hour = (t[ok] % DAY_NS) // HOUR_NS
    a = np.abs(r[ok])
    groups = [a[hour == h] for h in range(24)]
    prof = np.array([g.mean() if len(g) else np.nan for g in groups])
    return prof, groups


def seasonality_fact(r: np.ndarray, t_ns: np.ndarray | None, band: Band | None,
                     params: FactParams) -> Fact:
    name = "intraday_seasonality"
    if t_ns is None or len(t_ns) < 2:
        return missing(name, band, "no timestamps")
    t = np.asarray(t_ns, np.int64)
    span_days = (t[-1] - t[0]) / DAY_NS
    bar = float(np.median(np.diff(t)))
    if bar >= HOUR_NS:
        return missing(name, band, f"bars of {bar / HOUR_NS:.3g} h are not intraday")
    if span_days < params.seasonality_min_days:
        return missing(name, band, f"window spans {span_days:.3g} days < seasonality_min_days="
                                   f"{params.seasonality_min_days:g}")
    prof, groups = hourly_profile(r, t)
    full = [g for g in groups if len(g) >= 2]
    if len(full) < 24 or not np.nanmin(prof) > 0:
        return missing(name, band, "some hours have no (or only zero) returns", {"profile": prof})
    p = float(stats.kruskal(*full).pvalue)
    flat = p >= params.seasonality_alpha
    return judged(name, float(np.nanmax(prof) / np.nanmin(prof)), band,
                  {"kruskal_p": p, "profile": prof, "days": span_days},
                  reason=f"hours not significantly different (Kruskal-Wallis p={p:.3g})" if flat
                  else None, extra=not flat)
