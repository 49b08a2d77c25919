"""Metric rows from what the pipeline produces: replay step tables and recorder status.

One function per source, each returning `{metric table: pa.Table}` with exactly the columns of
`monitor.schema.TABLES` in order. The sink writes these; the dashboard reads a run directory
through the same functions, so a run looks the same whether it comes from files or from
PostgreSQL. All work is column selection and casts (no per-row Python).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from monitor.schema import TABLES

TS = pa.timestamp("us", tz="UTC")
_PA = {"timestamptz": TS, "text": pa.string(), "bigint": pa.int64(), "smallint": pa.int16(),
       "double precision": pa.float64()}
SCHEMAS: dict[str, pa.Schema] = {name: pa.schema([(c, _PA[t]) for c, t in cols])
                                 for name, cols in TABLES.items()}

# metric column <- stage column, for the stages mapped one to one
_COLUMNS = {
    "tape": ("bars", {c: c for c in ("open", "high", "low", "close", "vwap", "volume", "buy_volume",
                                     "sell_volume", "trade_count", "realized_var")}),
    "sentiment": ("sentiment", {c: c for c in ("n_texts", "score_mean", "score_ewma", "epistemic_ewma",
                                               "aleatoric_ewma", "disagreement")}),
    "regimes": ("regimes", {c: c for c in ("mood", "mood_sd", "mood_label", "volatility",
                                           "volatility_sd", "volatility_label", "liquidity",
                                           "liquidity_sd", "liquidity_label")}),
}
_BOOK = {"book": ("real", "bid_px", "ask_px"), "sim": ("sim", "best_bid", "best_ask")}


def ts_column(t_ns: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Epoch nanoseconds -> UTC microsecond timestamps (PostgreSQL's resolution)."""
    return pc.cast(pc.cast(t_ns, pa.int64()).cast(pa.timestamp("ns", tz="UTC")), TS, safe=False)


def _frame(name: str, cols: dict[str, pa.Array]) -> pa.Table:
    schema = SCHEMAS[name]
    n = len(next(iter(cols.values())))
    arrays = [pc.cast(cols[f.name], f.type, safe=False) if f.name in cols
              else pa.nulls(n, f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


def stage_rows(run_id: str, stage: str, table: pa.Table) -> dict[str, pa.Table]:
    """Metric tables for one chunk (or all rows) of a replay stage; {} for unmapped stages."""
    if table.num_rows == 0 or "t_ns" not in table.column_names:
        return {}
    n = table.num_rows
    base = {"ts": ts_column(table["t_ns"]), "run_id": pa.array(np.full(n, run_id, dtype=object),
                                                               pa.string()),
            "step": table["step"]}
    have = set(table.column_names)
    out: dict[str, pa.Table] = {}
    if stage in _COLUMNS:
        name, mapping = _COLUMNS[stage]
        out[name] = _frame(name, base | {m: table[c] for m, c in mapping.items() if c in have})
    if stage in _BOOK:
        market, bid, ask = _BOOK[stage]
        cols = {"market": pa.array(np.full(n, market, dtype=object), pa.string()),
                "bid": table[bid], "ask": table[ask]}
        cols |= {c: table[c] for c in ("mid", "spread", "bid_depth", "ask_depth") if c in have}
        out["top_of_book"] = _frame("top_of_book", base | cols)
    if stage == "sim":
        types = [c.removeprefix("inventory_") for c in table.column_names if c.startswith("inventory_")]
        if types:
            k = len(types)
            # long format, step-major: row i*k + j is agent type j at step i
            parts = {"ts": pc.take(base["ts"], np.repeat(np.arange(n), k)),
                     "run_id": pa.array(np.full(n * k, run_id, dtype=object), pa.string()),
                     "step": np.repeat(table["step"].to_numpy(), k),
                     "agent_type": pa.array(np.tile(np.array(types, dtype=object), n), pa.string()),
                     "inventory": _interleave(table, [f"inventory_{t}" for t in types]),
                     "pnl": _interleave(table, [f"pnl_{t}" if f"pnl_{t}" in have else None
                                                for t in types])}
            out["agent_positions"] = _frame("agent_positions", parts)
    return out


def _interleave(table: pa.Table, names: list[str | None]) -> np.ndarray:
    n = table.num_rows
    cols = [table[c].to_numpy().astype(np.float64) if c else np.full(n, np.nan) for c in names]
    return np.column_stack(cols).reshape(-1)


def status_rows(recorder: str, status: dict, ts_ns: int) -> dict[str, pa.Table]:
    """Metric tables for one recorder status snapshot (`recorder.daemon.Daemon.status()`)."""
    ts = ts_column(pa.array([ts_ns], pa.int64()))
    head = {k: pa.array([status.get(k)]) for k in ("received", "written", "dropped", "queue_depth",
                                                    "batches", "ack_lag_ms", "max_ack_lag_ms")}
    out = {"recorder_status": _frame("recorder_status", {"ts": ts, "recorder": pa.array([recorder])}
                                     | {k: pc.cast(v, pa.float64()) for k, v in head.items()})}
    streams = status.get("streams") or []
    if streams:
        m = len(streams)
        cols = {k: pa.array([s.get(k) for s in streams], pa.float64())
                for k in ("received", "written", "rate_per_s", "feed_lag_ms", "gaps", "reconnects",
                          "errors")}
        cols |= {k: pa.array([str(s.get(k)) for s in streams], pa.string()) for k in ("source", "stream")}
        out["recorder_streams"] = _frame("recorder_streams", {
            "ts": pc.take(ts, np.zeros(m, np.int64)), "recorder": pa.array([recorder] * m)} | cols)
    return out
