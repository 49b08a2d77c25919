"""Where the study lives and who works on it.

Storage: `SMABM_OPTUNA_STORAGE` (environment, for DSNs with secrets) overrides
`calibrate.storage`; the default is `sqlite:///<dir>/study.db`. With a PostgreSQL URL
(`postgresql+psycopg://user:password@host:port/db`) any number of `smabm calibrate` runs, on
any number of machines, share one study by name. URLs are logged with the password masked.

Workers: `calibrate.workers=N` spawns N local processes (multiprocessing `spawn`: no state
forked from the parent); each loads the study by name and runs its share of the remaining
trials. Every trial is committed to the storage when it finishes, so an interrupted study loses
at most the trials that were running: a heartbeat marks those failed once stale, and a rerun
of the same command resumes the study (`load_if_exists`) up to `calibrate.n_trials`.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.study import MaxTrialsCallback
from optuna.trial import TrialState
from sqlalchemy.engine import make_url

log = logging.getLogger("smabm.calibrate")

ENV_STORAGE = "SMABM_OPTUNA_STORAGE"
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def storage_url(setting: str | None, run_dir: Path) -> str:
    """The study's RDB URL: environment, else `calibrate.storage`, else SQLite in `run_dir`."""
    url = os.environ.get(ENV_STORAGE) or setting or f"sqlite:///{Path(run_dir).resolve() / 'study.db'}"
    try:
        parsed = make_url(url)
    except Exception:   # sqlalchemy raises several kinds; none may echo the URL
        raise ValueError("calibrate.storage: not a database URL (e.g. sqlite:///study.db or "
                         "postgresql+psycopg://user@host:5432/db)") from None
    if parsed.get_backend_name() not in ("sqlite", "postgresql", "mysql"):
        raise ValueError(f"calibrate.storage: unsupported database {parsed.get_backend_name()!r} "
                         "(sqlite, postgresql)")
    return url


def redacted(url: str) -> str:
    """The URL with any password masked, for logs and files."""
    return make_url(url).render_as_string(hide_password=True)


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """RDB storage with a heartbeat, so trials of a killed worker are failed and retried."""
    engine: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("sqlite"):
        engine["connect_args"] = {"timeout": 60}   # several local workers write one file
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        return optuna.storages.RDBStorage(
            url, engine_kwargs=engine, heartbeat_interval=30, grace_period=120,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1))


def finished(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def quotas(remaining: int, workers: int) -> list[int]:
    """Split the remaining trials over the workers (the first ones take the remainder)."""
    base, extra = divmod(max(remaining, 0), workers)
    return [base + (i < extra) for i in range(workers)]


def optimize(study: optuna.Study, objective, n_trials: int, quota: int) -> None:
    """Run up to `quota` trials in this process, stopping once the study has `n_trials` finished
    (another machine may be working on it too)."""
    if quota <= 0:
        return
    study.optimize(objective, n_trials=quota, gc_after_trial=False,
                   callbacks=[MaxTrialsCallback(n_trials, states=FINISHED)])


def worker_main(cfg: dict[str, Any], run_dir: str, worker: int, quota: int) -> None:
    """Entry point of a spawned worker: rebuild the objective from the run directory, load the
    study by name and run `quota` trials."""
    from omegaconf import OmegaConf

    from calibrate.optuna_study import load_study, objective_for

    logging.basicConfig(level=logging.WARNING)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    conf = OmegaConf.create(cfg)
    OmegaConf.set_struct(conf, True)
    objective, settings = objective_for(conf, Path(run_dir), write_target=False)
    objective.worker = worker
    study = load_study(conf, Path(run_dir), objective.target, worker)
    optimize(study, objective, settings.n_trials, quota)


def run_workers(cfg: dict[str, Any], run_dir: Path, shares: list[int]) -> None:
    """Spawn one process per share and wait; a worker that fails fails the calibration."""
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=worker_main, args=(cfg, str(run_dir), i, q), name=f"calibrate-{i}")
             for i, q in enumerate(shares)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    bad = [f"{p.name} exit {p.exitcode}" for p in procs if p.exitcode != 0]
    if bad:
        raise RuntimeError(f"calibration workers failed: {', '.join(bad)} (the study keeps every "
                           "finished trial: rerun to resume)")
