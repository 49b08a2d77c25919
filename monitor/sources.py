"""Where the dashboard reads from: run directories or PostgreSQL, a status file, a study.

Every reader hands back the shapes of the metric tables (`monitor.rows.SCHEMAS`) as polars
frames, so the figures do not care whether a run came from its Parquet files or from the sink.
Readers cache what they read and re-read only what changed: a finished run is read once, a
growing run reads only its new live chunk files, and PostgreSQL is asked again only when the
run's row count moved.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import optuna
import orjson
import polars as pl
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
from psycopg import sql

from monitor.hooks import LIVE_DIR
from monitor.rows import SCHEMAS, stage_rows, status_rows
from monitor.schema import RUN_TABLES
from monitor.sink import libpq_dsn

STAGE_FILES = ("book", "tape", "sentiment", "regimes", "sim")


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    state: str        # finished | running | incomplete (files), updated <time> (postgres)


@dataclass
class Timeline:
    run_id: str
    state: str
    version: str                                  # changes whenever the data does
    tables: dict[str, pl.DataFrame] = field(default_factory=dict)
    steps: int = 0
    stride: int = 1


def _empty(name: str) -> pl.DataFrame:
    return pl.from_arrow(SCHEMAS[name].empty_table())


def stride_for(steps: int, max_points: int) -> int:
    return max(1, math.ceil(steps / max_points))


def _thin(tables: dict[str, pa.Table], run_id: str, state: str, version: str,
          max_points: int) -> Timeline:
    frames = {n: pl.from_arrow(tables[n]) if n in tables else _empty(n) for n in RUN_TABLES}
    steps = max((int(f["step"].max()) + 1 for f in frames.values() if f.height), default=0)
    k = stride_for(steps, max_points)
    if k > 1:
        frames = {n: f.filter(pl.col("step") % k == 0) for n, f in frames.items()}
    return Timeline(run_id, state, version, frames, steps, k)


class RunFiles:
    """Run directories under `root`: final tables once manifest.json exists, else live chunks."""

    def __init__(self, root: Path, max_points: int = 4000) -> None:
        self.root, self.max_points = Path(root), max_points
        self._lock = threading.Lock()
        self._final: dict[Path, tuple[int, dict[str, pa.Table]]] = {}
        self._live: dict[Path, dict[str, list[tuple[str, dict[str, pa.Table]]]]] = {}

    def resolve(self, run: str) -> Path:
        p = Path(run)
        return p if p.is_dir() else self.root / run

    @staticmethod
    def state(path: Path) -> str:
        if (path / "manifest.json").exists():
            return "finished"
        return "running" if (path / LIVE_DIR).is_dir() else "incomplete"

    def runs(self) -> list[RunInfo]:
        if not self.root.is_dir():
            return []
        dirs = [p for p in self.root.iterdir() if p.is_dir() and ((p / "manifest.json").exists()
                                                                   or (p / LIVE_DIR).is_dir())]
        dirs.sort(key=lambda p: (-p.stat().st_mtime_ns, p.name))
        return [RunInfo(p.name, self.state(p)) for p in dirs]

    def timeline(self, run: str) -> Timeline:
        path = self.resolve(run)
        state = self.state(path)
        with self._lock:
            if state == "finished":
                tables, version = self._read_final(path)
            else:
                tables, version = self._read_live(path)
        return _thin(tables, path.name, state, version, self.max_points)

    def _read_final(self, path: Path) -> tuple[dict[str, pa.Table], str]:
        mtime = (path / "manifest.json").stat().st_mtime_ns
        cached = self._final.get(path)
        if cached is None or cached[0] != mtime:
            parts: dict[str, list[pa.Table]] = {}
            for stage in STAGE_FILES:
                f = path / f"{stage}.parquet"
                if f.exists():
                    for name, t in stage_rows(path.name, stage, pq.read_table(f)).items():
                        parts.setdefault(name, []).append(t)
            self._final[path] = (mtime, {n: pa.concat_tables(ts) for n, ts in parts.items()})
        return self._final[path][1], f"final:{mtime}"

    def _read_live(self, path: Path) -> tuple[dict[str, pa.Table], str]:
        seen = self._live.setdefault(path, {})
        live = path / LIVE_DIR
        files = sorted(live.glob("*-*.parquet")) if live.is_dir() else []
        for f in files:
            stage = f.name.rsplit("-", 1)[0]
            done = seen.setdefault(stage, [])
            if stage in STAGE_FILES and f.name not in {n for n, _ in done}:
                done.append((f.name, stage_rows(path.name, stage, pq.read_table(f))))
        parts: dict[str, list[pa.Table]] = {}
        for done in seen.values():
            for _, rows in done:
                for name, t in rows.items():
                    parts.setdefault(name, []).append(t)
        return ({n: pa.concat_tables(ts) for n, ts in parts.items()},
                f"live:{sum(len(d) for d in seen.values())}")


class RunsInPostgres:
    """Runs the sink wrote: the `runs` registry and the metric tables of one run."""

    def __init__(self, dsn: str, schema: str, max_points: int = 4000) -> None:
        self._dsn, self.schema, self.max_points = libpq_dsn(dsn), schema, max_points
        self._cache: dict[str, Timeline] = {}

    def _connect(self) -> psycopg.Connection:
        return psycopg.connect(self._dsn, connect_timeout=5, options="-c TimeZone=UTC")

    def runs(self) -> list[RunInfo]:
        with self._connect() as conn:
            rows = conn.execute(sql.SQL("SELECT run_id, updated_at FROM {}.runs ORDER BY updated_at DESC, "
                                        "run_id").format(sql.Identifier(self.schema))).fetchall()
        return [RunInfo(r, f"updated {u:%Y-%m-%d %H:%M:%S} UTC") for r, u in rows]

    def timeline(self, run: str) -> Timeline:
        s = sql.Identifier(self.schema)
        with self._connect() as conn:
            head = conn.execute(sql.SQL("SELECT rows, updated_at FROM {}.runs WHERE run_id = %s").format(s),
                                (run,)).fetchone()
            if head is None:
                return Timeline(run, "unknown run", "none")
            version = f"pg:{head[0]}"
            if run in self._cache and self._cache[run].version == version:
                return self._cache[run]
            steps = conn.execute(sql.SQL("SELECT coalesce(max(step) + 1, 0) FROM {}.top_of_book "
                                         "WHERE run_id = %s").format(s), (run,)).fetchone()[0]
            k = stride_for(int(steps), self.max_points)
            tables = {}
            for name in RUN_TABLES:
                cols = SCHEMAS[name].names
                q = sql.SQL("SELECT {} FROM {}.{} WHERE run_id = %s AND step %% %s = 0 ORDER BY step").format(
                    sql.SQL(", ").join(map(sql.Identifier, cols)), s, sql.Identifier(name))
                rows = conn.execute(q, (run, k)).fetchall()
                tables[name] = pl.DataFrame(rows, schema=_empty(name).schema, orient="row")
        tl = Timeline(run, f"updated {head[1]:%Y-%m-%d %H:%M:%S} UTC", version, tables, int(steps), k)
        self._cache[run] = tl
        return tl


@dataclass
class RecorderView:
    status: pl.DataFrame      # recorder_status rows, oldest first
    streams: pl.DataFrame     # recorder_streams rows, oldest first
    stopped: bool | None = None
    source: str = ""


class StatusFile:
    """A recorder's status file; snapshots seen while the dashboard runs make the history."""

    def __init__(self, path: Path, recorder: str, keep: int = 600) -> None:
        self.path, self.recorder = Path(path), recorder
        self._hist: deque[dict[str, pa.Table]] = deque(maxlen=keep)
        self._seen: int | None = None
        self._stopped: bool | None = None
        self._lock = threading.Lock()

    def view(self) -> RecorderView | None:
        with self._lock:
            try:
                mtime = self.path.stat().st_mtime_ns
                if mtime != self._seen:
                    status = orjson.loads(self.path.read_bytes())
                    self._hist.append(status_rows(self.recorder, status, mtime))
                    self._seen, self._stopped = mtime, bool(status.get("stopped", False))
            except (FileNotFoundError, orjson.JSONDecodeError):
                pass
            if not self._hist:
                return None
            frames = {n: pl.from_arrow(pa.concat_tables([h[n] for h in self._hist if n in h]
                                                        or [SCHEMAS[n].empty_table()]))
                      for n in ("recorder_status", "recorder_streams")}
        return RecorderView(frames["recorder_status"], frames["recorder_streams"], self._stopped,
                            str(self.path))


