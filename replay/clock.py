"""The replay clock: a window of the log, cut into steps, fed through stages in order.

Reading is one streaming pass over the window (memory bounded by the chunk size). Steps are
aligned to the window start. `time=recv` orders by what a live system saw; `time=event` orders
by exchange time through a reorder buffer that holds events until the receive clock has moved
`lateness` past their step, since recv_ts can trail or lead event_ts by seconds. Pacing only
sleeps between chunks; it never changes what a stage sees, so every speed gives the same outputs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recorder.events import SCHEMA
from recorder.reader import LogReader, match_streams, merge_sorted
from replay.stage import Chunk

EVENT_ORDER = [("_t", "ascending"), ("source", "ascending"), ("stream", "ascending"),
               ("seq", "ascending")]


@dataclass(frozen=True)
class Alignment:
    """Replay streams matching `streams` shifted by `shift_ns` (recorded, never written back).

    Lets a run pair sources recorded on different dates, e.g. a Reddit sample with a Binance
    window; the log keeps the true times and the run manifest keeps the shift.
    """

    streams: tuple[str, ...]
    shift_ns: int


@dataclass(frozen=True)
class ClockConfig:
    """Resolved `replay` settings (see conf/replay/default.yaml)."""

    start_ns: int
    end_ns: int
    step_ns: int
    time: str = "recv"            # recv | event
    lateness_ns: int = 5_000_000_000
    chunk_steps: int = 600
    speed: float | None = None     # None = max; 1.0 = wall clock; N = N× faster
    live: bool = False
    live_poll_s: float = 0.2
    live_lag_ns: int = 1_000_000_000
    live_idle_timeout_s: float = 60.0
    align: tuple[Alignment, ...] = ()

    @property
    def n_steps(self) -> int:
        return -(-(self.end_ns - self.start_ns) // self.step_ns)


def window_bounds(reader: LogReader, start_ns: int | None, end_ns: int | None,
                  streams: Sequence[str] | None) -> tuple[int, int]:
    """Fill an open window from the log's extent (the last event is included)."""
    segs = reader.segments(streams=streams)
    if (start_ns is None or end_ns is None) and not segs:
        raise ValueError("replay.window: the log has no events for these streams; give start and end")
    lo = start_ns if start_ns is not None else min(s.min_recv_ns for s in segs)
    hi = end_ns if end_ns is not None else max(s.max_recv_ns for s in segs) + 1
    if hi <= lo:
        raise ValueError(f"replay.window: end ({hi}) must be after start ({lo})")
    return lo, hi


def _shifted(batches: Iterator[pa.RecordBatch], shift_ns: int) -> Iterator[pa.RecordBatch]:
    for b in batches:
        t = pa.Table.from_batches([b])
        t = t.set_column(2, SCHEMA.field("recv_ts_ns"), pc.add(t["recv_ts_ns"], shift_ns))
        t = t.set_column(3, SCHEMA.field("event_ts_ns"), pc.add(t["event_ts_ns"], shift_ns))
        yield from t.to_batches()


