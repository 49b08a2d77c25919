"""The segment index: which sealed segment holds which streams and time range.

A window read opens only the segments the index says overlap it. The index lives in SQLite
(WAL) beside the segments so several writer processes can commit concurrently; it is derived
data: `rebuild()` recreates it from the segment files' own footers.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

_DDL = """
CREATE TABLE IF NOT EXISTS segments (
  path TEXT PRIMARY KEY, writer TEXT NOT NULL, n INTEGER NOT NULL, rows INTEGER NOT NULL,
  bytes INTEGER NOT NULL, sha256 TEXT NOT NULL,
  min_recv_ns INTEGER, max_recv_ns INTEGER, min_event_ns INTEGER, max_event_ns INTEGER,
  UNIQUE (writer, n)
);
CREATE TABLE IF NOT EXISTS segment_streams (
  path TEXT NOT NULL, source TEXT NOT NULL, stream TEXT NOT NULL, rows INTEGER NOT NULL,
  min_seq INTEGER NOT NULL, max_seq INTEGER NOT NULL,
  min_recv_ns INTEGER NOT NULL, max_recv_ns INTEGER NOT NULL,
  min_event_ns INTEGER, max_event_ns INTEGER,
  PRIMARY KEY (path, source, stream)
);
CREATE INDEX IF NOT EXISTS segment_streams_stream ON segment_streams (source, stream);
CREATE TABLE IF NOT EXISTS imports (
  key TEXT PRIMARY KEY, meta TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class StreamStats:
    """Per-stream statistics of one segment."""

    source: str
    stream: str
    rows: int
    min_seq: int
    max_seq: int
    min_recv_ns: int
    max_recv_ns: int
    min_event_ns: int | None
    max_event_ns: int | None


@dataclass(frozen=True)
class SegmentInfo:
    """One sealed segment as the index knows it; `path` is relative to the log root."""

    path: str
    writer: str
    n: int
    rows: int
    bytes: int
    sha256: str
    min_recv_ns: int | None
    max_recv_ns: int | None
    min_event_ns: int | None
    max_event_ns: int | None
    streams: tuple[StreamStats, ...] = field(default=())


class LogIndex:
    """SQLite index of sealed segments and completed imports under `<root>/index.sqlite`."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.root / "index.sqlite", timeout=60, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_DDL)

    def close(self) -> None:
        self._db.close()

    def add(self, segments: Iterable[SegmentInfo], import_key: str | None = None,
            import_meta: dict | None = None) -> None:
        """Commit segments (and optionally an import record) in one transaction."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            for s in segments:
                db.execute(
                    "INSERT INTO segments VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (s.path, s.writer, s.n, s.rows, s.bytes, s.sha256, s.min_recv_ns,
                     s.max_recv_ns, s.min_event_ns, s.max_event_ns),
                )
                db.executemany(
                    "INSERT INTO segment_streams VALUES (?,?,?,?,?,?,?,?,?,?)",
                    [(s.path, t.source, t.stream, t.rows, t.min_seq, t.max_seq, t.min_recv_ns,
                      t.max_recv_ns, t.min_event_ns, t.max_event_ns) for t in s.streams],
                )
            if import_key is not None:
                db.execute("INSERT INTO imports VALUES (?, ?)",
                           (import_key, json.dumps(import_meta or {}, sort_keys=True)))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def has_import(self, key: str) -> bool:
        return self._db.execute("SELECT 1 FROM imports WHERE key=?", (key,)).fetchone() is not None

    def imports(self) -> dict[str, dict]:
        return {k: json.loads(m) for k, m in self._db.execute("SELECT key, meta FROM imports")}

    def has_segment(self, writer: str, n: int) -> str | None:
        row = self._db.execute("SELECT path FROM segments WHERE writer=? AND n=?",
                               (writer, n)).fetchone()
        return row[0] if row else None

    def next_segment_n(self, writer: str) -> int:
        row = self._db.execute("SELECT MAX(n) FROM segments WHERE writer=?", (writer,)).fetchone()
        return 0 if row[0] is None else row[0] + 1

    def last_seqs(self) -> dict[tuple[str, str], int]:
        """Highest seq per (source, stream) over all sealed segments."""
        rows = self._db.execute(
            "SELECT source, stream, MAX(max_seq) FROM segment_streams GROUP BY source, stream")
        return {(a, b): m for a, b, m in rows}

    def segments(self, window: tuple[int | None, int | None] | None = None,
                 streams: set[tuple[str, str]] | None = None) -> list[SegmentInfo]:
        """Segments overlapping `[start, end)` on recv time that hold any of `streams`."""
        per_path: dict[str, list[StreamStats]] = {}
        for r in self._db.execute("SELECT * FROM segment_streams ORDER BY path, source, stream"):
            per_path.setdefault(r[0], []).append(StreamStats(*r[1:]))
        start, end = window if window else (None, None)
        out = []
        for r in self._db.execute("SELECT * FROM segments ORDER BY min_recv_ns, writer, n"):
            info = SegmentInfo(*r, streams=tuple(per_path.get(r[0], ())))
            sts = [t for t in info.streams
                   if (streams is None or (t.source, t.stream) in streams)
                   and (start is None or t.max_recv_ns >= start)
                   and (end is None or t.min_recv_ns < end)]
            if sts:
                out.append(info)
        return out

    def streams(self) -> list[tuple[str, str]]:
        return [tuple(r) for r in self._db.execute(
            "SELECT DISTINCT source, stream FROM segment_streams ORDER BY source, stream")]

    def clear(self) -> None:
        """Drop every row (used by `rebuild`)."""
        self._db.executescript("DELETE FROM segments; DELETE FROM segment_streams;")