class StatusInPostgres:
    """The recorder's status history from the sink's tables (last `keep` snapshots)."""

    def __init__(self, dsn: str, schema: str, recorder: str, keep: int = 600) -> None:
        self._dsn, self.schema, self.recorder, self.keep = libpq_dsn(dsn), schema, recorder, keep

    def view(self) -> RecorderView | None:
        s = sql.Identifier(self.schema)
        with psycopg.connect(self._dsn, connect_timeout=5, options="-c TimeZone=UTC") as conn:
            out = {}
            for name in ("recorder_status", "recorder_streams"):
                cols = SCHEMAS[name].names
                q = sql.SQL("SELECT {} FROM {}.{} WHERE recorder = %s AND ts >= coalesce((SELECT min(ts) "
                            "FROM (SELECT ts FROM {}.recorder_status WHERE recorder = %s ORDER BY ts DESC "
                            "LIMIT %s) t), now()) ORDER BY ts").format(
                    sql.SQL(", ").join(map(sql.Identifier, cols)), s, sql.Identifier(name), s)
                rows = conn.execute(q, (self.recorder, self.recorder, self.keep)).fetchall()
                out[name] = pl.DataFrame(rows, schema=_empty(name).schema, orient="row")
        if out["recorder_status"].height == 0:
            return None
        return RecorderView(out["recorder_status"], out["recorder_streams"], None,
                            f"PostgreSQL schema {self.schema}")


