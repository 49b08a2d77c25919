"""The metrics sink against a real PostgreSQL started by the test (tests/harness/postgres.py)."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
import polars as pl
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal

from monitor.hooks import LiveChunks, StatusFollower, recorder_monitor, replay_monitor
from monitor.rows import SCHEMAS, stage_rows, ts_column
from monitor.schema import LATEST, RUN_TABLES, migrate
from monitor.sink import MetricsSink, SinkSettings, libpq_dsn, safe_error
from monitor.sources import RunFiles, RunsInPostgres, StatusInPostgres
from recorder.status import write_status
from tests.harness.monitor_run import STAGES, config, demo_run
from tests.harness.pg import ServerControl, dsn
from tests.harness.postgres import postgres_server

FAST = {"flush_interval_s": 0.05, "retry_s": 0.1, "warn_every_s": 0.0}


@pytest.fixture(scope="module")
def pg_url():
    with postgres_server() as url:
        yield url


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return demo_run(tmp_path_factory.mktemp("monitor-run"))


def query(url: str, q: str, *args) -> list[tuple]:
    with psycopg.connect(dsn(url)) as conn:
        return conn.execute(q, args).fetchall()


def frame(url: str, schema: str, table: str, run_id: str) -> pl.DataFrame:
    cols = SCHEMAS[table].names
    order = "step, market" if table == "top_of_book" else "step, agent_type" \
        if table == "agent_positions" else "step"
    rows = query(url, f"SELECT {', '.join(cols)} FROM {schema}.{table} WHERE run_id = %s "
                      f"ORDER BY {order}", run_id)
    return pl.DataFrame(rows, schema=pl.from_arrow(SCHEMAS[table].empty_table()).schema, orient="row")


def batch(n: int, step0: int = 0) -> pa.Table:
    """`n` steps of a tape stage's output (what run_replay hands the hook)."""
    t = 1_723_161_253_937_085_768 + (np.arange(n) + step0) * 1_000_000_000
    return pa.table({"step": np.arange(step0, step0 + n, dtype=np.int64), "t_ns": t,
                     "open": np.full(n, 1.0), "volume": np.arange(n, dtype=np.float64)})


def bars(n: int, step0: int = 0) -> pa.Table:
    return stage_rows("r", "tape", batch(n, step0))["bars"]


def test_replay_outputs_land_in_partitioned_tables(pg_url, run, monkeypatch):
    """The run's tables fed chunk by chunk through the replay hook, as run_replay would."""
    monkeypatch.setenv("SMABM_METRICS_DSN", pg_url)
    cfg = config("monitor.sink.enabled=true", "monitor.sink.schema=replay_test",
                 "monitor.live_chunks=false")
    tables = {s: pq.read_table(run / f"{s}.parquet") for s in STAGES}
    with replay_monitor(cfg, run) as on_chunk:
        for start in range(0, 347, 100):   # chunks of 100 steps, stages in pipeline order
            for s in STAGES:
                on_chunk(s, tables[s].slice(start, 100))
    run_id = run.name
    expected = {}
    for s in STAGES:
        for name, t in stage_rows(run_id, s, tables[s]).items():
            expected.setdefault(name, []).append(t)
    for name in RUN_TABLES:
        want = pl.from_arrow(pa.concat_tables(expected[name]))
        want = want.sort(["step", *([c] if (c := {"top_of_book": "market", "agent_positions":
                                                   "agent_type"}.get(name)) else [])])
        assert_frame_equal(frame(pg_url, "replay_test", name, run_id), want)
    # the values mean what they say, checked against the stage files themselves
    book, sim = tables["book"].to_pandas(), tables["sim"].to_pandas()
    tob = frame(pg_url, "replay_test", "top_of_book", run_id)
    real = tob.filter(pl.col("market") == "real")
    simmed = tob.filter(pl.col("market") == "sim")
    assert real.height == simmed.height == 347
    assert np.array_equal(real["mid"].to_numpy(), book["mid"].to_numpy())
    assert np.array_equal(real["bid"].to_numpy(), book["bid_px"].to_numpy())
    assert np.array_equal(simmed["ask"].to_numpy(), sim["best_ask"].to_numpy(), equal_nan=True)
    pos = frame(pg_url, "replay_test", "agent_positions", run_id)
    mm = pos.filter(pl.col("agent_type") == "market_maker")
    assert set(pos["agent_type"]) == {"market_maker", "informed", "noise", "arbitrageur", "initial_book"}
    assert np.array_equal(mm["inventory"].to_numpy(), sim["inventory_market_maker"].to_numpy())
    assert np.array_equal(mm["pnl"].to_numpy(), sim["pnl_market_maker"].to_numpy())
    t0 = pl.from_arrow(ts_column(tables["book"]["t_ns"].slice(0, 1)))[0]
    assert tob["ts"][0] == t0
    (run_row,) = query(pg_url, "SELECT rows, first_ts, last_ts FROM replay_test.runs WHERE run_id = %s",
                       run_id)
    assert run_row[0] == sum(t.num_rows for ts in expected.values() for t in ts)
    assert run_row[1] == t0 and run_row[2] > t0
    # native partitions by day, BRIN on ts, schema version recorded
    parts = query(pg_url, "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                          "JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace n ON "
                          "n.oid = p.relnamespace WHERE n.nspname = 'replay_test' AND "
                          "p.relname = 'top_of_book' AND c.relkind = 'r'")
    assert parts == [("top_of_book_p20240808",)]
    (am,) = query(pg_url, "SELECT a.amname FROM pg_class c JOIN pg_am a ON a.oid = c.relam JOIN "
                          "pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'replay_test' "
                          "AND c.relname = 'top_of_book_ts_brin'")
    assert am == ("brin",)
    assert query(pg_url, "SELECT version FROM replay_test.schema_version") == [(LATEST,)]


