"""The bounded queue between a socket reader and the log: readers never wait on disk or Kafka.

A recorder calls `Ingest.put(...)` from its receive loop: one `put_nowait` into a bounded
`asyncio.Queue`, no I/O. One writer task drains the queue in batches (everything queued while
the previous append was in flight), builds one Arrow table per batch and awaits the backend's
`append`, which returns only when the batch is durable (Parquet journal fsync, or Kafka
acks=all). If the queue is ever full the event is counted in `dropped` (must stay 0) rather than
stalling the reader. Counters and per-stream figures feed the daemon's status report.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Protocol

import pyarrow as pa

from recorder.events import SCHEMA, Kind


class Backend(Protocol):
    """Where batches go: `append` returns once the batch is acknowledged (durable)."""

    explicit_seq: bool  # True: the recorder assigns seq = conn_start_ns + i per stream

    async def append(self, table: pa.Table) -> None: ...

    async def close(self) -> None: ...


@dataclass
class StreamStatus:
    """What the status report says about one (source, stream)."""

    received: int = 0
    written: int = 0
    last_recv_ns: int = 0
    last_event_ns: int | None = None
    gaps: int = 0
    last_gap: dict | None = None
    reconnects: int = 0
    last_reconnect_ns: int | None = None
    errors: int = 0
    # rolling rate: count and time at the previous status sample
    _rate_n: int = 0
    _rate_t: float = field(default_factory=time.monotonic)


class Connection:
    """One connection's id and per-stream seq counters (`seq = start_ns + i`, log.md)."""

    __slots__ = ("conn", "start_ns", "_next", "closed")

    def __init__(self, prefix: str, start_ns: int | None = None) -> None:
        self.start_ns = time.time_ns() if start_ns is None else start_ns
        self.conn = f"{prefix}:{self.start_ns}"
        self._next: dict[str, int] = {}
        self.closed = False

    def next_seq(self, stream: str) -> int:
        i = self._next.get(stream, 0)
        self._next[stream] = i + 1
        return self.start_ns + i


class Ingest:
    """Bounded queue plus batching writer task; the one path from recorders to a backend."""

    def __init__(self, backend: Backend, *, queue_size: int = 1_000_000,
                 max_batch: int = 50_000) -> None:
        if queue_size < 1:
            raise ValueError(f"record.queue_size={queue_size}: must be >= 1")
        self.backend = backend
        self.queue: asyncio.Queue = asyncio.Queue(maxsize=queue_size)
        self.max_batch = max_batch
        self.received = 0
        self.written = 0
        self.dropped = 0
        self.batches = 0
        self.last_ack_lag_ns = 0       # now - oldest recv_ts of the last acknowledged batch
        self.max_ack_lag_ns = 0
        self.streams: dict[tuple[str, str], StreamStatus] = {}
        self._explicit = bool(getattr(backend, "explicit_seq", False))
        self.on_ack = None  # optional callback(ingest) after every acknowledged batch
        self._task: asyncio.Task | None = None
        self._closing = False
        self.error: BaseException | None = None

    # -- reader side (never awaits) -------------------------------------------------------------
    def status_of(self, source: str, stream: str) -> StreamStatus:
        st = self.streams.get((source, stream))
        if st is None:
            st = self.streams[(source, stream)] = StreamStatus()
        return st

    def put(self, source: str, stream: str, recv_ts_ns: int, event_ts_ns: int | None,
            conn: Connection, kind: str, payload: bytes) -> bool:
        """Queue one event; False (and `dropped` += 1) only if the queue is full."""
        seq = conn.next_seq(stream) if self._explicit else -1
        st = self.streams.get((source, stream))
        if st is None:
            st = self.status_of(source, stream)
        st.received += 1
        st.last_recv_ns = recv_ts_ns
        if event_ts_ns is not None:
            st.last_event_ns = event_ts_ns
        if kind == Kind.GAP:
            st.gaps += 1
        elif kind == Kind.CONNECT:
            st.reconnects += 1
            st.last_reconnect_ns = recv_ts_ns
        elif kind == Kind.ERROR:
            st.errors += 1
        self.received += 1
        try:
            self.queue.put_nowait((source, stream, recv_ts_ns, event_ts_ns, seq, conn.conn, kind,
                                   payload))
        except asyncio.QueueFull:
            self.dropped += 1
            return False
        return True

    # -- writer side ----------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="ingest-writer")

    async def _run(self) -> None:
        q = self.queue
        while True:
            item = await q.get()
            if item is None:
                return
            batch = [item]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    nxt = q.get_nowait()
                except asyncio.QueueEmpty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            await self._write(batch)
            if stop:
                return

    async def _write(self, batch: list[tuple]) -> None:
        cols = list(zip(*batch, strict=True))
        table = pa.Table.from_arrays(
            [pa.array(cols[0], pa.string()), pa.array(cols[1], pa.string()),
             pa.array(cols[2], pa.int64()), pa.array(cols[3], pa.int64()),
             pa.array(cols[4], pa.int64()), pa.array(cols[5], pa.string()),
             pa.array(cols[6], pa.string()), pa.array(cols[7], pa.binary())],
            schema=SCHEMA)
        try:
            await self.backend.append(table)
        except BaseException as exc:
            self.error = exc
            raise
        now = time.time_ns()
        self.written += len(batch)
        self.batches += 1
        self.last_ack_lag_ns = now - min(cols[2])
        self.max_ack_lag_ns = max(self.max_ack_lag_ns, self.last_ack_lag_ns)
        streams = self.streams
        for source, stream in zip(cols[0], cols[1], strict=True):
            streams[(source, stream)].written += 1
        if self.on_ack is not None:
            self.on_ack(self)

    async def close(self) -> None:
        """Write everything queued, then close the backend (flush, seal)."""
        if self._closing:
            return
        self._closing = True
        if self._task is not None and not self._task.done():
            await self.queue.put(None)
            try:
                await self._task
            finally:
                await self.backend.close()
        else:
            await self.backend.close()
        if self._task is not None and self._task.done() and not self._task.cancelled():
            exc = self._task.exception()
            if exc is not None:
                raise exc

    @property
    def depth(self) -> int:
        return self.queue.qsize()

    def snapshot(self) -> dict:
        """Counters and per-stream figures for the status report (rates since the last call)."""
        now = time.monotonic()
        streams = []
        for (source, stream), st in sorted(self.streams.items()):
            dt = max(now - st._rate_t, 1e-9)
            rate = (st.received - st._rate_n) / dt
            st._rate_n, st._rate_t = st.received, now
            lag = (st.last_recv_ns - st.last_event_ns) / 1e6 if st.last_event_ns else None
            streams.append({
                "source": source, "stream": stream, "received": st.received,
                "written": st.written, "rate_per_s": round(rate, 2),
                "feed_lag_ms": None if lag is None else round(lag, 3),
                "gaps": st.gaps, "last_gap": st.last_gap, "reconnects": st.reconnects,
                "last_reconnect_ns": st.last_reconnect_ns, "errors": st.errors})
        return {"received": self.received, "written": self.written, "dropped": self.dropped,
                "queue_depth": self.depth, "batches": self.batches,
                "ack_lag_ms": round(self.last_ack_lag_ns / 1e6, 3),
                "max_ack_lag_ms": round(self.max_ack_lag_ns / 1e6, 3), "streams": streams}
