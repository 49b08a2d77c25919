"""The report's numbers as one plain dict (what report.json holds and the HTML/Markdown show).

`moments` are of the simple returns of the real series (of the simulated one when a run has no
real series), `facts` are the real series' facts; a simulation adds `simulated` and the
two-sample `comparison`. No wall-clock time goes in, so the same input gives the same bytes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from calibrate.facts import (
    DEFINITIONS,
    MOMENT_NAMES,
    FactParams,
    MarketSeries,
    compare,
    evaluate,
    moments,
    moments_of,
)
from calibrate.facts.result import Fact, plain


def fact_rows(facts: list[Fact]) -> list[dict[str, Any]]:
    return [f.to_dict() | {"definition": DEFINITIONS[f.name]} for f in facts]


def iso(t_ns: int) -> str:
    """ISO-8601 UTC, to the ms, without a zero fraction."""
    return str(np.datetime64(t_ns, "ns").astype("datetime64[ms]")).removesuffix(".000") + "Z"


def span(s: MarketSeries) -> dict[str, Any]:
    out: dict[str, Any] = {"rows": len(s.price), "returns": int(np.isfinite(s.returns).sum())}
    if s.t_ns is not None and len(s.t_ns):
        out["start"], out["end"] = iso(int(s.t_ns[0])), iso(int(s.t_ns[-1]))
        if len(s.t_ns) > 1:
            out["median_bar_s"] = float(np.median(np.diff(s.t_ns))) / 1e9
    return out


def summarise(real: MarketSeries | None, sim: MarketSeries | None, source: dict[str, Any],
              band_overrides: dict[str, Any] | None = None,
              params: FactParams | None = None) -> dict[str, Any]:
    params = params or FactParams()
    primary = real if real is not None else sim
    doc: dict[str, Any] = {"source": source | {"series": {s.label: span(s) for s in (real, sim)
                                                          if s is not None}}}
    doc["moments"] = moments(primary.simple)
    doc["facts"] = fact_rows(evaluate(primary, band_overrides=band_overrides, params=params))
    if real is not None and sim is not None:
        doc["simulated"] = {"moments": moments(sim.simple),
                            "facts": fact_rows(evaluate(sim, band_overrides=band_overrides,
                                                        params=params))}
        doc["comparison"] = fact_rows(compare(sim, real, band_overrides, params))
    doc["moment_vector"] = {"names": list(MOMENT_NAMES)} | {
        s.label: list(moments_of(s, params).values()) for s in (real, sim) if s is not None}
    return plain(doc)
