"""Sealing: an in-memory batch of events becomes an immutable, sorted zstd Parquet segment.

A segment is written to a staging path, fsynced, hashed, and only then named in the index and
moved into `raw/` (see writer.py for the commit protocol). It is never rewritten afterwards.
"""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from recorder.events import ORDER_KEYS, SCHEMA
from recorder.index import SegmentInfo, StreamStats

ROW_GROUP_ROWS = 32_768
FORMAT_VERSION = "1"


def segment_relpath(writer: str, n: int, min_recv_ns: int) -> str:
    """`raw/day=YYYY-MM-DD/<writer>-<n>.parquet`: hive `day` is not a column inside the file."""
    day = datetime.fromtimestamp(min_recv_ns / 1e9, tz=UTC).strftime("%Y-%m-%d")
    return f"raw/day={day}/{writer}-{n:08d}.parquet"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _opt(v) -> int | None:
    return None if v is None else int(v)


def stream_stats(table: pa.Table) -> tuple[StreamStats, ...]:
    """Per-(source, stream) row count, seq range and time ranges, computed vectorised."""
    df = pl.from_arrow(table.select(["source", "stream", "seq", "recv_ts_ns", "event_ts_ns"]))
    g = (df.group_by(["source", "stream"])
         .agg(pl.len().alias("rows"), pl.col("seq").min().alias("a"), pl.col("seq").max().alias("b"),
              pl.col("recv_ts_ns").min().alias("c"), pl.col("recv_ts_ns").max().alias("d"),
              pl.col("event_ts_ns").min().alias("e"), pl.col("event_ts_ns").max().alias("f"))
         .sort(["source", "stream"]))
    return tuple(StreamStats(r[0], r[1], int(r[2]), int(r[3]), int(r[4]), int(r[5]), int(r[6]),
                             _opt(r[7]), _opt(r[8])) for r in g.iter_rows())


def write_segment(table: pa.Table, staging: Path, writer: str, n: int) -> tuple[Path, SegmentInfo]:
    """Sort, write and fsync one segment under `staging`; return its file and index row."""
    table = table.cast(SCHEMA)
    table = table.take(pc.sort_indices(table, sort_keys=ORDER_KEYS))
    recv = table["recv_ts_ns"]
    ev = table["event_ts_ns"]
    rel = segment_relpath(writer, n, pc.min(recv).as_py())
    tmp = staging / Path(rel).name
    staging.mkdir(parents=True, exist_ok=True)
    meta = {b"smabm.format": FORMAT_VERSION.encode(), b"smabm.writer": writer.encode(),
            b"smabm.n": str(n).encode()}
    pq.write_table(table.replace_schema_metadata(meta), tmp, compression="zstd",
                   row_group_size=ROW_GROUP_ROWS, use_dictionary=["source", "stream", "conn", "kind"],
                   write_statistics=True)
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    info = SegmentInfo(
        path=rel, writer=writer, n=n, rows=table.num_rows, bytes=tmp.stat().st_size,
        sha256=sha256_file(tmp), min_recv_ns=pc.min(recv).as_py(), max_recv_ns=pc.max(recv).as_py(),
        min_event_ns=pc.min(ev).as_py(), max_event_ns=pc.max(ev).as_py(),
        streams=stream_stats(table))
    return tmp, info


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
