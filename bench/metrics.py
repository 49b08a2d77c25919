"""Benchmark of the metrics sink: rows/s into a real PostgreSQL through `MetricsSink` (batched
COPY from a background thread) beside plain per-row INSERTs, in the same run and database.

Prints one JSON line per figure. Usage:
    python bench/metrics.py                      # a throwaway cluster (Debian postgresql, as the tests)
    SMABM_METRICS_DSN=postgresql://... python bench/metrics.py --steps 200000
The workload is what a replay streams: chunks of 600 one-second steps of the book, tape,
sentiment, regimes and sim stages (sim with 5 agent types), i.e. 11 metric rows per step.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pathlib
import sys
import time

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402

from monitor.rows import stage_rows  # noqa: E402
from monitor.schema import ensure_partitions, migrate  # noqa: E402
from monitor.sink import MetricsSink, SinkSettings, libpq_dsn  # noqa: E402

T0 = 1_723_161_253_937_085_768
TYPES = ("market_maker", "informed", "noise", "arbitrageur", "initial_book")


def chunks(steps: int, chunk: int = 600, seed: int = 0):
    """(stage, table) pairs as run_replay produces them, chunk after chunk."""
    g = np.random.default_rng(np.random.SeedSequence(seed))
    for s0 in range(0, steps, chunk):
        n = min(chunk, steps - s0)
        base = {"step": np.arange(s0, s0 + n, dtype=np.int64),
                "t_ns": T0 + np.arange(s0, s0 + n, dtype=np.int64) * 1_000_000_000}
        f = lambda n=n: g.normal(size=n)  # noqa: E731
        yield "book", pa.table(base | {k: f() for k in ("bid_px", "ask_px", "mid", "spread", "bid_depth",
                                                          "ask_depth")})
        yield "tape", pa.table(base | {k: f() for k in ("open", "high", "low", "close", "vwap", "volume",
                                                          "buy_volume", "sell_volume", "realized_var")}
                               | {"trade_count": g.integers(0, 50, n)})
        yield "sentiment", pa.table(base | {"n_texts": g.integers(0, 3, n)}
                                    | {k: f() for k in ("score_mean", "score_ewma", "epistemic_ewma",
                                                        "aleatoric_ewma", "disagreement")})
        yield "regimes", pa.table(base | {k: f() for k in ("mood", "mood_sd", "volatility",
                                                            "volatility_sd", "liquidity", "liquidity_sd")}
                                  | {f"{k}_label": g.integers(-1, 3, n).astype(np.int8)
                                     for k in ("mood", "volatility", "liquidity")})
        yield "sim", pa.table(base | {k: f() for k in ("best_bid", "best_ask", "mid", "spread", "bid_depth",
                                                        "ask_depth")}
                              | {f"{p}_{t}": f() for t in TYPES for p in ("inventory", "pnl")})


def count(dsn: str, schema: str) -> int:
    with psycopg.connect(dsn) as conn:
        return sum(conn.execute(sql.SQL("SELECT count(*) FROM {}.{}").format(
            sql.Identifier(schema), sql.Identifier(t))).fetchone()[0]
            for t in ("top_of_book", "bars", "sentiment", "regimes", "agent_positions"))


def bench_sink(dsn: str, steps: int) -> dict:
    schema = "bench_sink"
    put_s, n = 0.0, 0
    wall0 = time.perf_counter()
    sink = MetricsSink(dsn, SinkSettings(schema=schema, max_rows=10_000_000)).start()
    for stage, table in chunks(steps):
        t = time.perf_counter()
        sink.put_stage("bench", stage, table)
        put_s += time.perf_counter() - t
        n += 1
    st = sink.close(timeout_s=600)
    wall = time.perf_counter() - wall0
    assert st.dropped == 0 and st.written == count(dsn, schema), st
    return {"rows": st.written, "seconds": wall, "put_us_per_chunk": put_s / n * 1e6, "chunks": n}


def bench_inserts(dsn: str, steps: int) -> dict:
    """The naive sink: one INSERT per metric row, one commit per stage chunk."""
    schema = "bench_insert"
    with psycopg.connect(dsn, options="-c TimeZone=UTC") as conn:
        migrate(conn, schema)
        rows = 0
        wall0 = time.perf_counter()
        made = set()
        for stage, table in chunks(steps):
            with conn.transaction():
                for name, t in stage_rows("bench", stage, table).items():
                    days = sorted(set(t["ts"].cast(pa.date32()).to_pylist()) - {d for (m, d) in made
                                                                                if m == name})
                    if days:
                        ensure_partitions(conn, schema, name, days)
                        made |= {(name, d) for d in days}
                    stmt = sql.SQL("INSERT INTO {}.{} ({}) VALUES ({})").format(
                        sql.Identifier(schema), sql.Identifier(name),
                        sql.SQL(", ").join(map(sql.Identifier, t.column_names)),
                        sql.SQL(", ").join(sql.Placeholder() * t.num_columns))
                    with conn.cursor() as cur:
                        for row in t.to_pylist():
                            cur.execute(stmt, list(row.values()))
                    rows += t.num_rows
        wall = time.perf_counter() - wall0
    assert rows == count(dsn, schema)
    return {"rows": rows, "seconds": wall}


@contextlib.contextmanager
def database():
    if os.environ.get("SMABM_METRICS_DSN"):
        yield libpq_dsn(os.environ["SMABM_METRICS_DSN"]), "SMABM_METRICS_DSN"
        return
    from tests.harness.postgres import postgres_server

    with postgres_server() as url:
        yield libpq_dsn(url), "throwaway cluster (fsync=off)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=60_000, help="replay steps through the sink")
    ap.add_argument("--insert-steps", type=int, default=6_000, help="steps through per-row INSERTs")
    a = ap.parse_args()
    with database() as (dsn, where):
        with psycopg.connect(dsn, autocommit=True) as conn:
            for s in ("bench_sink", "bench_insert"):
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(s)))
        sink = bench_sink(dsn, a.steps)
        ins = bench_inserts(dsn, a.insert_steps)
        with psycopg.connect(dsn, autocommit=True) as conn:
            server = conn.info.parameter_status("server_version")
            for s in ("bench_sink", "bench_insert"):
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(s)))
    sink_rate = sink["rows"] / sink["seconds"]
    ins_rate = ins["rows"] / ins["seconds"]
    common = {"postgres": server, "database": where}
    print(json.dumps({"figure": "sink_rows_per_s", "value": round(sink_rate), "rows": sink["rows"],
                      "seconds": round(sink["seconds"], 3), **common}))
    print(json.dumps({"figure": "insert_rows_per_s", "value": round(ins_rate), "rows": ins["rows"],
                      "seconds": round(ins["seconds"], 3), **common}))
    print(json.dumps({"figure": "sink_vs_insert_ratio", "value": round(sink_rate / ins_rate, 1),
                      "baseline": "per-row INSERT, commit per chunk, same run", **common}))
    print(json.dumps({"figure": "producer_us_per_chunk", "value": round(sink["put_us_per_chunk"], 1),
                      "chunk_steps": 600, "chunks": sink["chunks"],
                      "note": "time the replay spends handing one stage's chunk to the sink"}))


if __name__ == "__main__":
    main()
