"""The trial objective: the real window replayed once, then only the sim stage per trial.

`build_window` replays the configured window through every stage but `sim` (book, tape,
sentiment, regimes ...) into `<dir>/window`, once; a trial hands the stored per-step outputs to
the very `replay.sim_stage.SimStage` the replay builds (through the registered `sim` stage
factory, so the exogenous inputs and the seeding of the book are the replay's own code) as
chunks. A stage gives the same outputs however its steps are chunked, so a trial's simulation
equals the `sim` table of a full replay with the same parameters and seed.

The objective runs the R common-random-number seeds in lockstep up to each pruning checkpoint,
averages the simulated moments over the seeds and reports the distance to the real moments of
the same steps; the trial value is the distance of the mean over R seeds at the end.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import optuna
import pyarrow.parquet as pq
from omegaconf import DictConfig, OmegaConf

from calibrate.facts import FactParams
from calibrate.moments import Bars, Target, real_bars, sim_bars
from recorder.events import SCHEMA
from recorder.reader import LogReader
from replay.clock import ClockConfig
from replay.pipeline import STAGES, RunContext, config_hash, run_replay
from replay.stage import Chunk

UPSTREAM = ("book", "sentiment", "regimes")   # what the sim stage reads


def window_config(cfg: DictConfig, out: Path) -> DictConfig:
    """The replay config of the real window: the configured stages without `sim`."""
    stages = [s for s in cfg.replay.stages if s != "sim"]
    if "book" not in stages:
        raise ValueError("replay.stages: calibration needs 'book' (the real mid, and the book that "
                         "seeds the simulation)")
    w = copy.deepcopy(cfg)
    with _open(w):
        w.replay.stages = stages
        w.replay.out = str(out)
        w.pop("calibrate", None)   # study settings do not change the window: keep it on resume
    return w


class _open:
    """Temporarily lift struct mode to assign keys of a composed config."""

    def __init__(self, cfg: DictConfig) -> None:
        self.cfg = cfg

    def __enter__(self) -> DictConfig:
        OmegaConf.set_struct(self.cfg, False)
        return self.cfg

    def __exit__(self, *exc) -> None:
        OmegaConf.set_struct(self.cfg, True)


def build_window(cfg: DictConfig, run_dir: Path) -> Path:
    """Replay the real window once into `<run_dir>/window` (kept if its config is unchanged)."""
    out = Path(run_dir) / "window"
    wcfg = window_config(cfg, out)
    manifest = out / "manifest.json"
    if manifest.is_file():
        import orjson

        old = OmegaConf.create(orjson.loads(manifest.read_bytes())["config"])
        if config_hash(old) == config_hash(wcfg):
            return out
    return run_replay(wcfg, out=out, progress=False)


def _table(path: Path) -> dict[str, np.ndarray] | None:
    if not path.is_file():
        return None
    t = pq.read_table(path)
    return {c: t[c].to_numpy(zero_copy_only=False) for c in t.column_names}


@dataclass(frozen=True)
class Window:
    """Per-step outputs of the real window's stages, as the sim stage receives them."""

    starts_ns: np.ndarray
    step_ns: int
    upstream: dict[str, dict[str, np.ndarray]]
    real: Bars
    first_valid: int

    @property
    def n_steps(self) -> int:
        return len(self.starts_ns)

    def chunk(self, a: int, b: int) -> Chunk:
        up = {name: {k: v[a:b] for k, v in cols.items()} for name, cols in self.upstream.items()}
        return Chunk(a, self.starts_ns[a:b], self.step_ns, SCHEMA.empty_table(),
                     np.zeros(b - a + 1, np.int64), up)


