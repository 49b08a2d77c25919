"""The normalised tables cached beside the log, one output per raw segment, rebuilt incrementally.

Layout: `<root>/norm/<table>/<segment stem>.parquet` (no file when a segment yields no row for
that table) and `<root>/norm/state.json`, which records for each sealed segment its sha256 and,
per table, the table version that produced the output and its row count. An output is rebuilt
when its segment's hash or its table's version changed, or its file is missing; outputs of
segments no longer in the index, and files the state does not name, are deleted. Segments are
immutable, so a second run over an unchanged log reads nothing.

A CSV stream's header lives in its conn's connect marker, which may be in an earlier segment
than the records (a large import spans several): markers are then looked up across the log.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from recorder.index import LogIndex, SegmentInfo
from recorder.normalize.csv_records import HeaderKey, headers_from_markers
from recorder.normalize.parse import check_tables, needs_outside_headers, parse_events
from recorder.normalize.tables import TABLE_VERSIONS, TABLES

STATE_FORMAT = 1
_SAVE_EVERY_S = 5.0


@dataclass
class NormalizeReport:
    """What one `normalize` run did; `rebuilt` lists (segment path, table) pairs it derived."""

    segments: int = 0
    rebuilt: list[tuple[str, str]] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {"segments": self.segments, "rebuilt": len(self.rebuilt), "rows": self.rows,
                "skipped": self.skipped, "removed": len(self.removed),
                "seconds": round(self.seconds, 3)}


def norm_dir(root: Path) -> Path:
    return root / "norm"


def output_relpath(table: str, segment_path: str) -> str:
    return f"norm/{table}/{Path(segment_path).stem}.parquet"


class _State:
    """`norm/state.json`: {"format", "segments": {path: {"sha256", "tables": {t: {version, rows}}}}}."""

    def __init__(self, root: Path) -> None:
        self.path = norm_dir(root) / "state.json"
        self.segments: dict[str, dict] = {}
        if self.path.exists():
            doc = json.loads(self.path.read_text())
            if doc.get("format") == STATE_FORMAT:
                self.segments = doc["segments"]

    def fresh(self, root: Path, seg: SegmentInfo, table: str) -> bool:
        entry = self.segments.get(seg.path)
        if entry is None or entry["sha256"] != seg.sha256:
            return False
        done = entry["tables"].get(table)
        if done is None or done["version"] != TABLE_VERSIONS[table]:
            return False
        return done["rows"] == 0 or (root / output_relpath(table, seg.path)).exists()

    def record(self, seg: SegmentInfo, table: str, rows: int) -> None:
        entry = self.segments.get(seg.path)
        if entry is None or entry["sha256"] != seg.sha256:
            entry = self.segments[seg.path] = {"sha256": seg.sha256, "tables": {}}
        entry["tables"][table] = {"version": TABLE_VERSIONS[table], "rows": rows}

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps({"format": STATE_FORMAT, "segments": self.segments},
                                  sort_keys=True, indent=0))
        os.replace(tmp, self.path)


@contextmanager
def _locked(root: Path) -> Iterator[None]:
    """One normaliser at a time per log (other processes wait)."""
    d = norm_dir(root)
    d.mkdir(parents=True, exist_ok=True)
    with open(d / ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _read_segment(root: Path, seg: SegmentInfo) -> pl.DataFrame:
    return pl.read_parquet(root / seg.path, hive_partitioning=False)


def _all_headers(root: Path, segments: list[SegmentInfo]) -> dict[HeaderKey, str]:
    """Connect markers of the whole log (only read when a segment lacks its own)."""
    if not segments:
        return {}
    marks = (pl.scan_parquet([str(root / s.path) for s in segments], hive_partitioning=False)
             .filter(pl.col("kind") == "connect")
             .select("source", "stream", "conn", "kind", "payload").collect())
    return headers_from_markers(marks)


def _write(df: pl.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".parquet.tmp")
    df.write_parquet(tmp, compression="zstd", statistics=True)
    os.replace(tmp, path)


def _remove_stale(root: Path, state: _State, current: set[str], report: NormalizeReport) -> None:
    for path in sorted(set(state.segments) - current):
        for table in TABLES:
            f = root / output_relpath(table, path)
            if f.exists():
                f.unlink()
                report.removed.append(str(f.relative_to(root)))
        del state.segments[path]
    named = {output_relpath(t, p) for p in state.segments for t in TABLES}
    for table in TABLES:
        d = norm_dir(root) / table
        if not d.is_dir():
            continue
        for f in sorted(d.iterdir()):
            rel = str(f.relative_to(root))
            if f.suffix in (".parquet", ".tmp") and rel not in named:
                f.unlink()
                report.removed.append(rel)


def _progress(items: list, enabled: bool) -> Iterable:
    if not enabled or not items:
        return items
    from rich.progress import track

    return track(items, description="normalise", transient=True)


def normalize_segments(root: str | Path, segments: list[SegmentInfo] | None = None,
                       tables: Iterable[str] | None = None, force: bool = False,
                       progress: bool = False) -> NormalizeReport:
    """Bring the outputs of `segments` (default: every sealed segment) up to date.

    Only a full run (segments=None) deletes outputs of segments that left the index.
    """
    root = Path(root)
    tables = check_tables(tables)
    t0 = time.perf_counter()
    report = NormalizeReport(rows={t: 0 for t in tables}, skipped={t: 0 for t in tables})
    with _locked(root):
        index = LogIndex(root)
        try:
            everything = index.segments()
        finally:
            index.close()
        state = _State(root)
        if segments is None:
            segments = everything
            _remove_stale(root, state, {s.path for s in everything}, report)
        report.segments = len(segments)
        work = [(s, [t for t in tables if force or not state.fresh(root, s, t)]) for s in segments]
        work = [(s, ts) for s, ts in work if ts]
        outside: dict[HeaderKey, str] | None = None
        last_save = time.monotonic()
        try:
            for seg, todo in _progress(work, progress):
                raw = _read_segment(root, seg)
                if outside is None and needs_outside_headers(raw):
                    outside = _all_headers(root, everything)
                parsed = parse_events(raw, todo, outside)
                for table in todo:
                    df = parsed.tables[table]
                    out = root / output_relpath(table, seg.path)
                    if df.height:
                        _write(df, out)
                    elif out.exists():
                        out.unlink()
                    state.record(seg, table, df.height)
                    report.rebuilt.append((seg.path, table))
                    report.rows[table] += df.height
                    report.skipped[table] += parsed.skipped[table]
                if time.monotonic() - last_save > _SAVE_EVERY_S:
                    state.save()
                    last_save = time.monotonic()
        finally:
            state.save()
    report.seconds = time.perf_counter() - t0
    return report


def normalize(root: str | Path, tables: Iterable[str] | None = None, force: bool = False,
              progress: bool = True) -> NormalizeReport:
    """`smabm log normalize`: derive every table from every sealed segment, incrementally."""
    root = Path(root)
    if not (root / "index.sqlite").exists():
        raise FileNotFoundError(f"log.root={root}: no log here (index.sqlite missing)")
    return normalize_segments(root, None, tables, force, progress)


def conn_headers(root: str | Path) -> dict[HeaderKey, str]:
    """CSV header of every (source, stream, conn) in the log, for `parse_events(headers=...)`
    on batches that do not hold their connect markers (replay chunks of CSV imports)."""
    root = Path(root)
    index = LogIndex(root)
    try:
        return _all_headers(root, index.segments())
    finally:
        index.close()


def output_files(root: Path, table: str, segments: list[SegmentInfo]) -> list[Path]:
    """Existing outputs of `table` for `segments` (segments with no rows have none)."""
    files = [root / output_relpath(table, s.path) for s in segments]
    return [f for f in files if f.exists()]
