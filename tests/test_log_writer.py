"""Writer, index and reader behaviour on small hand-made logs."""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from recorder.events import events_table
from recorder.index import LogIndex
from recorder.reader import CorruptSegmentError, LogReader
from recorder.writer import LogWriter, LogWriterError


def _table(source, stream, ts, payload=None):
    n = len(ts)
    return events_table(source=[source] * n, stream=[stream] * n, recv_ts_ns=list(ts),
                        payload=payload or [f"{source}/{stream}/{t}".encode() for t in ts])


def test_seq_assigned_per_stream_and_continues_after_reopen(tmp_path):
    with LogWriter(tmp_path, "w") as w:
        w.append(_table("s", "a", [5, 1, 3]))
        w.append(_table("s", "b", [2]))
    with LogWriter(tmp_path, "w") as w:
        w.append(_table("s", "a", [9]))
    t = pa.Table.from_batches(list(LogReader(tmp_path).read()))
    got = sorted(zip(t["stream"].to_pylist(), t["seq"].to_pylist(), t["recv_ts_ns"].to_pylist()))
    assert got == [("a", 0, 5), ("a", 1, 1), ("a", 2, 3), ("a", 3, 9), ("b", 0, 2)]


def test_explicit_seq_must_increase(tmp_path):
    with LogWriter(tmp_path, "w") as w:
        w.append(events_table(source=["s"], stream=["a"], recv_ts_ns=[1], payload=[b"x"], seq=[7]))
        with pytest.raises(LogWriterError, match="seq 7 of stream s:a does not increase"):
            w.append(events_table(source=["s"], stream=["a"], recv_ts_ns=[2], payload=[b"y"], seq=[7]))


def test_bad_input_names_the_problem(tmp_path):
    with pytest.raises(LogWriterError, match="log.fsync='sometimes'"):
        LogWriter(tmp_path, "w", fsync="sometimes")
    with LogWriter(tmp_path, "w") as w, pytest.raises(LogWriterError, match="unknown kind 'weird'"):
        w.append(events_table(source=["s"], stream=["a"], recv_ts_ns=[1], payload=[b"x"], kind="weird"))


def test_second_process_with_same_writer_id_is_refused(tmp_path):
    with LogWriter(tmp_path, "w"), pytest.raises(LogWriterError, match="already open"):
        LogWriter(tmp_path, "w")


def test_payload_bytes_are_kept_verbatim(tmp_path):
    raw = [b'{"a": 1}', b"\x00\xff not json \n", b""]
    with LogWriter(tmp_path, "w") as w:
        w.append(_table("s", "a", [1, 2, 3], payload=raw))
    t = pa.Table.from_batches(list(LogReader(tmp_path).read()))
    assert t["payload"].to_pylist() == raw


def test_window_and_stream_filters_touch_only_overlapping_segments(tmp_path):
    with LogWriter(tmp_path, "w", segment_max_rows=10) as w:
        for k in range(5):
            w.append(_table("binance.spot", "btcusdt@trade", range(k * 100, k * 100 + 10)))
            w.append(_table("reddit", "r/bitcoin/comments", range(k * 100, k * 100 + 10)))
    r = LogReader(tmp_path)
    assert len(r.segments()) == 10
    assert len(r.segments(window=(200, 300))) == 2
    assert len(r.segments(window=(200, 300), streams=["reddit:*"])) == 1
    t = pa.Table.from_batches(list(r.read(window=(205, 405), streams=["*@trade"])))
    assert set(t["source"].to_pylist()) == {"binance.spot"}
    want = list(range(205, 210)) + list(range(300, 310)) + list(range(400, 405))
    assert t["recv_ts_ns"].to_pylist() == want


