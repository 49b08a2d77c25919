"""Compose a run: resolve the window, build the configured stages, drive the clock, write the
run directory (one Parquet table per stage plus extras, manifest.json, run_stats.json).
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from omegaconf import DictConfig, OmegaConf
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from recorder.reader import LogReader, match_streams, stream_pairs
from replay.clock import Alignment, Clock, ClockConfig, window_bounds
from replay.manifest import code_version, file_table_hash, package_versions, read_json, write_json
from replay.stage import Chunk, Stage
from replay.timeparse import duration_ns, time_ns

log = logging.getLogger("smabm.replay")

StageFactory = Callable[[DictConfig, "RunContext"], Stage]
STAGES: dict[str, StageFactory] = {}


def register(name: str):
    """Register a stage factory under the name used in `replay.stages`."""
    def deco(fn: StageFactory) -> StageFactory:
        STAGES[name] = fn
        return fn
    return deco


class RunContext:
    """What stage factories may know about the run: the log, the instrument, the seed."""

    def __init__(self, cfg: DictConfig, reader: LogReader, clock: ClockConfig) -> None:
        self.cfg = cfg
        self.reader = reader
        self.clock = clock
        source, _, symbol = str(cfg.replay.instrument).partition(":")
        if not symbol:
            raise ValueError(f"replay.instrument={cfg.replay.instrument!r}: expected source:symbol, "
                             "e.g. binance.spot:btcusdt")
        self.source, self.symbol = source, symbol.lower()
        self.seed = int(cfg.seed)
        self._ready: list[Callable[[], None]] = []

    def when_ready(self, hook: Callable[[], None]) -> None:
        """Run `hook` once the window is resolved (e.g. warm a book up to the window start)."""
        self._ready.append(hook)

    def ready(self) -> None:
        for hook in self._ready:
            hook()


def clock_config(cfg: DictConfig, reader: LogReader, streams) -> ClockConfig:
    r = cfg.replay
    align = tuple(_alignment(a, i) for i, a in enumerate(r.align or ()))
    start = time_ns(r.window.start, "replay.window.start")
    end = time_ns(r.window.end, "replay.window.end")
    known = reader.streams()
    shifted = set().union(*(match_streams(a.streams, known) for a in align)) if align else set()
    own = sorted(match_streams(streams, known) - shifted)  # an open window spans unshifted streams
    start, end = window_bounds(reader, start, end, [f"{s}:{t}" for s, t in own] or streams)
    speed = None if str(r.speed) == "max" else float(r.speed)
    if speed is not None and speed <= 0:
        raise ValueError(f"replay.speed={r.speed!r}: expected max or a positive number")
    if int(r.chunk_steps) <= 0:
        raise ValueError(f"replay.chunk_steps={r.chunk_steps}: must be positive")
    return ClockConfig(
        start_ns=start, end_ns=end, step_ns=duration_ns(r.step, "replay.step"), time=str(r.time),
        lateness_ns=duration_ns(r.lateness, "replay.lateness"), chunk_steps=int(r.chunk_steps),
        speed=speed, live=bool(r.live), live_poll_s=duration_ns(r.live_poll, "replay.live_poll") / 1e9,
        live_lag_ns=duration_ns(r.live_lag, "replay.live_lag"),
        live_idle_timeout_s=duration_ns(r.live_idle_timeout, "replay.live_idle_timeout") / 1e9,
        align=align)


def _alignment(a: DictConfig, i: int) -> Alignment:
    name = f"replay.align[{i}]"
    try:
        streams, src, dst = list(a.streams), a.from_time, a.to_time
    except (AttributeError, KeyError):
        raise ValueError(f"{name}: expected {{streams: [...], from_time: ..., to_time: ...}}") from None
    return Alignment(tuple(streams), time_ns(dst, f"{name}.to_time") - time_ns(src, f"{name}.from_time"))


def config_hash(cfg: DictConfig) -> str:
    """Hash of what determines a run's outputs (monitoring settings do not)."""
    data = OmegaConf.to_container(cfg, resolve=True)
    data.pop("monitor", None)
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()


def run_dir_for(cfg: DictConfig) -> Path:
    if cfg.replay.out:
        return Path(cfg.replay.out)
    return Path("runs") / f"replay-{config_hash(cfg)[:12]}"


def _with_steps(cols: Mapping[str, np.ndarray], chunk: Chunk) -> pa.Table:
    arrays = {"step": np.arange(chunk.step0, chunk.step0 + chunk.n_steps, dtype=np.int64),
              "t_ns": chunk.starts_ns}
    for k, v in cols.items():
        if len(v) != chunk.n_steps:
            raise ValueError(f"stage output {k!r} has {len(v)} rows for {chunk.n_steps} steps")
        arrays[k] = v
    return pa.table(arrays)


def build_stages(cfg: DictConfig, ctx: RunContext) -> list[Stage]:
    stages = []
    for name in cfg.replay.stages:
        if name not in STAGES:
            raise ValueError(f"replay.stages: unknown stage {name!r} (known: {', '.join(sorted(STAGES))})")
        stage = STAGES[name](cfg, ctx)
        missing = [n for n in stage.needs if n not in [s.name for s in stages]]
        if missing:
            raise ValueError(f"replay.stages: {name!r} needs {missing} listed before it")
        stages.append(stage)
    return stages