def load_window(path: Path) -> Window:
    """Read a window run directory written by `build_window`."""
    import orjson

    path = Path(path)
    manifest = orjson.loads((path / "manifest.json").read_bytes())
    book = _table(path / "book.parquet")
    if book is None or not len(book["step"]):
        raise ValueError(f"{path}: no book table: the calibration window is empty")
    valid = np.nonzero(np.asarray(book["valid"], bool))[0]
    if not len(valid):
        raise ValueError(f"{path}: the real book is never valid in the window: nothing to seed "
                         "the simulation with (widen replay.window)")
    upstream = {}
    for name in UPSTREAM:
        t = _table(path / f"{name}.parquet")
        if t is not None:
            upstream[name] = {k: v for k, v in t.items() if k not in ("step", "t_ns")}
    real = real_bars(book, _table(path / "tape.parquet"))
    return Window(np.asarray(book["t_ns"], np.int64), int(manifest["window"]["step_ns"]), upstream,
                  real, int(valid[0]))


@dataclass(frozen=True)
class Param:
    name: str
    low: float
    high: float
    log: bool
    integer: bool


class ParamSpace:
    """The searched `sim.agents.*` parameters (`calibrate.params`: name -> {low, high, log, int};
    int defaults to the type of the current value; a null entry is left out)."""

    def __init__(self, params: Sequence[Param]) -> None:
        if not params:
            raise ValueError("calibrate.params: no parameter to calibrate")
        self.params = tuple(params)

    @classmethod
    def from_config(cls, cfg: DictConfig) -> ParamSpace:
        spec = OmegaConf.to_container(cfg.calibrate.params, resolve=True) or {}
        out = []
        for name, s in spec.items():
            if s is None:   # `calibrate.params={name: null}` leaves a default parameter out
                continue
            where = f"calibrate.params.{name}"
            if not str(name).startswith("sim.agents."):
                raise ValueError(f"{where}: only sim.agents.<type>.<param> can be calibrated")
            current = OmegaConf.select(cfg, name, default=None, throw_on_missing=False)
            if isinstance(current, bool) or not isinstance(current, int | float):
                raise ValueError(f"{where}: no numeric setting {name} in the sim config")
            if not isinstance(s, Mapping) or set(s) - {"low", "high", "log", "int"} or \
                    not {"low", "high"} <= set(s):
                raise ValueError(f"{where}: expected {{low, high, log: bool, int: bool}}, got {s!r}")
            low, high, log = float(s["low"]), float(s["high"]), bool(s.get("log", False))
            integer = bool(s.get("int", isinstance(current, int)))
            if not low < high:
                raise ValueError(f"{where}: low={low} must be < high={high}")
            if log and low <= 0:
                raise ValueError(f"{where}: log scale needs low > 0 (got {low})")
            out.append(Param(str(name), low, high, log, integer))
        return cls(out)

    def suggest(self, trial: optuna.Trial) -> dict[str, float | int]:
        return {p.name: (trial.suggest_int(p.name, int(p.low), int(p.high), log=p.log) if p.integer
                         else trial.suggest_float(p.name, p.low, p.high, log=p.log))
                for p in self.params}

    def to_dict(self) -> dict:
        return {p.name: {"low": p.low, "high": p.high, "log": p.log, "int": p.integer}
                for p in self.params}


def with_values(cfg: DictConfig, values: Mapping[str, float | int], seed: int | None = None) -> DictConfig:
    """A copy of `cfg` with the parameter values (and seed) set."""
    c = copy.deepcopy(cfg)
    for k, v in values.items():
        OmegaConf.update(c, k, v, merge=False)
    if seed is not None:
        c.seed = int(seed)
    return c