def test_read_order_is_total_across_overlapping_writers(tmp_path):
    rng = np.random.default_rng(7)
    for wid in ("a", "b", "c"):
        with LogWriter(tmp_path, wid, segment_max_rows=50) as w:
            for _ in range(4):
                ts = np.sort(rng.integers(0, 500, 40))
                w.append(_table(wid, str(rng.integers(0, 2)), ts))
    batches = list(LogReader(tmp_path).read(batch_rows=17))
    assert max(b.num_rows for b in batches) <= 17
    df = pl.from_arrow(pa.Table.from_batches(batches))
    assert df.height == 3 * 4 * 40
    keys = df.select("recv_ts_ns", "source", "stream", "seq").rows()
    assert keys == sorted(keys)


def test_layout_readable_by_polars_pyarrow_duckdb(tmp_path):
    import duckdb
    import pyarrow.dataset as ds

    with LogWriter(tmp_path, "w", segment_max_rows=4) as w:
        for start in (0, 4, 8):  # one append per segment: a seal follows an append that fills it
            w.append(_table("s", "a", [86_400_000_000_000 * d + 1 for d in range(start, min(start + 4, 10))]))
    n_polars = pl.scan_parquet(str(tmp_path / "raw" / "**" / "*.parquet"), hive_partitioning=True
                               ).select(pl.len()).collect().item()
    n_arrow = ds.dataset(tmp_path / "raw", format="parquet", partitioning="hive").count_rows()
    n_duck = duckdb.sql(f"select count(*) from read_parquet('{tmp_path}/raw/*/*.parquet', "
                        "hive_partitioning=true)").fetchall()[0][0]
    assert n_polars == n_arrow == n_duck == 10
    days = pl.scan_parquet(str(tmp_path / "raw" / "**" / "*.parquet"), hive_partitioning=True
                           ).select(pl.col("day").n_unique()).collect().item()
    assert days == 3  # segments of 4 rows starting on day 0, 4 and 8


def test_corrupt_segment_gives_one_line_error_naming_it(tmp_path):
    with LogWriter(tmp_path, "w") as w:
        w.append(_table("s", "a", [1, 2, 3]))
    seg = LogIndex(tmp_path).segments()[0]
    (tmp_path / seg.path).write_bytes(b"garbage")
    with pytest.raises(CorruptSegmentError, match=seg.path.split("/")[-1]):
        list(LogReader(tmp_path).read())


def test_staged_writer_commits_atomically_or_not_at_all(tmp_path):
    with LogWriter(tmp_path, "imp", staged=True, segment_max_rows=2) as w:
        w.append(_table("s", "a", [1, 2, 3, 4, 5]))
        # closed without commit: nothing visible, nothing left in staging
    assert LogIndex(tmp_path).segments() == []
    assert not list((tmp_path / "staging").rglob("*.parquet"))
    with LogWriter(tmp_path, "imp", staged=True, segment_max_rows=2) as w:
        w.append(_table("s", "a", [1, 2, 3, 4, 5]))
        w.commit(import_key="k1", import_meta={"rows": 5})
    idx = LogIndex(tmp_path)
    assert idx.has_import("k1") and sum(s.rows for s in idx.segments()) == 5


def test_open_journal_is_readable_as_live_tail(tmp_path):
    w = LogWriter(tmp_path, "w", segment_max_age_s=None)
    w.append(_table("s", "a", [1, 2]))
    assert list(LogReader(tmp_path).read()) == []  # nothing sealed yet
    tail = pa.Table.from_batches(list(LogReader(tmp_path).read(include_open=True)))
    assert tail["recv_ts_ns"].to_pylist() == [1, 2]
    w.close()


def test_interval_policy_acknowledges_from_the_background(tmp_path):
    import time

    w = LogWriter(tmp_path, "w", fsync="interval", fsync_interval_s=0.05, segment_max_age_s=None)
    ticket = w.append(_table("s", "a", [1, 2, 3]))
    deadline = time.monotonic() + 5
    while w.acked < ticket and time.monotonic() < deadline:
        time.sleep(0.01)
    assert w.acked == ticket  # durable without another append or an explicit flush
    w.append(_table("s", "a", [4]))
    w.close()
    assert pa.Table.from_batches(list(LogReader(tmp_path).read())).num_rows == 4