def test_database_down_mid_run_drops_exactly_past_the_bound(pg_url, caplog):
    caplog.set_level(logging.WARNING, logger="smabm.monitor")
    ctl = ServerControl(pg_url)
    sink = MetricsSink(pg_url, SinkSettings(schema="outage", max_rows=1000, batch_rows=500, **FAST))
    with sink:
        assert all(sink.put("bars", bars(100, 100 * i)) for i in range(10))
        assert sink.flush(30) and sink.stats.written == 1000
        ctl.stop()
        try:
            # the writer holds what it has and retries; puts past 1000 held rows are dropped
            accepted = [sink.put("bars", bars(100, 1000 + 100 * i)) for i in range(30)]
            assert accepted == [True] * 10 + [False] * 20
            assert sink.stats.dropped == 2000 and sink.stats.pending == 1000
            assert sink.stats.written == 1000     # nothing got through while it was down
        finally:
            ctl.start()
        assert all(sink.put("bars", bars(100, 4000 + 100 * i)) for i in range(5))
    st = sink.stats
    assert (st.offered, st.written, st.dropped, st.pending) == (4500, 2500, 2000, 0)
    assert st.errors >= 1 and st.last_error.split(":")[0] in ("AdminShutdown", "OperationalError")
    assert query(pg_url, "SELECT count(*) FROM outage.bars") == [(2500,)]
    assert "dropped" in caplog.text and "2000 in all" in caplog.text


def test_a_slow_database_never_blocks_the_producer(pg_url):
    """A COPY stuck behind a lock is cancelled by the statement timeout and retried."""
    sink = MetricsSink(pg_url, SinkSettings(schema="slow", max_rows=300, batch_rows=100,
                                            statement_timeout_s=0.5, **FAST))
    with sink:
        sink.put("bars", bars(10))
        assert sink.flush(30)
        with psycopg.connect(dsn(pg_url)) as locker:
            locker.execute("LOCK TABLE slow.bars IN ACCESS EXCLUSIVE MODE")
            accepted = [sink.put("bars", bars(100, 100 * (i + 1))) for i in range(5)]
            assert not sink.flush(1.5)           # the lock holds: nothing is written meanwhile
            assert sink.stats.written == 10 and sink.stats.errors >= 1
        # lock released with the transaction: the held rows go in
        assert sink.flush(30)
    assert accepted == [True] * 3 + [False] * 2
    assert query(pg_url, "SELECT count(*) FROM slow.bars") == [(310,)]
    assert sink.stats.dropped == 200 and "QueryCanceled" in sink.stats.last_error


def test_closing_with_the_database_gone_counts_what_was_held(pg_url):
    sink = MetricsSink("postgresql://nobody:s3cret-pw@127.0.0.1:9/none",
                       SinkSettings(schema="gone", **FAST)).start()
    assert sink.put("bars", bars(50))
    st = sink.close(timeout_s=0.5)
    assert (st.offered, st.written, st.dropped, st.pending) == (50, 0, 50, 0)
    assert "s3cret-pw" not in st.last_error and "OperationalError" in st.last_error
    assert not sink.put("bars", bars(5))          # closed: counted, not queued
    assert sink.stats.dropped == 55


def test_errors_never_show_the_dsn():
    url = "postgresql+psycopg://me:hunter2@db.example:5432/metrics"
    err = psycopg.OperationalError(f"connection to {libpq_dsn(url)} failed; password hunter2 wrong")
    text = safe_error(err, url)
    assert "hunter2" not in text and text.startswith("OperationalError: connection to ***")


def test_migration_is_idempotent_and_refuses_a_newer_schema(pg_url):
    with psycopg.connect(dsn(pg_url), autocommit=True) as conn:
        assert migrate(conn, "mig") == LATEST
        assert migrate(conn, "mig") == LATEST
        assert conn.execute("SELECT count(*) FROM mig.schema_version").fetchone() == (1,)
        conn.execute("INSERT INTO mig.schema_version (version, description) VALUES (99, 'future')")
        with pytest.raises(RuntimeError, match="version 99"):
            migrate(conn, "mig")


