"""One file being imported: its options, its bad-line policy, and the sink its events go to.

Every format reads its file through a `FileImport`: blocks of lines in, columns of events out.
The sink writes the connect markers the log contract asks for (one per stream a connection or
file feeds, before that stream's first event, docs/concepts/log.md), keeps the report's counts,
and appends to a staged writer, so nothing reaches the log unless the whole file succeeds.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from recorder.events import Kind, events_table
from recorder.importers.blocks import DEFAULT_BLOCK_BYTES, Block, Truncation, iter_blocks
from recorder.importers.report import FileReport, ImportFormatError, StreamRows


@dataclass(frozen=True)
class ImportOptions:
    """Options a user may give for a set of files (`smabm import ... key=value`)."""

    tz: str | None = None
    market: str | None = None
    symbol: str | None = None
    data_type: str | None = None
    block_bytes: int = DEFAULT_BLOCK_BYTES


class FileImport:
    """The per-file state every format reader uses."""

    def __init__(self, path: Path, fmt: str, sha256: str, writer, options: ImportOptions,
                 keep_going: bool, report: FileReport) -> None:
        self.path = path
        self.name = str(path)
        self.format = fmt
        self.sha256 = sha256
        self.conn = f"file:{sha256[:16]}"
        self.writer = writer
        self.options = options
        self.keep_going = keep_going
        self.report = report
        self._conn_info: dict[str, tuple[bytes, int | None]] = {}
        self._seen: set[tuple[str, str, str]] = set()

    # -- errors -------------------------------------------------------------------------------
    def fail(self, line: int | None, reason: str) -> ImportFormatError:
        """The one-line error for this file (line None: the file as a whole)."""
        where = self.name if line is None else f"{self.name}:{line}"
        return ImportFormatError(f"{where}: {reason}")

    def reject(self, lines: Sequence[int] | np.ndarray, reasons: Sequence[str]) -> None:
        """Bad lines: fatal for the file, or skipped and counted under keep_going."""
        if len(lines) == 0:
            return
        order = np.argsort(np.asarray(lines), kind="stable")
        if not self.keep_going:
            i = int(order[0])
            raise self.fail(int(lines[i]), reasons[i])
        for i in order:
            self.report.skip(int(lines[i]), reasons[i])

    def blocks(self) -> Iterator[Block]:
        """The file's blocks; a truncated or corrupt stream is rejected at the line it ends."""
        truncations: list[Truncation] = []
        yield from iter_blocks(self.path, self.options.block_bytes, truncations)
        for t in truncations:
            self.reject([t.line], [t.reason])

    # -- events -------------------------------------------------------------------------------
    def connection(self, conn: str, payload: bytes, recv_ns: int | None = None) -> None:
        """Declare what the connect markers of `conn` carry: URL/header and, if known, time."""
        self._conn_info[conn] = (payload, recv_ns)

    def add(self, *, source: str | Sequence[str] | pa.Array, stream: Sequence[str] | pa.Array,
            recv_ns: np.ndarray, payload: pa.Array, event_ns: pa.Array | None = None,
            kind: str | Sequence[str] | pa.Array = Kind.MESSAGE,
            conn: str | Sequence[str] | None = None,
            marker_payload: Sequence[bytes] | None = None) -> None:
        """Append events (file order = seq order per stream), preceded by any new markers.

        A marker's payload is `marker_payload[i]` of the stream's first row when given, else
        the connection's declared payload; its time is the connection's declared time, else
        the stream's first row's `recv_ns`.
        """
        n = len(recv_ns)
        if n == 0:
            return
        table = events_table(source=source, stream=stream, recv_ts_ns=recv_ns, payload=payload,
                             event_ts_ns=event_ns, conn=self.conn if conn is None else conn,
                             kind=kind)
        markers = self._markers(table, marker_payload)
        if markers is not None:
            table = pa.concat_tables([markers, table])
        self.writer.append(table)
        self._count(table)

    def _markers(self, table: pa.Table, marker_payload: Sequence[bytes] | None) -> pa.Table | None:
        keys = ["source", "stream", "conn"]
        first = (pl.from_arrow(table.select(keys)).with_row_index("i")
                 .unique(subset=keys, keep="first", maintain_order=True))
        new = [(r[0], r[1], r[2], r[3]) for r in first.select(["i", *keys]).iter_rows()
               if (r[1], r[2], r[3]) not in self._seen]
        if not new:
            return None
        recv = table["recv_ts_ns"].to_numpy()
        rows = []
        for i, source, stream, conn in new:
            self._seen.add((source, stream, conn))
            payload, at = self._conn_info.get(conn, (b"", None))
            if marker_payload is not None:
                payload = marker_payload[i]
            rows.append((source, stream, conn, int(recv[i]) if at is None else at, payload))
        source, stream, conn, ts, payload = (list(c) for c in zip(*rows, strict=True))
        return events_table(source=source, stream=stream, conn=conn, recv_ts_ns=ts,
                            payload=payload, kind=[Kind.CONNECT.value] * len(rows))

    def _count(self, table: pa.Table) -> None:
        df = pl.from_arrow(table.select(["source", "stream", "kind", "recv_ts_ns", "event_ts_ns"]))
        g = df.group_by(["source", "stream", "kind"]).agg(
            pl.len().alias("n"), pl.col("recv_ts_ns").min().alias("a"),
            pl.col("recv_ts_ns").max().alias("b"))
        for source, stream, kind, n, a, b in g.iter_rows():
            s = self.report.streams.get((source, stream, kind))
            if s is None:
                self.report.streams[(source, stream, kind)] = StreamRows(source, stream, kind,
                                                                         n, a, b)
            else:
                s.rows += n
                s.first_recv_ns = min(s.first_recv_ns, a)
                s.last_recv_ns = max(s.last_recv_ns, b)
        ev = df["event_ts_ns"]
        if ev.null_count() < len(ev):
            lo, hi = ev.min(), ev.max()
            r = self.report
            r.first_event_ns = lo if r.first_event_ns is None else min(r.first_event_ns, lo)
            r.last_event_ns = hi if r.last_event_ns is None else max(r.last_event_ns, hi)
