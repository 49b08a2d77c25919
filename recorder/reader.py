"""Window reads in the log's total order with memory bounded by batch size.

Only segments the index says overlap the window are opened. Each segment is already sorted, so
overlapping segments are merged k-way, vectorised: every round takes, from each cursor, the rows
strictly before the smallest "last key" any cursor holds (the watermark), sorts that slice once
and emits it. No row can arrive later with a smaller key, and each cursor holds at most a couple
of batches at a time however long the window is.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from recorder.events import ORDER_KEYS, SCHEMA
from recorder.index import LogIndex, SegmentInfo
from recorder.journal import read_open_journals

Window = tuple[int | None, int | None]


class CorruptSegmentError(RuntimeError):
    """A segment file is missing or unreadable; the message names it."""


def match_streams(patterns: Sequence[str] | None, known: Sequence[tuple[str, str]]
                  ) -> set[tuple[str, str]] | None:
    """Resolve fnmatch patterns ('source:stream' if the pattern has ':', else the stream)."""
    if patterns is None:
        return None
    out = set()
    for p in patterns:
        for source, stream in known:
            name = f"{source}:{stream}" if ":" in p else stream
            if fnmatch.fnmatchcase(name, p):
                out.add((source, stream))
    return out


def stream_pairs(table: pa.Table) -> set[tuple[str, str]]:
    """Distinct (source, stream) pairs of a table, computed vectorised."""
    keys = pc.unique(pc.binary_join_element_wise(table["source"], table["stream"], "\x00"))
    return {tuple(k.split("\x00", 1)) for k in keys.to_pylist()}


def _filter_expr(window: Window | None, streams: set[tuple[str, str]] | None,
                 kinds: Sequence[str] | None = None):
    expr = None

    def both(a, b):
        return b if a is None else a & b

    if window:
        start, end = window
        if start is not None:
            expr = both(expr, ds.field("recv_ts_ns") >= start)
        if end is not None:
            expr = both(expr, ds.field("recv_ts_ns") < end)
    if streams is not None:
        names = sorted({s for _, s in streams})
        sources = sorted({s for s, _ in streams})
        expr = both(expr, ds.field("stream").isin(names) & ds.field("source").isin(sources))
    if kinds is not None:
        expr = both(expr, ds.field("kind").isin(list(kinds)))
    return expr


class _Cursor:
    """Sorted batches of one source (a segment or a journal tail), consumed from the front."""

    def __init__(self, batches: Iterator[pa.RecordBatch], exact: set[tuple[str, str]] | None):
        self._it = batches
        self._exact = exact
        self.pending: pa.Table | None = None
        self.done = False

    def _next_batch(self) -> pa.Table | None:
        for b in self._it:
            t = pa.Table.from_batches([b])
            if self._exact is not None and t.num_rows:
                # source/stream isin filters are a superset: keep exact (source, stream) pairs.
                keys = pc.binary_join_element_wise(t["source"], t["stream"], "\x00")
                want = pa.array(sorted(f"{a}\x00{b}" for a, b in self._exact))
                t = t.filter(pc.is_in(keys, value_set=want))
            if t.num_rows:
                return t
        self.done = True
        return None

    def fill(self) -> None:
        """Make sure there is at least one pending row unless exhausted."""
        while not self.done and (self.pending is None or self.pending.num_rows == 0):
            self.pending = self._next_batch()

    def extend(self) -> None:
        nxt = self._next_batch()
        if nxt is not None:
            self.pending = pa.concat_tables([self.pending, nxt]) if self.pending else nxt

    def last_ts(self) -> int:
        return self.pending["recv_ts_ns"][-1].as_py()

    def take_before(self, ts: int | None) -> pa.Table:
        """Pop rows with recv_ts < ts (all rows if ts is None)."""
        if self.pending is None:
            return SCHEMA.empty_table()
        if ts is None:
            out, self.pending = self.pending, None
            return out
        k = int(pc.sum(pc.less(self.pending["recv_ts_ns"], ts)).as_py() or 0)
        out = self.pending.slice(0, k)
        self.pending = self.pending.slice(k)
        return out


class LogReader:
    """Reads windows of the log written by `LogWriter` (see docs/concepts/log.md)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not (self.root / "index.sqlite").exists():
            raise FileNotFoundError(f"log.root={self.root}: no log here (index.sqlite missing)")
        self.index = LogIndex(self.root)

    def streams(self) -> list[tuple[str, str]]:
        return self.index.streams()

    def segments(self, window: Window | None = None, streams: Sequence[str] | None = None
                 ) -> list[SegmentInfo]:
        return self.index.segments(window, match_streams(streams, self.index.streams()))

    def _open_segment(self, info: SegmentInfo) -> pa.NativeFile:
        """Open a segment's file; a seal commits the index row just before moving the file out of
        `staging/`, so a live reader may find it in either place (once open, moves don't matter)."""
        dest = self.root / info.path
        for path in (dest, self.root / "staging" / info.writer / dest.name, dest):
            try:
                return pa.OSFile(str(path))
            except FileNotFoundError:
                continue
        raise CorruptSegmentError(f"segment {dest}: indexed but missing")

    def _segment_batches(self, info: SegmentInfo, expr, batch_rows: int) -> Iterator[pa.RecordBatch]:
        try:
            with self._open_segment(info) as f:
                fragment = ds.ParquetFileFormat().make_fragment(f)
                yield from fragment.to_batches(schema=SCHEMA, filter=expr, batch_size=batch_rows,
                                               use_threads=False)
        except (OSError, pa.ArrowInvalid) as exc:
            raise CorruptSegmentError(f"segment {self.root / info.path}: unreadable ({exc})") from exc

    def _journal_tables(self) -> list[tuple[str, int, pa.Table]]:
        """Acknowledged rows of open segments as (writer, segment n, sorted rows)."""
        out = []
        for writer, segment_n, batches in read_open_journals(self.root / "journal"):
            if batches:
                t = pa.Table.from_batches(batches, SCHEMA)
                out.append((writer, segment_n, t.take(pc.sort_indices(t, sort_keys=ORDER_KEYS))))
        return out

    def read(
        self,
        window: Window | None = None,
        streams: Sequence[str] | None = None,
        batch_rows: int = 65_536,
        columns: Sequence[str] | None = None,
        include_open: bool = False,
        kinds: Sequence[str] | None = None,
    ) -> Iterator[pa.RecordBatch]:
        """Yield record batches of the window in (recv_ts, source, stream, seq) order.

        `kinds` keeps only those event kinds (e.g. ["connect"]). `include_open` also returns
        acknowledged rows of segments still being written (the
        live tail); those are read whole, so they are bounded by the segment size.
        """
        # journals before the index: a segment sealed in between is then read from the index
        # only, its journal skipped by (writer, n), so rows are neither lost nor doubled
        journals = self._journal_tables() if include_open else []
        known = set(self.index.streams())
        for _, _, t in journals:
            known.update(stream_pairs(t))
        exact = match_streams(streams, sorted(known))
        if exact is not None and not exact:
            return
        expr = _filter_expr(window, exact, kinds)
        segments = self.index.segments(window, exact)
        sealed = {(s.writer, s.n) for s in segments}
        cursors = [_Cursor(self._segment_batches(s, expr, batch_rows), exact) for s in segments]
        for writer, n, t in journals:
            if (writer, n) in sealed:
                continue
            t = t.filter(expr) if expr is not None else t
            if t.num_rows:
                cursors.append(_Cursor(iter(t.to_batches(max_chunksize=batch_rows)), exact))
        for chunk in _merge(cursors):
            if columns is not None:
                chunk = chunk.select(list(columns))
            yield from chunk.to_batches(max_chunksize=batch_rows)