def run_replay(cfg: DictConfig, out: Path | None = None, progress: bool = True,
               on_chunk: Callable[[str, pa.Table], None] | None = None) -> Path:
    """Replay the configured window through the stages; return the run directory.

    `on_chunk(stage, table)` sees each stage's step outputs as they are written (monitoring)."""
    from replay import stages as _builtin  # noqa: F401  (registers the built-in stages)

    reader = LogReader(cfg.log.root)
    out = Path(out) if out is not None else run_dir_for(cfg)
    # the window is resolved against every stream a stage reads
    probe = ClockConfig(start_ns=0, end_ns=1, step_ns=1)
    ctx = RunContext(cfg, reader, probe)
    stages = build_stages(cfg, ctx)
    patterns = sorted({p for s in stages for p in s.streams})
    ccfg = clock_config(cfg, reader, patterns)
    ctx.clock = ccfg
    ctx.ready()
    segments = reader.segments(window=(ccfg.start_ns - ccfg.lateness_ns, ccfg.end_ns + ccfg.lateness_ns),
                               streams=patterns)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    writers: dict[str, pq.ParquetWriter] = {}
    wall0 = time.monotonic()
    clock = Clock(reader, ccfg, streams=patterns)
    with Progress(TextColumn("replay"), BarColumn(), TextColumn("{task.completed}/{task.total} steps"),
                  TimeRemainingColumn(), disable=not progress) as bar:
        task = bar.add_task("replay", total=ccfg.n_steps)
        for chunk in clock.chunks():
            upstream: dict[str, dict[str, np.ndarray]] = {}
            for stage in stages:
                events, offsets = _restrict(chunk, stage.streams)
                mine = Chunk(chunk.step0, chunk.starts_ns, chunk.step_ns, events, offsets,
                             {n: upstream[n] for n in stage.needs})
                cols = stage.process(mine)
                upstream[stage.name] = cols
                table = _with_steps(cols, chunk)
                if stage.name not in writers:
                    writers[stage.name] = pq.ParquetWriter(out / f"{stage.name}.parquet", table.schema,
                                                           compression="zstd")
                writers[stage.name].write_table(table)
                if on_chunk is not None:
                    on_chunk(stage.name, table)
            bar.update(task, advance=chunk.n_steps)
    for w in writers.values():
        w.close()
    for stage in stages:
        for name, table in stage.tables().items():
            pq.write_table(table, out / f"{stage.name}_{name}.parquet", compression="zstd")
    outputs = {}
    for p in sorted(out.glob("*.parquet")):
        rows, digest = file_table_hash(p)
        outputs[p.stem] = {"rows": rows, "sha256": digest}
    manifest = {
        "format": 1,
        "config": OmegaConf.to_container(cfg, resolve=True),
        "seed": int(cfg.seed),
        "window": {"start_ns": ccfg.start_ns, "end_ns": ccfg.end_ns, "step_ns": ccfg.step_ns,
                   "steps": ccfg.n_steps, "time": ccfg.time},
        "segments": [{"path": s.path, "sha256": s.sha256, "rows": s.rows} for s in segments],
        "code_version": code_version(),
        "packages": package_versions(),
        "outputs": outputs,
        "late_events": clock.late_events,
    }
    write_json(out / "manifest.json", manifest)
    wall = time.monotonic() - wall0
    write_json(out / "run_stats.json", {"wall_s": round(wall, 3), "events": clock.events_read,
                                        "events_per_s": round(clock.events_read / max(wall, 1e-9))})
    log.info("run=%s steps=%d events=%d wall_s=%.2f", out, ccfg.n_steps, clock.events_read, wall)
    return out


def _restrict(chunk: Chunk, patterns) -> tuple[pa.Table, np.ndarray]:
    """The chunk's events of `patterns` only, with step offsets remapped (vectorised)."""
    ev = chunk.events
    if ev.num_rows == 0:
        return ev, chunk.offsets
    keys = pc.binary_join_element_wise(ev["source"], ev["stream"], "\x00")
    pairs = stream_pairs(ev)
    wanted = match_streams(list(patterns), sorted(pairs))
    if len(wanted) == len(pairs):
        return ev, chunk.offsets
    mask = pc.is_in(keys, value_set=pa.array([f"{a}\x00{b}" for a, b in sorted(wanted)], pa.string()))
    kept = np.concatenate(([0], np.cumsum(mask.to_numpy(zero_copy_only=False))))
    return ev.filter(mask), kept[chunk.offsets].astype(np.int64)


def verify_run(run_dir: Path, progress: bool = True) -> dict:
    """Re-run a run directory's config into a scratch folder and compare output hashes."""
    manifest = read_json(run_dir / "manifest.json")
    cfg = OmegaConf.create(manifest["config"])
    scratch = run_dir.parent / f".verify-{run_dir.name}"
    try:
        again = read_json(run_replay(cfg, out=scratch, progress=progress) / "manifest.json")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    names = sorted(set(manifest["outputs"]) | set(again["outputs"]))
    tables = {n: {"expected": manifest["outputs"].get(n, {}).get("sha256"),
                  "got": again["outputs"].get(n, {}).get("sha256")} for n in names}
    return {"run": str(run_dir), "identical": all(t["expected"] == t["got"] for t in tables.values()),
            "tables": tables}
