"""What an import did, per file: rows by stream and kind, time span, unit, skipped lines.

The report is the user's evidence that an import read the file the way they expected (which
market, which timestamp unit, which timezone), so every guess an importer makes is written
into `notes` in words.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

SKIPPED_SHOWN = 5


class ImportFormatError(ValueError):
    """A file cannot be imported as its format; the message is `file:line: what is wrong`."""


@dataclass
class StreamRows:
    """Rows one file added to one (source, stream, kind), with their receive-time span."""

    source: str
    stream: str
    kind: str
    rows: int
    first_recv_ns: int
    last_recv_ns: int


@dataclass
class FileReport:
    """One input file: `status` is imported, duplicate (already in the log) or failed."""

    path: str
    format: str
    sha256: str = ""
    status: str = "imported"
    unit: str | None = None
    notes: list[str] = field(default_factory=list)
    streams: dict[tuple[str, str, str], StreamRows] = field(default_factory=dict)
    skipped_lines: int = 0
    skipped_first: list[tuple[int, str]] = field(default_factory=list)
    error: str | None = None
    first_event_ns: int | None = None
    last_event_ns: int | None = None

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.streams.values())

    @property
    def first_recv_ns(self) -> int | None:
        return min((s.first_recv_ns for s in self.streams.values()), default=None)

    @property
    def last_recv_ns(self) -> int | None:
        return max((s.last_recv_ns for s in self.streams.values()), default=None)

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def skip(self, line: int, reason: str) -> None:
        self.skipped_lines += 1
        if len(self.skipped_first) < SKIPPED_SHOWN:
            self.skipped_first.append((line, reason))

    def to_dict(self) -> dict:
        return {
            "path": self.path, "format": self.format, "sha256": self.sha256,
            "status": self.status, "unit": self.unit, "notes": list(self.notes),
            "rows": self.rows, "first_recv_ns": self.first_recv_ns,
            "last_recv_ns": self.last_recv_ns, "first_event_ns": self.first_event_ns,
            "last_event_ns": self.last_event_ns, "skipped_lines": self.skipped_lines,
            "skipped_first": [list(s) for s in self.skipped_first], "error": self.error,
            "streams": [vars(s).copy() for _, s in sorted(self.streams.items())],
        }


def _iso(ns: int | None) -> str:
    if ns is None:
        return "-"
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


@dataclass
class ImportReport:
    """All files of one `import_files` call, in the order given."""

    files: list[FileReport] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    def by_status(self, status: str) -> list[FileReport]:
        return [f for f in self.files if f.status == status]

    def to_dict(self) -> dict:
        return {"rows": self.rows, "files": [f.to_dict() for f in self.files]}

    def to_text(self) -> str:
        """A plain-text summary for the terminal: one block per file."""
        out = []
        for f in self.files:
            head = f"{f.path} [{f.format}] {f.status}"
            if f.status == "imported":
                head += (f": {f.rows:,} rows, recv {_iso(f.first_recv_ns)} .. "
                         f"{_iso(f.last_recv_ns)} UTC")
                if f.unit:
                    head += f", timestamps in {f.unit}"
            out.append(head)
            out.extend(f"  note: {n}" for n in f.notes)
            if f.error:
                out.append(f"  error: {f.error}")
            for (source, stream, kind), s in sorted(f.streams.items()):
                out.append(f"  {source}:{stream} {kind}: {s.rows:,}")
            if f.skipped_lines:
                first = ", ".join(f"line {n} ({why})" for n, why in f.skipped_first)
                out.append(f"  skipped {f.skipped_lines:,} lines; first: {first}")
        done = self.by_status("imported")
        out.append(f"{len(done)} imported ({self.rows:,} rows), "
                   f"{len(self.by_status('duplicate'))} already in the log, "
                   f"{len(self.by_status('failed'))} failed")
        return "\n".join(out)