def merge_sorted(sources: Sequence[Iterator[pa.RecordBatch]]) -> Iterator[pa.Table]:
    """K-way merge of already-sorted batch streams into the log's total order."""
    return _merge([_Cursor(iter(s), None) for s in sources])


def _merge(cursors: list[_Cursor]) -> Iterator[pa.Table]:
    while True:
        for c in cursors:
            c.fill()
        live = [c for c in cursors if c.pending is not None and c.pending.num_rows]
        cursors = [c for c in cursors if not (c.done and (c.pending is None or not c.pending.num_rows))]
        if not live:
            return
        if len(live) == 1 and all(c.done for c in cursors if c is not live[0]):
            watermark = None if live[0].done else live[0].last_ts()
        else:
            unfinished = [c.last_ts() for c in live if not c.done]
            watermark = min(unfinished) if unfinished else None
        parts = [c.take_before(watermark) for c in live]
        parts = [p for p in parts if p.num_rows]
        if not parts:
            # every pending row sits at the watermark: read further on cursors that end there.
            for c in live:
                if not c.done and c.last_ts() == watermark:
                    c.extend()
            continue
        if len(parts) == 1:
            yield parts[0]
        else:
            merged = pa.concat_tables(parts)
            yield merged.take(pc.sort_indices(merged, sort_keys=ORDER_KEYS))


def read_segment(path: str | Path) -> pa.Table:
    """Whole segment file (for verify and tests)."""
    return pq.read_table(path, schema=SCHEMA)
