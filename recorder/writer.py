"""The log writer: append batches durably, seal them into immutable Parquet segments.

Commit protocol (every step survives `kill -9` at any point):
1. `append` writes a journal frame and, under the fsync policy, fsyncs it: only then is the
   append acknowledged (`acked`).
2. `seal` writes the pending rows as a sorted Parquet file under `staging/<writer>/`, fsyncs it,
   commits its index row (SQLite), moves it into `raw/`, then atomically replaces the journal by
   an empty one for the next segment. An open live writer therefore always has a journal (live
   readers use that to tell "writer idle" from "writer gone"); `close` deletes it.
3. On open, recovery rolls staged files forward (index row exists) or back (none), and seals a
   journal left by a crash, unless the index shows its segment was already committed.
A staged writer (importers) skips the journal: nothing is acknowledged until `commit`, which
indexes all its segments and the import record in one transaction.
"""

from __future__ import annotations

import fcntl
import os
import re
import threading
import time
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from recorder.events import KINDS, SCHEMA
from recorder.index import LogIndex, SegmentInfo
from recorder.journal import Journal, read_journal
from recorder.segments import fsync_dir, write_segment

FSYNC_POLICIES = ("batch", "interval", "off")
_WRITER_ID = re.compile(r"^[A-Za-z0-9._-]{1,100}$")


class LogWriterError(RuntimeError):
    """A writer cannot open or append; the message names the writer and the cause."""


