"""Samplers and pruners chosen by name (`calibrate.sampler`, `calibrate.pruning`).

- `tpe`: multivariate TPE with the constant liar (running trials count as bad guesses, so
  parallel workers do not all sample the same spot); the default.
- `cmaes`: CMA-ES (package `cmaes`), for smooth objectives once a few random trials are in.
- `qmc`: scrambled Sobol points: space-filling, and the same points whoever draws them (the
  sample index is kept in the study), so a QMC study is reproducible with any number of workers.

Seeds come from the config seed: QMC shares one scramble across workers (it must: the points
are one sequence); TPE and CMA-ES give each worker its own stream so workers do not propose the
same startup points.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import optuna
from optuna.exceptions import ExperimentalWarning

SAMPLERS: dict[str, Callable[[int, int], optuna.samplers.BaseSampler]] = {
    "tpe": lambda seed, startup: optuna.samplers.TPESampler(
        multivariate=True, constant_liar=True, n_startup_trials=startup, seed=seed),
    "cmaes": lambda seed, startup: optuna.samplers.CmaEsSampler(
        n_startup_trials=startup, seed=seed,
        independent_sampler=optuna.samplers.RandomSampler(seed=seed)),
    "qmc": lambda seed, startup: optuna.samplers.QMCSampler(
        qmc_type="sobol", scramble=True, seed=seed, warn_asynchronous_seeding=False),
}


def sampler_seed(seed: int, name: str, worker: int) -> int:
    """The sampler's seed: one per worker (tpe, cmaes) or one per study (qmc)."""
    key = [int(seed), 0x5A3D] + ([] if name == "qmc" else [int(worker)])
    return int(np.random.SeedSequence(key).generate_state(1)[0])


def make_sampler(name: str, seed: int, worker: int = 0, n_startup_trials: int = 10
                 ) -> optuna.samplers.BaseSampler:
    """The sampler `name` seeded from the config seed."""
    if name not in SAMPLERS:
        raise ValueError(f"calibrate.sampler={name!r}: expected one of {', '.join(SAMPLERS)}")
    if n_startup_trials < 0:
        raise ValueError(f"calibrate.n_startup_trials={n_startup_trials}: must be >= 0")
    if name == "cmaes":
        try:
            import cmaes  # noqa: F401
        except ImportError:
            raise ValueError("calibrate.sampler=cmaes needs the 'cmaes' package "
                             "(pip install cmaes==0.13.1)") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        return SAMPLERS[name](sampler_seed(seed, name, worker), n_startup_trials)


def make_pruner(enabled: bool, startup_trials: int) -> optuna.pruners.BasePruner:
    """Median pruner on the partial-window distances (or none)."""
    if not enabled:
        return optuna.pruners.NopPruner()
    if startup_trials < 0:
        raise ValueError(f"calibrate.pruning.startup_trials={startup_trials}: must be >= 0")
    return optuna.pruners.MedianPruner(n_startup_trials=startup_trials, n_warmup_steps=0)