@dataclass
class StudyView:
    name: str
    trials: pl.DataFrame          # number, state, value
    best_value: float | None
    best_params: dict
    minimize: bool
    importances: dict[str, float] | None
    note: str = ""


class StudyReader:
    """Progress of an Optuna study (trials, best value, parameter importances)."""

    def __init__(self, storage: str, name: str | None = None) -> None:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._storage = optuna.storages.RDBStorage(storage) if "://" in storage else storage
        self.name = name
        self._cache: tuple[tuple, StudyView] | None = None

    def view(self) -> StudyView | None:
        name = self.name
        if name is None:
            summaries = optuna.get_all_study_summaries(self._storage, include_best_trial=False)
            if not summaries:
                return None
            name = max(summaries, key=lambda s: (s.datetime_start or 0, s.study_name)).study_name
        study = optuna.load_study(study_name=name, storage=self._storage)
        trials = study.get_trials(deepcopy=False)
        key = (name, len(trials), tuple(t.state for t in trials))
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        frame = pl.DataFrame({"number": [t.number for t in trials],
                              "state": [t.state.name for t in trials],
                              "value": [t.value for t in trials]},
                             schema={"number": pl.Int64, "state": pl.Utf8, "value": pl.Float64})
        done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
        best = study.best_trial if done else None
        imp, note = None, ""
        try:
            if len(done) >= 2:
                imp = optuna.importance.get_param_importances(
                    study, evaluator=optuna.importance.PedAnovaImportanceEvaluator())
            else:
                note = "importances need at least 2 complete trials"
        except (ValueError, RuntimeError) as exc:
            note = f"importances not available: {exc}"
        view = StudyView(name, frame, None if best is None else best.value,
                         {} if best is None else dict(best.params),
                         study.direction == optuna.study.StudyDirection.MINIMIZE, imp, note)
        self._cache = (key, view)
        return view


def age_s(ts) -> float | None:
    """Seconds since a UTC datetime (the dashboard's 'last update' line)."""
    return None if ts is None else max(0.0, time.time() - ts.timestamp())
