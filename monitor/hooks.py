"""What the CLI wraps around a replay or a recorder to feed the monitoring layer.

- `replay_monitor(cfg, run_dir)`: a context manager yielding `on_chunk(stage, table)` (or None
  when nothing is enabled) for `replay.pipeline.run_replay`: each stage's step outputs per chunk
  go to the metrics sink (`monitor.sink.enabled`) and/or to `<run>/live/` files
  (`monitor.live_chunks`) that the dashboard follows while the run grows (the final tables
  are written by a ParquetWriter whose footer only exists at the end).
- `recorder_monitor(cfg)`: while a recorder runs, a thread reads its status file and puts each
  new snapshot into the sink. The recorder itself is not touched.

Neither can break what it watches: the sink never blocks (see `monitor.sink`), and a failure to
turn a chunk into metric rows is logged and counted, never raised into the replay.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from monitor.settings import (
    close_timeout_s,
    dsn_env,
    live_chunks,
    recorder_name,
    sink_enabled,
    sink_settings,
    status_poll_s,
)
from monitor.sink import MetricsSink, dsn_from_env

log = logging.getLogger("smabm.monitor")

OnChunk = Callable[[str, pa.Table], None]
LIVE_DIR = "live"


class LiveChunks:
    """`<run>/live/<stage>-<chunk:06d>.parquet`, each file complete when it appears (renamed)."""

    def __init__(self, run_dir: Path) -> None:
        self.dir = Path(run_dir) / LIVE_DIR
        self._count: dict[str, int] = {}

    def __call__(self, stage: str, table: pa.Table) -> None:
        i = self._count.get(stage, 0)
        self._count[stage] = i + 1
        self.dir.mkdir(parents=True, exist_ok=True)
        final = self.dir / f"{stage}-{i:06d}.parquet"
        tmp = self.dir / f".{final.name}.tmp"
        pq.write_table(table, tmp)
        os.replace(tmp, final)

    def close(self) -> None:
        """Remove the live files once the run's final tables and manifest exist."""
        if (self.dir.parent / "manifest.json").exists():
            shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def replay_monitor(cfg, run_dir: str | Path) -> Iterator[OnChunk | None]:
    """Yield the replay's `on_chunk` callback (None when monitoring is off); flush at exit."""
    run_dir = Path(run_dir)
    sink = live = None
    if sink_enabled(cfg):
        sink = MetricsSink(dsn_from_env(dsn_env(cfg)), sink_settings(cfg)).start()
    if live_chunks(cfg):
        live = LiveChunks(run_dir)
    if sink is None and live is None:
        yield None
        return
    run_id = run_dir.name
    failed = [0]

    def on_chunk(stage: str, table: pa.Table) -> None:
        if live is not None:
            live(stage, table)
        if sink is not None:
            try:
                sink.put_stage(run_id, stage, table)
            except (pa.ArrowException, ValueError, KeyError, TypeError) as exc:
                failed[0] += 1
                if failed[0] == 1:
                    log.warning("metrics of stage %s not queued (%s: %s); the run goes on",
                                stage, type(exc).__name__, exc)

    try:
        yield on_chunk
    finally:
        if sink is not None:
            st = sink.close(close_timeout_s(cfg))
            log.info("metrics sink: run=%s written=%d dropped=%d errors=%d", run_id, st.written,
                     st.dropped, st.errors)
        if live is not None:
            live.close()


class StatusFollower:
    """Reads a recorder status file every `poll_s` and puts each new snapshot into the sink.

    The snapshot's time is the file's modification time (when the recorder wrote it)."""

    def __init__(self, path: str | Path, sink: MetricsSink, recorder: str, poll_s: float = 1.0) -> None:
        self.path, self.sink, self.recorder, self.poll_s = Path(path), sink, recorder, poll_s
        self.snapshots = 0
        self._seen: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="status-follower", daemon=True)

    def start(self) -> StatusFollower:
        self._thread.start()
        return self

    def poll(self) -> bool:
        """Read the file if it changed; True when a snapshot was queued."""
        try:
            mtime = self.path.stat().st_mtime_ns
            if mtime == self._seen:
                return False
            status = orjson.loads(self.path.read_bytes())
        except (FileNotFoundError, orjson.JSONDecodeError):
            return False
        self._seen = mtime
        self.sink.put_status(self.recorder, status, mtime)
        self.snapshots += 1
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            self.poll()
        self.poll()   # the recorder's final ("stopped") snapshot

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@contextlib.contextmanager
def recorder_monitor(cfg) -> Iterator[StatusFollower | None]:
    """While the block runs a recorder, feed its status file to the sink (if enabled)."""
    if not sink_enabled(cfg):
        yield None
        return
    path = cfg.record.get("status_file") if "record" in cfg else None
    if not path:
        raise ValueError("monitor.sink.enabled=true needs record.status_file (the recorder's "
                         "status reaches the sink through it)")
    poll = status_poll_s(cfg)
    sink = MetricsSink(dsn_from_env(dsn_env(cfg)), sink_settings(cfg)).start()
    follower = StatusFollower(path, sink, recorder_name(cfg), poll).start()
    try:
        yield follower
    finally:
        follower.stop()
        sink.close(close_timeout_s(cfg))