class Simulator:
    """The sim stage of `cfg` on a stored window, for any parameter values and seed."""

    def __init__(self, cfg: DictConfig, window: Window) -> None:
        if str(cfg.sim.mode) != "synthetic":
            raise ValueError(f"sim.mode={cfg.sim.mode!r}: calibration needs 'synthetic' (in backtest "
                             "mode the real market does not react to the agents)")
        self.cfg, self.window = cfg, window
        self.reader = LogReader(cfg.log.root)
        self._levels: dict[int, tuple] = {}
        self.stages = [s for s in cfg.replay.stages if s in UPSTREAM]

    def _cfg(self, values: Mapping[str, float | int], seed: int) -> DictConfig:
        c = with_values(self.cfg, values, seed)
        with _open(c):
            c.replay.stages = [*self.stages, "sim"]
        return c

    def stage(self, values: Mapping[str, float | int], seed: int):
        """A fresh sim stage built by the replay's own `sim` factory."""
        c = self._cfg(values, seed)
        stage = STAGES["sim"](c, RunContext(c, self.reader, ClockConfig(0, 1, 1)))
        read = stage.levels_at

        def levels_at(t_ns: int):   # the real book that seeds every trial: read the log once
            if t_ns not in self._levels:
                self._levels[t_ns] = read(t_ns)
            return self._levels[t_ns]

        stage.levels_at = levels_at
        return stage

    def run(self, values: Mapping[str, float | int], seeds: Sequence[int],
            steps: Sequence[int]) -> Iterator[list[Bars]]:
        """Yield, at each of `steps` (increasing), the simulated bars of every seed so far."""
        from replay import stages as _builtin  # noqa: F401  (registers the built-in stages)

        sims = [self.stage(values, s) for s in seeds]
        cols: list[list[dict[str, np.ndarray]]] = [[] for _ in seeds]
        done = 0
        for b in steps:
            if done < b:
                end = max(b, self.window.first_valid + 1)   # a stage starts at the first valid book
                chunk = self.window.chunk(done, end)
                for i, st in enumerate(sims):
                    cols[i].append(st.process(chunk))
                done = end
            yield [self._bars(st, c, done).head(b) for st, c in zip(sims, cols)]

    def _bars(self, stage, cols: list[dict[str, np.ndarray]], n: int) -> Bars:
        steps = {k: np.concatenate([c[k] for c in cols]) for k in ("mid", "spread", "bid_depth",
                                                                    "ask_depth")}
        tr = stage.tables().get("trades")
        if tr is None:
            z = np.zeros(0)
            step, size, side = z.astype(np.int64), z, z
        else:
            step = tr["step"].to_numpy().astype(np.int64)
            size = tr["size"].to_numpy().astype(np.float64)
            side = tr["aggressor_side"].to_numpy().astype(np.float64)
        return sim_bars(steps, step, size, side, self.window.starts_ns[:n])


def mean_moments(per_seed: Sequence[np.ndarray]) -> np.ndarray:
    """Mean over seeds of each moment (seeds where it is NaN left out; all NaN -> NaN)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(np.vstack(per_seed), axis=0)


class Objective:
    """Callable for `study.optimize`: distance of the mean simulated moments over the CRN seeds."""

    def __init__(self, simulator: Simulator, target: Target, space: ParamSpace, seeds: Sequence[int],
                 prune: bool, params: FactParams | None = None) -> None:
        from calibrate.moments import moment_values

        self._moments = moment_values
        self.simulator, self.target, self.space = simulator, target, space
        self.seeds = [int(s) for s in seeds]
        self.prune = prune
        self.params = params
        self.worker = 0   # which local worker runs it (recorded on each trial)

    def evaluate(self, values: Mapping[str, float | int], seeds: Sequence[int] | None = None,
                 trial: optuna.Trial | None = None) -> tuple[float, np.ndarray]:
        """(distance, mean simulated moments) of `values` on `seeds` (default: the CRN seeds)."""
        steps = self.target.steps
        dist, m = math.nan, np.full(len(self.target.names), np.nan)
        for k, per_seed in enumerate(self.simulator.run(values, seeds or self.seeds, steps)):
            m = mean_moments([self._moments(b, self.target.names, self.params) for b in per_seed])
            dist = self.target.distance(m, k)
            if trial is not None and self.prune and k < len(steps) - 1:
                trial.report(dist, k)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"distance {dist:.4g} after {steps[k]} steps")
        return dist, m

    def __call__(self, trial: optuna.Trial) -> float:
        values = self.space.suggest(trial)
        dist, m = self.evaluate(values, trial=trial)
        trial.set_user_attr("moments", [None if not math.isfinite(x) else float(x) for x in m])
        trial.set_user_attr("worker", self.worker)
        return dist