class LogWriter:
    """Append-only writer for one writer id (one process at a time per id)."""

    def __init__(
        self,
        root: str | Path,
        writer_id: str = "default",
        *,
        fsync: str = "batch",
        fsync_interval_s: float = 1.0,
        segment_max_bytes: int = 64 << 20,
        segment_max_rows: int = 2_000_000,
        segment_max_age_s: float | None = 300.0,
        staged: bool = False,
    ) -> None:
        if not _WRITER_ID.match(writer_id):
            raise LogWriterError(f"log.writer_id={writer_id!r}: use letters, digits, '.', '_', '-'")
        if fsync not in FSYNC_POLICIES:
            raise LogWriterError(f"log.fsync={fsync!r}: expected one of {', '.join(FSYNC_POLICIES)}")
        self.root = Path(root)
        self.writer_id = writer_id
        self.fsync = fsync
        self.fsync_interval_s = fsync_interval_s
        self.segment_max_bytes = segment_max_bytes
        self.segment_max_rows = segment_max_rows
        self.segment_max_age_s = segment_max_age_s
        self.staged = staged
        self._journal_dir = self.root / "journal"
        self._staging = self.root / "staging" / writer_id
        self._journal_dir.mkdir(parents=True, exist_ok=True)
        self._lock_f = open(self._journal_dir / f"{writer_id}.lock", "w")  # noqa: SIM115
        try:
            fcntl.flock(self._lock_f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_f.close()
            raise LogWriterError(
                f"log writer {writer_id!r} is already open in another process ({self.root})"
            ) from None
        self.index = LogIndex(self.root)
        self._mutex = threading.Lock()
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._pending_bytes = 0
        self._opened_at = 0.0
        self._journal: Journal | None = None
        self._staged_segments: list[tuple[Path, SegmentInfo]] = []
        self._written = 0
        self.acked = 0
        self._last_sync = time.monotonic()
        self._closed = False
        self._recover()
        self._last_seq = self.index.last_seqs()
        self._next_n = self.index.next_segment_n(writer_id)
        if not staged:
            self._open_journal(self._next_n)
        self._syncer: threading.Thread | None = None
        self._stop = threading.Event()
        if fsync == "interval" and not staged:
            self._syncer = threading.Thread(target=self._sync_loop, daemon=True)
            self._syncer.start()

    # -- recovery -----------------------------------------------------------------------------
    def _journal_path(self) -> Path:
        return self._journal_dir / f"{self.writer_id}.journal"

    def _recover(self) -> None:
        if self._staging.exists():
            for tmp in sorted(self._staging.glob("*.parquet")):
                n = int(tmp.stem.rsplit("-", 1)[1])
                rel = self.index.has_segment(self.writer_id, n)
                if rel is None:
                    tmp.unlink()  # never committed: roll back
                else:
                    self._move_into_place(tmp, rel)  # committed: roll forward
        jpath = self._journal_path()
        if not jpath.exists():
            return
        segment_n, batches, _ = read_journal(jpath)
        if segment_n >= 0 and self.index.has_segment(self.writer_id, segment_n) is None and batches:
            table = pa.Table.from_batches(batches, SCHEMA)
            tmp, info = write_segment(table, self._staging, self.writer_id, segment_n)
            self.index.add([info])
            self._move_into_place(tmp, info.path)
        jpath.unlink()
        fsync_dir(self._journal_dir)

    def _open_journal(self, segment_n: int) -> None:
        """Create the journal for `segment_n`, replacing the previous one in one rename."""
        jpath = self._journal_path()
        tmp = jpath.with_name(f"{self.writer_id}.journal-next")
        tmp.unlink(missing_ok=True)
        journal = Journal(tmp, segment_n)
        journal.sync()
        os.replace(tmp, jpath)
        fsync_dir(self._journal_dir)
        journal.path = jpath
        self._journal = journal

    def _move_into_place(self, tmp: Path, rel: str) -> None:
        dest = self.root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, dest)
        fsync_dir(dest.parent)

    # -- appending ----------------------------------------------------------------------------
    def _assign_seq(self, table: pa.Table) -> pa.Table:
        """Give rows with seq == -1 the next per-stream seq; check explicit seqs increase."""
        df = pl.from_arrow(table.select(["source", "stream", "seq"]))
        keys = df.select(["source", "stream"]).unique(maintain_order=True).rows()
        base = pl.DataFrame(
            {"source": [k[0] for k in keys], "stream": [k[1] for k in keys],
             "_last": [self._last_seq.get(k, -1) for k in keys]},
            schema={"source": pl.String, "stream": pl.String, "_last": pl.Int64})
        df = df.with_row_index("_i").join(base, on=["source", "stream"], how="left",
                                          maintain_order="left")
        auto = pl.col("seq") == -1
        df = df.with_columns(
            pl.when(auto).then(pl.col("_last") + auto.cast(pl.Int64).cum_sum().over(
                ["source", "stream"])).otherwise(pl.col("seq")).alias("seq"))
        bad = df.with_columns(
            prev=pl.col("seq").shift(1).over(["source", "stream"]).fill_null(pl.col("_last"))
        ).filter(pl.col("seq") <= pl.col("prev"))
        if bad.height:
            r = bad.row(0, named=True)
            raise LogWriterError(
                f"seq {r['seq']} of stream {r['source']}:{r['stream']} does not increase "
                f"(previous {r['prev']})")
        last = df.group_by(["source", "stream"]).agg(pl.col("seq").max())
        for s, st, q in last.iter_rows():
            self._last_seq[(s, st)] = q
        return table.set_column(table.schema.get_field_index("seq"), "seq",
                                df["seq"].to_arrow().cast(pa.int64()))

    def append(self, table: pa.Table | pa.RecordBatch) -> int:
        """Append rows; return this append's ticket. Durable once `acked >= ticket`."""
        if self._closed:
            raise LogWriterError(f"log writer {self.writer_id!r} is closed")
        if isinstance(table, pa.RecordBatch):
            table = pa.Table.from_batches([table])
        if table.num_rows == 0:
            return self._written
        try:
            table = table.select(SCHEMA.names).cast(SCHEMA)
        except (KeyError, pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise LogWriterError(f"append to {self.writer_id!r}: not in the log schema: {exc}") from exc
        unknown = pc.unique(table["kind"]).to_pylist()
        if any(k not in KINDS for k in unknown):
            bad = sorted(set(unknown) - KINDS)
            raise LogWriterError(f"append to {self.writer_id!r}: unknown kind {bad[0]!r}")
        with self._mutex:
            table = self._assign_seq(table).combine_chunks()
            if not self.staged:
                for batch in table.to_batches():
                    self._journal.append(batch)
            if not self._pending:
                self._opened_at = time.monotonic()
            self._pending.append(table)
            self._pending_rows += table.num_rows
            self._pending_bytes += table.nbytes
            self._written += table.num_rows
            ticket = self._written
            if self.fsync == "batch" and not self.staged:
                self._journal.sync()
                self.acked = ticket
            elif self.fsync == "off" and not self.staged:
                self.acked = ticket
        if self._should_seal():
            self.seal()
        return ticket

    def _should_seal(self) -> bool:
        if not self._pending:
            return False
        age = time.monotonic() - self._opened_at
        return (self._pending_bytes >= self.segment_max_bytes
                or self._pending_rows >= self.segment_max_rows
                or (self.segment_max_age_s is not None and age >= self.segment_max_age_s))

    def flush(self) -> int:
        """fsync the journal now (interval policy) and seal if the segment is due."""
        with self._mutex:
            if self._journal is not None and not self.staged:
                self._journal.sync()
                self.acked = self._written
        if self._should_seal():
            self.seal()
        return self.acked

    def _sync_loop(self) -> None:
        """Interval policy: fsync only; sealing (SQLite, renames) stays on the owner's thread."""
        while not self._stop.wait(self.fsync_interval_s):
            with self._mutex:
                if self._journal is not None:
                    self._journal.sync()
                    self.acked = self._written

    # -- sealing ------------------------------------------------------------------------------
    def seal(self) -> SegmentInfo | None:
        """Turn the pending rows into a sealed segment (staged writers keep it uncommitted)."""
        return self._seal(reopen=True)

    def _seal(self, reopen: bool) -> SegmentInfo | None:
        with self._mutex:
            if not self._pending:
                return None
            table = pa.concat_tables(self._pending)
            n = self._next_n
            tmp, info = write_segment(table, self._staging, self.writer_id, n)
            if self.staged:
                self._staged_segments.append((tmp, info))
            else:
                self.index.add([info])
                self._move_into_place(tmp, info.path)
                self._journal.close()
                if reopen:
                    self._open_journal(n + 1)
                self.acked = self._written
            self._next_n = n + 1
            self._pending, self._pending_rows, self._pending_bytes = [], 0, 0
            return info

    def commit(self, import_key: str | None = None, import_meta: dict | None = None) -> list[SegmentInfo]:
        """Staged writers: index every staged segment (and the import record) atomically."""
        if not self.staged:
            raise LogWriterError("commit() is for staged writers; live writers commit per seal")
        self.seal()
        infos = [info for _, info in self._staged_segments]
        self.index.add(infos, import_key=import_key, import_meta=import_meta)
        for tmp, info in self._staged_segments:
            self._move_into_place(tmp, info.path)
        self._staged_segments = []
        self.acked = self._written
        return infos

    def close(self) -> None:
        """Seal what is pending (live) or discard what was never committed (staged)."""
        if self._closed:
            return
        self._stop.set()
        if self._syncer is not None:
            self._syncer.join()
        if self.staged:
            for tmp, _ in self._staged_segments:
                tmp.unlink(missing_ok=True)
            self._staged_segments = []
        else:
            self._seal(reopen=False)
            with self._mutex:
                self._journal.close()
                self._journal.path.unlink(missing_ok=True)
                fsync_dir(self._journal_dir)
                self._journal = None
        self._closed = True
        self.index.close()
        self._lock_f.close()

    def __enter__(self) -> LogWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