class Clock:
    """Iterates chunks of steps of one window; the caller runs stages on each chunk."""

    def __init__(self, reader: LogReader, cfg: ClockConfig, streams: Sequence[str] | None = None,
                 batch_rows: int = 65_536) -> None:
        if cfg.time not in ("recv", "event"):
            raise ValueError(f"replay.time={cfg.time!r}: expected recv or event")
        self.reader = reader
        self.cfg = cfg
        self.streams = streams
        self.batch_rows = batch_rows
        self.late_events = 0   # event-time mode: events that arrived after their step was emitted
        self.events_read = 0

    # -- sources of ordered, time-keyed rows ------------------------------------------------
    def _read_window(self) -> Iterator[pa.Table]:
        """Raw rows of the window in recv order, with the ordering time `_t` appended."""
        cfg = self.cfg
        lo, hi = cfg.start_ns, cfg.end_ns
        if cfg.time == "event":  # an event inside the window may be received outside it
            lo, hi = lo - cfg.lateness_ns, hi + cfg.lateness_ns
        if cfg.live:
            if cfg.align:
                raise ValueError("replay.align: not available with replay.live=true")
            yield from self._follow(lo, hi)
            return
        if not cfg.align:
            for batch in self.reader.read(window=(lo, hi), streams=self.streams, batch_rows=self.batch_rows):
                yield pa.Table.from_batches([batch])
            return
        known = self.reader.streams()
        wanted = match_streams(self.streams, known) if self.streams is not None else set(known)
        sources, claimed = [], set()
        for a in cfg.align:
            mine = (match_streams(a.streams, known) & wanted) - claimed
            claimed |= mine
            if mine:
                sources.append(_shifted(self.reader.read(
                    window=(lo - a.shift_ns, hi - a.shift_ns), streams=[f"{s}:{t}" for s, t in sorted(mine)],
                    batch_rows=self.batch_rows), a.shift_ns))
        rest = sorted(wanted - claimed)
        if rest:
            sources.append(self.reader.read(window=(lo, hi), streams=[f"{s}:{t}" for s, t in rest],
                                            batch_rows=self.batch_rows))
        yield from merge_sorted(sources)

    def _follow(self, lo: int, hi: int) -> Iterator[pa.Table]:
        """Live tail: re-read the log (sealed + open journals) as it grows, never re-emitting.

        Rows are complete up to the newest receipt time minus `live_lag` (writers append in
        near receipt order). The window is complete once the log passes its end, or once data
        has arrived, no writer is open (an open writer always has a journal) and nothing new came
        for `live_lag`.
        """
        cfg = self.cfg
        done_until = lo
        latest_seen = None
        grew_at = time.monotonic()
        while done_until < hi:
            tail = [pa.Table.from_batches([b]) for b in LogReader(self.reader.root).read(
                window=(done_until, hi), streams=self.streams, include_open=True)]
            latest = max((t["recv_ts_ns"][-1].as_py() for t in tail if t.num_rows), default=None)
            now = time.monotonic()
            if latest is not None and (latest_seen is None or latest > latest_seen):
                latest_seen, grew_at = latest, now
            writers_open = any((self.reader.root / "journal").glob("*.journal"))
            passed_end = latest is not None and latest >= hi
            quiet = (latest_seen is not None and not writers_open
                     and now - grew_at >= cfg.live_lag_ns / 1e9)
            if passed_end or quiet:
                safe = hi
            else:
                safe = latest - cfg.live_lag_ns if latest is not None else done_until
            if safe > done_until:
                for t in tail:
                    t = t.filter(pc.less(t["recv_ts_ns"], safe))
                    if t.num_rows:
                        yield t
                done_until = safe
            elif now - grew_at > cfg.live_idle_timeout_s:
                raise TimeoutError(f"replay.live: no new events for {cfg.live_idle_timeout_s} s "
                                   f"(waiting at {done_until}, window ends {hi})")
            else:
                time.sleep(cfg.live_poll_s)

    def _keyed(self) -> Iterator[pa.Table]:
        """Rows in the chosen time order with `_t`; event mode reorders within `lateness`."""
        if self.cfg.time == "recv":
            for t in self._read_window():
                self.events_read += t.num_rows
                yield t.append_column("_t", t["recv_ts_ns"])
            return
        pending = None
        for t in self._read_window():
            self.events_read += t.num_rows
            key = pc.coalesce(t["event_ts_ns"], t["recv_ts_ns"])
            t = t.append_column("_t", key)
            pending = t if pending is None else pa.concat_tables([pending, t])
            # everything with _t < recv watermark - lateness can no longer be preceded
            watermark = t["recv_ts_ns"][-1].as_py() - self.cfg.lateness_ns
            ready = pc.less(pending["_t"], watermark)
            out = pending.filter(ready)
            pending = pending.filter(pc.invert(ready))
            if out.num_rows:
                yield out.take(pc.sort_indices(out, sort_keys=EVENT_ORDER))
        if pending is not None and pending.num_rows:
            yield pending.take(pc.sort_indices(pending, sort_keys=EVENT_ORDER))

    # -- chunks -------------------------------------------------------------------------------
    def chunks(self) -> Iterator[Chunk]:
        """Chunks of `chunk_steps` steps with their events, paced by `speed`."""
        cfg = self.cfg
        n_steps = cfg.n_steps
        wall0 = time.monotonic()
        buf: list[pa.Table] = []
        rows = self._keyed()
        exhausted = False
        last_t = None
        for step0 in range(0, n_steps, cfg.chunk_steps):
            n = min(cfg.chunk_steps, n_steps - step0)
            t0 = cfg.start_ns + step0 * cfg.step_ns
            t1 = t0 + n * cfg.step_ns
            while not exhausted and (last_t is None or last_t < t1):
                nxt = next(rows, None)
                if nxt is None:
                    exhausted = True
                    break
                if nxt.num_rows:
                    buf.append(nxt)
                    last_t = nxt["_t"][-1].as_py()
            table = pa.concat_tables(buf) if buf else SCHEMA.append(pa.field("_t", pa.int64())).empty_table()
            keys = table["_t"].to_numpy()
            late = keys < t0
            self.late_events += int(late.sum())
            keys = np.where(late, t0, keys)   # a late event counts in the first step still open
            if cfg.time == "event" and len(keys) and (late.any() or np.any(np.diff(keys) < 0)):
                order = np.argsort(keys, kind="stable")
                table, keys = table.take(order), keys[order]
            cut = int(np.searchsorted(keys, t1, side="left"))
            inside, rest = table.slice(0, cut), table.slice(cut)
            buf = [rest] if rest.num_rows else []
            starts = t0 + np.arange(n, dtype=np.int64) * cfg.step_ns
            offsets = np.searchsorted(keys[:cut], np.append(starts, t1), side="left").astype(np.int64)
            offsets[0] = 0
            yield Chunk(step0=step0, starts_ns=starts, step_ns=cfg.step_ns,
                        events=inside.drop_columns(["_t"]), offsets=offsets)
            if cfg.speed is not None:
                due = wall0 + (t1 - cfg.start_ns) / 1e9 / cfg.speed
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
