"""Window reads of a normalised table, in the log's total order.

Only the outputs of segments the index says overlap the window (and hold the streams asked
for) are opened; missing or stale outputs are normalised first. Rows come sorted by
(recv_ts_ns, source, stream, seq), depth rows then by `level`, the position of the level in
its message as received. Acknowledged rows of segments still open (the live tail) are not
in the cache: replay's live mode reads them from the log and parses them with `parse_events`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl

from recorder.index import LogIndex
from recorder.normalize.cache import normalize_segments, output_files
from recorder.normalize.parse import check_tables
from recorder.normalize.reddit import dedupe
from recorder.normalize.routes import stream_key
from recorder.normalize.tables import empty, order_keys
from recorder.reader import match_streams

Window = tuple[int | None, int | None]


def read_table(root: str | Path, table: str, window: Window | None = None,
               symbols: Sequence[str] | None = None, streams: Sequence[str] | None = None
               ) -> pl.LazyFrame:
    """Rows of `table` with recv_ts_ns in [start, end), sorted in log order.

    `streams` are fnmatch patterns as in `LogReader.read` ("source:stream" when the pattern
    has ':', else the stream name); `symbols` match case-insensitively. `posts` are
    deduplicated by id within the window (latest version wins) and have no symbol.
    """
    root = Path(root)
    (table,) = check_tables([table])
    if symbols is not None and table == "posts":
        raise ValueError("read_table: posts have no symbol; select subreddits with "
                         "streams=['r/<sub>/*']")
    if not (root / "index.sqlite").exists():
        raise FileNotFoundError(f"log.root={root}: no log here (index.sqlite missing)")
    index = LogIndex(root)
    try:
        exact = match_streams(streams, index.streams())
        segments = index.segments(window, exact) if exact is None or exact else []
    finally:
        index.close()
    if segments:
        normalize_segments(root, segments, [table])
    files = output_files(root, table, segments)
    if not files:
        return empty(table).lazy()
    lf = pl.scan_parquet([str(f) for f in files], hive_partitioning=False)
    if window is not None:
        start, end = window
        if start is not None:
            lf = lf.filter(pl.col("recv_ts_ns") >= start)
        if end is not None:
            lf = lf.filter(pl.col("recv_ts_ns") < end)
    if exact is not None:
        lf = lf.filter(stream_key().is_in(sorted(f"{a}\x00{b}" for a, b in exact)))
    if symbols is not None:
        lf = lf.filter(pl.col("symbol").is_in(sorted({s.upper() for s in symbols})))
    if table == "posts":
        return dedupe(lf)
    return lf.sort(order_keys(table))
