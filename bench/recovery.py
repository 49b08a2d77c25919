"""Parameter recovery: simulate the synthetic market with known agent parameters on a real window,
then calibrate from those simulated moments alone and report how close the estimate comes.

The real window (the bundled Binance BTCUSDT sample, or `--data` files) only supplies the book
that seeds the simulation and the step grid; the "observed" moments are one simulation at the
true parameters with a seed outside the calibration's common random numbers. Prints JSON lines:
the window, the target moments, a profile of the objective along each parameter (the others at
their true values) with whether the parameter is identifiable from these moments, the recovery
(relative error of the re-evaluated winner, trials until every identifiable parameter was
within 10%), and the speed of a trial against a full replay per trial (baseline, same run).

    .venv/bin/python bench/recovery.py [--trials 200] [--seeds 4] [--step 250ms]
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna
import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from calibrate.moments import make_target, moment_values  # noqa: E402
from calibrate.objective import Objective, ParamSpace, Simulator, build_window, load_window  # noqa: E402
from calibrate.optuna_study import FRESH_STREAM, SEARCH_STREAM, reevaluate, seeds_of  # noqa: E402
from calibrate.samplers import make_pruner, make_sampler  # noqa: E402
from recorder.importers import import_files  # noqa: E402
from replay.pipeline import run_replay  # noqa: E402
from smabm.config import load_config  # noqa: E402

TRUE = {"sim.agents.noise.rate_per_step": 0.15, "sim.agents.noise.p_market": 0.2,
        "sim.agents.market_maker.half_spread_ticks": 2.5, "sim.agents.informed.act_prob": 0.05}
BOUNDS = {"sim.agents.noise.rate_per_step": (0.03, 0.6), "sim.agents.noise.p_market": (0.04, 0.6),
          "sim.agents.market_maker.half_spread_ticks": (0.5, 8.0),
          "sim.agents.informed.act_prob": (0.005, 0.3)}
MOMENTS = ["std", "excess_kurtosis", "acf_r_1", "acf_abs_1", "acf_abs_5", "acf_sq_1",
           "volume_abs_r_corr", "sign_acf_1", "zero_return_share", "log_volume_mean",
           "spread_bps_mean", "log_depth_mean"]
TARGET_SEED = 987_654_321


def emit(**row) -> None:
    print(orjson.dumps(row, option=orjson.OPT_SERIALIZE_NUMPY).decode(), flush=True)


def params_override() -> list[str]:
    spec = ", ".join(f"{k}: {{low: {lo}, high: {hi}, log: true}}" for k, (lo, hi) in BOUNDS.items())
    return ["~calibrate.params", f"+calibrate.params={{{spec}}}"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--seeds", type=int, default=4, help="common random numbers per trial")
    ap.add_argument("--step", default="250ms", help="replay step (the window is ~6 min)")
    ap.add_argument("--data", nargs="*", type=Path,
                    default=[REPO / "tests/data/binance/spot_btcusdt_20240808.gz"],
                    help="hftbacktest-format Binance files (e.g. ../shared/data/hftbacktest_examples/"
                         "spot_btcusdt_2024080{8,9}.gz for ~11 minutes)")
    ap.add_argument("--grid", type=int, default=13, help="profile points per parameter")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    tmp = Path(tempfile.mkdtemp(prefix="smabm-recovery-"))
    root = tmp / "log"
    import_files(root, "hftbacktest", [str(p) for p in args.data], progress=False)
    group = [] if "calibrate" in load_config([]) else ["+calibrate=default"]
    base = [f"log.root={root}", "replay.stages=[book,tape]", f"replay.step={args.step}", *group,
            *params_override()]
    cfg = load_config(base)
    window = load_window(build_window(cfg, tmp / "cal"))
    sim = Simulator(cfg, window)
    emit(figure="window", data=[p.name for p in args.data], step=args.step, steps=window.n_steps,
         agents={k: int(v.count) for k, v in cfg.sim.agents.items()})

    # the observed moments: one simulation at the true parameters, seed outside the CRN set
    (obs,) = list(sim.run(TRUE, [TARGET_SEED], [window.n_steps]))[-1]
    boot = cfg.calibrate.bootstrap
    target = make_target(obs, MOMENTS, [0.25, 0.5], draws=int(boot.draws), block_steps=int(boot.block_steps),
                         shrinkage=float(boot.shrinkage), nan_penalty=10.0,
                         seed=np.random.SeedSequence([0, 3]))
    emit(figure="target", moments=dict(zip(target.names, target.real.tolist(), strict=True)),
         sd=dict(zip(target.names, target.sd.tolist(), strict=True)), dropped=target.dropped)

    space = ParamSpace.from_config(cfg)
    seeds = seeds_of(0, SEARCH_STREAM, args.seeds)
    objective = Objective(sim, target, space, seeds, prune=True)

    identifiable = {}
    t0 = time.perf_counter()
    for p in space.params:
        grid = np.exp(np.linspace(math.log(p.low), math.log(p.high), args.grid))
        grid = np.unique(np.r_[grid, TRUE[p.name]])
        dist = np.array([objective.evaluate({**TRUE, p.name: float(g)})[0] for g in grid])
        lo_i = int(np.argmin(dist))
        flat = dist.max() - dist.min()
        # identifiable: the profile is minimised near the truth and rises clearly away from it
        near = np.abs(np.log(grid / TRUE[p.name])) <= math.log(1.6)
        rise = float(dist[~near].min() - dist.min()) if (~near).any() else math.nan
        ok = bool(abs(grid[lo_i] / TRUE[p.name] - 1) <= 0.35 and rise > 2.0)
        identifiable[p.name] = ok
        emit(figure="profile", param=p.name, true=TRUE[p.name], grid=np.round(grid, 5),
             distance=np.round(dist, 3), argmin=float(grid[lo_i]), range=round(float(flat), 3),
             rise_outside_x1_6=round(rise, 3), identifiable=ok)
    profile_s = time.perf_counter() - t0

    study = optuna.create_study(direction="minimize", sampler=make_sampler("tpe", 0, 0, 20),
                                pruner=make_pruner(True, 10))
    t0 = time.perf_counter()
    study.optimize(objective, n_trials=args.trials)
    search_s = time.perf_counter() - t0
    fresh = seeds_of(0, FRESH_STREAM, 2 * args.seeds)
    rows = reevaluate(objective, study, 5, fresh)
    winner = rows[0]["params"]
    first_within = None
    best = math.inf
    for t in study.trials:
        if t.state.name != "COMPLETE" or t.value >= best:
            continue
        best = t.value
        if first_within is None and all(abs(t.params[k] / TRUE[k] - 1) <= 0.10
                                        for k, ok in identifiable.items() if ok):
            first_within = t.number + 1
    for name, v in TRUE.items():
        emit(figure="recovery", param=name, true=v, estimate=round(winner[name], 5),
             rel_error=round(abs(winner[name] / v - 1), 4), identifiable=identifiable[name])
    errs = [abs(winner[k] / TRUE[k] - 1) for k, ok in identifiable.items() if ok]
    states = [t.state.name for t in study.trials]
    emit(figure="recovery_summary", trials=args.trials, complete=states.count("COMPLETE"),
         pruned=states.count("PRUNED"), seeds=args.seeds,
         max_rel_error_identifiable=round(max(errs), 4) if errs else None,
         trials_until_within_10pct=first_within, winner_distance_fresh=round(rows[0]["distance_fresh"], 3),
         true_distance_fresh=round(objective.evaluate(TRUE, fresh)[0], 3),
         search_s=round(search_s, 2), profile_s=round(profile_s, 2))

    # speed: one trial's simulation on the cached window vs a full replay per simulation
    reps = 5
    t0 = time.perf_counter()
    for k in range(reps):
        (b,) = list(sim.run(TRUE, [k], [window.n_steps]))[-1]
        moment_values(b, target.names)
    cached = (time.perf_counter() - t0) / reps
    full_cfg = load_config([*base, "replay.stages=[book,tape,sim]", f"replay.out={tmp / 'full'}",
                            *(f"{k}={v}" for k, v in TRUE.items())])
    t0 = time.perf_counter()
    for _ in range(reps):
        run_replay(full_cfg, progress=False)
    full = (time.perf_counter() - t0) / reps
    emit(figure="trial_speed", steps=window.n_steps, cached_window_s=round(cached, 4),
         full_replay_s=round(full, 4), speedup=round(full / cached, 1))


if __name__ == "__main__":
    main()