def test_recorder_status_file_is_followed_into_the_sink(pg_url, tmp_path, monkeypatch):
    status = tmp_path / "record-status.json"
    monkeypatch.setenv("SMABM_METRICS_DSN", pg_url)
    cfg = config("monitor.sink.enabled=true", "monitor.sink.schema=rec", "monitor.sink.recorder=r1",
                 f"record.status_file={status}", "monitor.sink.status_poll_s=0.05")
    stream = {"source": "binance.spot", "stream": "btcusdt@trade", "received": 10, "written": 9,
              "rate_per_s": 12.5, "feed_lag_ms": 3.25, "gaps": 1, "last_gap": None, "reconnects": 2,
              "last_reconnect_ns": None, "errors": 0}
    with recorder_monitor(cfg) as follower:
        write_status(status, {"received": 10, "written": 9, "dropped": 0, "queue_depth": 1,
                              "batches": 3, "ack_lag_ms": 1.5, "max_ack_lag_ms": 4.0,
                              "streams": [stream]})
        while follower.snapshots < 1:
            threading.Event().wait(0.02)
    rows = query(pg_url, "SELECT recorder, source, stream, received, rate_per_s, feed_lag_ms, gaps, "
                         "reconnects FROM rec.recorder_streams")
    assert rows == [("r1", "binance.spot", "btcusdt@trade", 10, 12.5, 3.25, 1, 2)]
    assert query(pg_url, "SELECT queue_depth, ack_lag_ms FROM rec.recorder_status") == [(1, 1.5)]


def test_follower_reads_each_snapshot_once(tmp_path):
    got = []

    class Sink:
        def put_status(self, recorder, status, ts_ns):
            got.append((recorder, status["written"], ts_ns))

    path = tmp_path / "s.json"
    f = StatusFollower(path, Sink(), "rec")
    assert not f.poll()                             # no file yet
    write_status(path, {"written": 1, "streams": []})
    assert f.poll() and not f.poll()
    assert got == [("rec", 1, path.stat().st_mtime_ns)]


def test_monitoring_off_by_default_and_live_chunks(tmp_path, monkeypatch):
    with replay_monitor(config(), tmp_path / "r") as on_chunk:
        assert on_chunk is None                     # the embedded default needs no database
    monkeypatch.delenv("SMABM_METRICS_DSN", raising=False)
    with (pytest.raises(ValueError, match="monitor.sink.dsn_env: environment variable SMABM_METRICS_DSN"),
          replay_monitor(config("monitor.sink.enabled=true"), tmp_path / "r")):
        pass
    run = tmp_path / "r"
    with replay_monitor(config("replay.speed=4"), run) as on_chunk:   # paced: live files (auto)
        on_chunk("tape", batch(3))
        on_chunk("tape", batch(2, 3))
        assert sorted(p.name for p in (run / "live").iterdir()) == ["tape-000000.parquet",
                                                                     "tape-000001.parquet"]
        (run / "manifest.json").write_text("{}")
    assert not (run / "live").exists()              # the run finished: final tables replace them
    live = LiveChunks(tmp_path / "crashed")
    live("book", batch(1))
    live.close()
    assert (tmp_path / "crashed" / "live" / "book-000000.parquet").exists()   # no manifest: kept


def test_dashboard_reads_back_from_postgres_what_the_files_show(pg_url, run):
    """The sink's tables, read by the dashboard's PostgreSQL reader, equal the run directory's."""
    with MetricsSink(pg_url, SinkSettings(schema="dash_pg", **FAST)) as sink:
        for s in STAGES:
            sink.put_stage(run.name, s, pq.read_table(run / f"{s}.parquet"))
        for i, rate in enumerate((5.0, 7.5)):
            sink.put_status("rec", {"received": i, "queue_depth": i, "streams": [
                {"source": "reddit", "stream": "comments", "rate_per_s": rate}]}, 1_800_000_000 * 10**9 + i)
    pg = RunsInPostgres(pg_url, "dash_pg", max_points=100)
    assert [r.run_id for r in pg.runs()] == [run.name]
    got, want = pg.timeline(run.name), RunFiles(run.parent, max_points=100).timeline(run.name)
    assert (got.steps, got.stride) == (want.steps, want.stride) == (347, 4)
    for name in RUN_TABLES:
        sort = ["step", *({"top_of_book": ["market"], "agent_positions": ["agent_type"]}.get(name, []))]
        assert_frame_equal(got.tables[name].sort(sort), want.tables[name].sort(sort))
    view = StatusInPostgres(pg_url, "dash_pg", "rec").view()
    assert view.streams["rate_per_s"].to_list() == [5.0, 7.5]
    assert view.status["queue_depth"].to_list() == [0, 1]
