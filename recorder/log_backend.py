"""The embedded backend of a live recorder: batches go straight into a `LogWriter`.

`LogWriter.append` blocks on the journal fsync, so it runs in a worker thread: the event loop
(and with it every socket reader) keeps running while a batch is made durable. It is always
the same thread (the writer's SQLite index connection belongs to the thread that opened it).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa

from recorder.writer import LogWriter


class ParquetBackend:
    """Appends to the local Parquet log; seqs are left to the writer (0, 1, 2 ... per stream)."""

    explicit_seq = False

    def __init__(self, root: str | Path, writer_id: str, *, fsync: str = "batch",
                 fsync_interval_s: float = 1.0, segment_max_bytes: int = 64 << 20,
                 segment_max_rows: int = 2_000_000, segment_max_age_s: float | None = 300.0
                 ) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=f"log-{writer_id}")
        self.writer: LogWriter = self._pool.submit(
            LogWriter, root, writer_id, fsync=fsync, fsync_interval_s=fsync_interval_s,
            segment_max_bytes=segment_max_bytes, segment_max_rows=segment_max_rows,
            segment_max_age_s=segment_max_age_s).result()

    async def append(self, table: pa.Table) -> None:
        # fsync=batch: durable on return; fsync=interval: durable within fsync_interval_s
        await asyncio.get_running_loop().run_in_executor(self._pool, self.writer.append, table)

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._pool, self.writer.close)
        self._pool.shutdown()
