"""`smabm calibrate`: the study driver (docs/concepts/calibration.md).

One call, `run_calibration(cfg)`:
1. replay the real window once without `sim` (`<dir>/window`), and measure its moments and the
   bootstrap weighting matrix (`<dir>/target.json`);
2. create or resume the Optuna study (`load_if_exists`) and run the trials, in this process or
   in `calibrate.workers` spawned processes, until it holds `calibrate.n_trials` finished trials;
3. re-run the best `reevaluate.top` trials on `reevaluate.seeds` fresh seeds (the search's
   best is biased low by the seeds it was picked on) and keep the best there;
4. write the winner as Hydra overrides (`<dir>/best_sim.yaml`), replay the window with it
   (`<dir>/best_replay`) and write the stylized-fact report of that replay.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import optuna
import orjson
import yaml
from omegaconf import DictConfig, OmegaConf

from calibrate.facts import FactParams
from calibrate.moments import Target, make_target
from calibrate.objective import (
    Objective,
    ParamSpace,
    Simulator,
    build_window,
    load_window,
    with_values,
)
from calibrate.samplers import make_pruner, make_sampler
from calibrate.workers import (
    finished,
    open_storage,
    optimize,
    quotas,
    redacted,
    run_workers,
    storage_url,
)

log = logging.getLogger("smabm.calibrate")

SEARCH_STREAM, FRESH_STREAM, BOOTSTRAP_STREAM = 1, 2, 3


@dataclass(frozen=True)
class Settings:
    """`calibrate.*`, checked (one-line errors naming the setting)."""

    n_trials: int
    seeds: int
    sampler: str
    n_startup_trials: int
    prune: bool
    fractions: tuple[float, ...]
    prune_startup: int
    draws: int
    block_steps: int
    shrinkage: float
    nan_penalty: float
    moments: tuple[str, ...] | None
    top: int
    fresh_seeds: int
    workers: int
    storage: str | None
    study_name: str | None
    out: str | None
    report: bool

    @classmethod
    def from_config(cls, cfg: DictConfig) -> Settings:
        if "calibrate" not in cfg:
            raise ValueError("config has no 'calibrate' group (add '- calibrate: default' to the "
                             "defaults of conf/config.yaml, or pass +calibrate=default)")
        c = OmegaConf.to_container(cfg.calibrate, resolve=True)
        s = cls(
            n_trials=int(c["n_trials"]), seeds=int(c["seeds"]), sampler=str(c["sampler"]),
            n_startup_trials=int(c["n_startup_trials"]), prune=bool(c["pruning"]["enabled"]),
            fractions=tuple(float(f) for f in c["pruning"]["fractions"] or ()),
            prune_startup=int(c["pruning"]["startup_trials"]), draws=int(c["bootstrap"]["draws"]),
            block_steps=int(c["bootstrap"]["block_steps"]),
            shrinkage=float(c["bootstrap"]["shrinkage"]), nan_penalty=float(c["nan_penalty"]),
            moments=None if c["moments"] is None else tuple(c["moments"]),
            top=int(c["reevaluate"]["top"]), fresh_seeds=int(c["reevaluate"]["seeds"]),
            workers=int(c["workers"]), storage=c["storage"], study_name=c["study_name"],
            out=c["out"], report=bool(c["report"]))
        for name, v, lo in (("n_trials", s.n_trials, 1), ("seeds", s.seeds, 1),
                            ("workers", s.workers, 1), ("reevaluate.top", s.top, 1),
                            ("reevaluate.seeds", s.fresh_seeds, 1)):
            if v < lo:
                raise ValueError(f"calibrate.{name}={v}: must be >= {lo}")
        return s


def identity_hash(cfg: DictConfig) -> str:
    """Hash of what defines a study: window and replay settings, sim, seed, the searched space,
    moments, seeds and bootstrap. Trial counts, workers, storage and output are left out, so
    changing them resumes the same study."""
    data = OmegaConf.to_container(cfg, resolve=True)
    cal = dict(data.pop("calibrate"))
    for k in ("n_trials", "workers", "storage", "study_name", "out", "report", "reevaluate"):
        cal.pop(k, None)
    data.pop("demo", None)
    data.pop("import", None)
    data["calibrate"] = cal
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()


def calibration_dir(cfg: DictConfig) -> Path:
    s = Settings.from_config(cfg)
    return Path(s.out) if s.out else Path("runs") / f"calibrate-{identity_hash(cfg)[:12]}"


def study_name(cfg: DictConfig) -> str:
    s = Settings.from_config(cfg)
    return s.study_name or f"calibrate-{identity_hash(cfg)[:12]}"


def seeds_of(seed: int, stream: int, n: int) -> list[int]:
    """n simulation seeds of one stream (search, fresh), derived from the config seed."""
    return [int(x) for x in np.random.SeedSequence([int(seed), stream]).generate_state(n)]


def _fact_params(cfg: DictConfig) -> FactParams | None:
    facts = cfg.get("facts")
    return FactParams.from_dict(OmegaConf.to_container(facts.params)) if facts and "params" in facts \
        else None


def objective_for(cfg: DictConfig, run_dir: Path, write_target: bool = True
                  ) -> tuple[Objective, Settings]:
    """The objective of `cfg` on the window of `run_dir` (replayed now unless already there);
    `write_target`: also write `<run_dir>/target.json` (the driver does, workers do not)."""
    s = Settings.from_config(cfg)
    space = ParamSpace.from_config(cfg)
    window = load_window(build_window(cfg, run_dir))
    params = _fact_params(cfg)
    target_file = Path(run_dir) / "target.json"
    target = make_target(window.real, s.moments, s.fractions if s.prune else (), draws=s.draws,
                         block_steps=s.block_steps, shrinkage=s.shrinkage, nan_penalty=s.nan_penalty,
                         seed=np.random.SeedSequence([int(cfg.seed), BOOTSTRAP_STREAM]), params=params)
    doc = {"sha256": target.sha256(), **target.to_dict(), "params": space.to_dict(),
           "seeds": seeds_of(cfg.seed, SEARCH_STREAM, s.seeds)}
    if write_target:
        target_file.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
    sim = Simulator(cfg, window)
    return Objective(sim, target, space, doc["seeds"], s.prune, params), s


def load_study(cfg: DictConfig, run_dir: Path, target: Target, worker: int = 0) -> optuna.Study:
    """Create or load the study; refuse one made for other real moments (another window)."""
    s = Settings.from_config(cfg)
    url = storage_url(s.storage, run_dir)
    study = optuna.create_study(
        storage=open_storage(url), study_name=study_name(cfg), direction="minimize",
        load_if_exists=True, sampler=make_sampler(s.sampler, int(cfg.seed), worker, s.n_startup_trials),
        pruner=make_pruner(s.prune, s.prune_startup))
    sha = target.sha256()
    have = study.user_attrs.get("target_sha256")
    if have is None:
        study.set_user_attr("target_sha256", sha)
        study.set_user_attr("moments", list(target.names))
    elif have != sha:
        raise ValueError(f"study {study.study_name!r} in {redacted(url)} was made for other real "
                         "moments (window, moments or bootstrap differ): set calibrate.study_name")
    return study


def _distinct_best(study: optuna.Study, top: int) -> list[optuna.trial.FrozenTrial]:
    done = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            if t.value is not None and math.isfinite(t.value)]
    done.sort(key=lambda t: (t.value, t.number))
    out, seen = [], set()
    for t in done:
        key = tuple(sorted(t.params.items()))
        if key not in seen:
            seen.add(key)
            out.append(t)
        if len(out) == top:
            break
    return out


def reevaluate(objective: Objective, study: optuna.Study, top: int, seeds: list[int]) -> list[dict]:
    """The best `top` distinct trials re-run on fresh seeds, best (fresh) first."""
    rows = []
    for t in _distinct_best(study, top):
        dist, m = objective.evaluate(t.params, seeds)
        rows.append({"trial": t.number, "params": dict(t.params), "distance_search": t.value,
                     "distance_fresh": dist,
                     "moments_fresh": [None if not math.isfinite(x) else float(x) for x in m]})
    if not rows:
        raise RuntimeError(f"study {study.study_name!r} has no completed trial")
    rows.sort(key=lambda r: (r["distance_fresh"], r["trial"]))
    return rows


def override_value(v: float | int) -> str:
    """A Hydra override value that parses back to exactly `v`."""
    return str(int(v)) if isinstance(v, int) else repr(float(v))


def write_best(run_dir: Path, study: optuna.Study, best: dict) -> Path:
    """`<dir>/best_sim.yaml`: the winner's sim.agents values and the same as overrides."""
    tree: dict = {}
    for name, v in sorted(best["params"].items()):
        node = tree
        *parents, leaf = name.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = v
    doc = {"study": study.study_name, "trial": best["trial"],
           "distance_search": best["distance_search"], "distance_fresh": best["distance_fresh"],
           **tree,
           "overrides": [f"{k}={override_value(v)}" for k, v in sorted(best["params"].items())]}
    path = Path(run_dir) / "best_sim.yaml"
    head = ("# Calibrated agent parameters (smabm calibrate). Replay with them:\n"
            "#   smabm replay --overrides-file best_sim.yaml <your window overrides>\n")
    path.write_text(head + yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def overrides_from_file(path: str | Path) -> list[str]:
    """The Hydra overrides of a `best_sim.yaml` (what `smabm replay` takes)."""
    doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or not isinstance(doc.get("overrides"), list):
        raise ValueError(f"{path}: no 'overrides' list (not a best_sim.yaml from smabm calibrate)")
    return [str(o) for o in doc["overrides"]]


def replay_winner(cfg: DictConfig, run_dir: Path, params: dict) -> Path:
    """Replay the window with the winner (stages as configured, `sim` appended if missing) and
    write its stylized-fact report; returns the replay directory."""
    from calibrate.report import report_run
    from replay.pipeline import run_replay

    c = with_values(cfg, params)
    OmegaConf.set_struct(c, False)
    if "sim" not in c.replay.stages:
        c.replay.stages = [*c.replay.stages, "sim"]
    c.replay.out = str(Path(run_dir) / "best_replay")
    c.pop("calibrate", None)
    OmegaConf.set_struct(c, True)
    out = run_replay(c, progress=False)
    report_run(out)
    return out


def run_calibration(cfg: DictConfig) -> Path:
    """Calibrate `calibrate.params` on the configured window; returns the calibration directory
    (study.db with the default storage, target.json, reevaluation.json, best_sim.yaml,
    best_replay/ with its report)."""
    s = Settings.from_config(cfg)
    run_dir = calibration_dir(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    objective, _ = objective_for(cfg, run_dir)
    study = load_study(cfg, run_dir, objective.target)
    url = storage_url(s.storage, run_dir)
    shares = quotas(s.n_trials - finished(study), s.workers)
    log.info("calibrate: study=%s storage=%s finished=%d to_run=%d workers=%d moments=%s",
             study.study_name, redacted(url), finished(study), sum(shares), s.workers,
             ",".join(objective.target.names))
    if s.workers == 1:
        optimize(study, objective, s.n_trials, shares[0])
    elif sum(shares):
        run_workers(OmegaConf.to_container(cfg, resolve=True), run_dir, shares)
    rows = reevaluate(objective, study, s.top, seeds_of(cfg.seed, FRESH_STREAM, s.fresh_seeds))
    trials = study.get_trials(deepcopy=False)
    summary = {"study": study.study_name, "storage": redacted(url),
               "trials": {st.name.lower(): sum(t.state == st for t in trials)
                          for st in optuna.trial.TrialState},
               "best_search": {"trial": study.best_trial.number, "value": study.best_value,
                               "params": study.best_params},
               "reevaluated": rows, "winner": rows[0]}
    (run_dir / "reevaluation.json").write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2) + b"\n")
    write_best(run_dir, study, rows[0])
    if s.report:
        replay_winner(cfg, run_dir, rows[0]["params"])
    return run_dir
