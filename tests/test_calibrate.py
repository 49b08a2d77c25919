"""Optuna calibration on the bundled real Binance sample (a 347-step window, small agent counts):
the per-trial simulation is the replay's sim stage, the MSM target and its weighting, pruning,
SQLite resume after a kill, two workers on a real PostgreSQL, determinism, and the winner's
override file replayed as is."""

from __future__ import annotations

import math
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import optuna
import orjson
import polars as pl
import pytest
import yaml
from harness.postgres import postgres_server

from calibrate.moments import ALL_MOMENTS, check_names, make_target, moment_values
from calibrate.objective import ParamSpace, Simulator, build_window, load_window
from calibrate.optuna_study import (
    Settings,
    objective_for,
    overrides_from_file,
    run_calibration,
    study_name,
)
from calibrate.samplers import make_sampler
from calibrate.workers import ENV_STORAGE, quotas, redacted, storage_url
from recorder.importers import import_files
from replay.pipeline import run_replay
from smabm.config import load_config

REPO = Path(__file__).resolve().parents[1]
BINANCE = REPO / "tests/data/binance/spot_btcusdt_20240808.gz"
SMALL = ["sim.agents.market_maker.count=4", "sim.agents.informed.count=4", "sim.agents.noise.count=40",
         "sim.agents.arbitrageur.count=1"]
# a dict given on the command line merges into the default one: drop it first to replace it
PARAMS = ["~calibrate.params", "+calibrate.params={sim.agents.noise.rate_per_step: {low: 0.05, high: 0.6, "
          "log: true}, sim.agents.market_maker.half_spread_ticks: {low: 0.5, high: 6.0, log: true}}"]
FAST = ["calibrate.seeds=2", "calibrate.bootstrap.draws=40", "calibrate.reevaluate.top=2",
        "calibrate.reevaluate.seeds=2", "calibrate.n_startup_trials=3", "calibrate.report=false"]


@pytest.fixture(scope="module")
def log_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cal") / "log"
    import_files(root, "hftbacktest", [BINANCE], progress=False)
    return root


def _group() -> list[str]:
    """`+calibrate=default` until conf/config.yaml lists the group in its defaults."""
    return [] if "calibrate" in load_config([]) else ["+calibrate=default"]


def cal_overrides(root: Path, out: Path, *extra: str) -> list[str]:
    return [f"log.root={root}", "replay.stages=[book,tape]", *_group(), *SMALL, *PARAMS, *FAST,
            f"calibrate.out={out}", *extra]


def cal_cfg(root: Path, out: Path, *extra: str):
    return load_config(cal_overrides(root, out, *extra))


def test_trial_simulation_is_the_replays_sim_stage(log_root, tmp_path):
    cfg = cal_cfg(log_root, tmp_path / "cal")
    window = load_window(build_window(cfg, tmp_path / "cal"))
    values = {"sim.agents.noise.rate_per_step": 0.3, "sim.agents.market_maker.half_spread_ticks": 1.5}
    *_, (bars,) = Simulator(cfg, window).run(values, [11], [100, 200, window.n_steps])
    rcfg = load_config([*cal_overrides(log_root, tmp_path / "cal"), "replay.stages=[book,tape,sim]",
                        "seed=11", f"replay.out={tmp_path / 'replay'}",
                        *(f"{k}={v}" for k, v in values.items())])
    run = run_replay(rcfg, progress=False)
    sim = pl.read_parquet(run / "sim.parquet")
    np.testing.assert_array_equal(bars.price, sim["mid"].to_numpy())
    np.testing.assert_array_equal(bars.spread, sim["spread"].to_numpy())
    trades = pl.read_parquet(run / "sim_trades.parquet")
    vol = np.bincount(trades["step"].to_numpy(), trades["size"].to_numpy(), minlength=len(sim))
    np.testing.assert_allclose(bars.volume, vol, rtol=0, atol=1e-12)
    assert np.isfinite(bars.price).sum() >= 340 and vol.sum() > 0
    # the real bars are the window's book mid, and the window never ran the sim stage
    book = pl.read_parquet(tmp_path / "cal/window/book.parquet")
    assert np.array_equal(window.real.price, np.where(book["valid"], book["mid"], np.nan), equal_nan=True)
    assert not (tmp_path / "cal/window/sim.parquet").exists()


def test_target_weighting_and_distance(log_root, tmp_path):
    cfg = cal_cfg(log_root, tmp_path / "cal")
    real = load_window(build_window(cfg, tmp_path / "cal")).real

    def target(seed=1, **kw):
        args = {"draws": 60, "block_steps": 30, "shrinkage": 0.1, "nan_penalty": 10.0} | kw
        return make_target(real, None, [0.5], seed=np.random.SeedSequence(seed), **args)

    t = target()
    # Hill and the 10-step kurtosis ratio need far more returns than 347 steps: dropped, with why
    assert "hill_tail_index" in t.dropped and "kurtosis_ratio_10" in t.dropped
    assert set(t.names) <= set(ALL_MOMENTS) and "std" in t.names and "volume_abs_r_corr" in t.names
    w = t.weight
    assert np.allclose(w, w.T) and np.linalg.eigvalsh(w).min() > 0
    assert t.distance(t.real) == 0.0
    far = t.real + 2 * t.sd
    assert t.distance(far) > t.distance(t.real + t.sd) > 0
    nan_one = t.real.copy()
    nan_one[0] = np.nan
    e = np.zeros(len(t.names))
    e[0] = 10.0
    assert math.isclose(t.distance(nan_one), e @ w @ e)
    assert t.steps == (174, 347) and len(t.checkpoints) == 2
    np.testing.assert_array_equal(t.checkpoints[0], moment_values(real.head(174), t.names))
    assert t.sha256() == target().sha256() != target(seed=2).sha256()
    # more shrinkage pulls W towards the identity
    eye = np.eye(len(t.names))
    assert np.abs(target(shrinkage=0.9).weight - eye).max() < np.abs(w - eye).max()
    with pytest.raises(ValueError, match="calibrate.moments: unknown moment 'vol'"):
        check_names(["std", "vol"])
    with pytest.raises(ValueError, match="calibrate.bootstrap.block_steps=1"):
        target(block_steps=1)


@pytest.mark.parametrize("params, message", [
    ("{sim.agents.noise.rate: {low: 0.1, high: 1}}", "calibrate.params.sim.agents.noise.rate: no numeric"),
    ("{replay.step: {low: 0.1, high: 1}}", "only sim.agents"),
    ("{sim.agents.noise.rate_per_step: {low: 1, high: 0.1}}", "low=1.0 must be < high=0.1"),
    ("{sim.agents.noise.rate_per_step: {low: 0, high: 1, log: true}}", "log scale needs low > 0"),
    ("{sim.agents.noise.rate_per_step: {lo: 0, high: 1}}", "expected {low, high"),
])
def test_bad_parameter_ranges_are_named(log_root, tmp_path, params, message):
    cfg = cal_cfg(log_root, tmp_path, "~calibrate.params", f"+calibrate.params={params}")
    with pytest.raises(ValueError, match=message.replace("{", r"\{").replace(".", r"\.")):
        ParamSpace.from_config(cfg)


def test_settings_samplers_and_storage_urls(log_root, tmp_path, monkeypatch):
    cfg = cal_cfg(log_root, tmp_path)
    space = ParamSpace.from_config(cfg)
    counts = ParamSpace.from_config(cal_cfg(log_root, tmp_path, "~calibrate.params", "+calibrate.params="
                                            "{sim.agents.noise.count: {low: 10, high: 50}}"))
    # null leaves a default parameter out
    fewer = ParamSpace.from_config(cal_cfg(log_root, tmp_path, "calibrate.params="
                                           "{sim.agents.noise.rate_per_step: null}"))
    assert [p.name for p in fewer.params] == ["sim.agents.market_maker.half_spread_ticks"]
    assert counts.params[0].integer and not space.params[0].integer and space.params[0].log
    with pytest.raises(ValueError, match="calibrate.sampler='grid'"):
        make_sampler("grid", 0)
    with pytest.raises(ValueError, match="calibrate.workers=0"):
        Settings.from_config(cal_cfg(log_root, tmp_path, "calibrate.workers=0"))
    # every sampler drives a study; CMA-ES and TPE find the minimum of a bowl
    for name in ("tpe", "cmaes", "qmc"):
        study = optuna.create_study(sampler=make_sampler(name, 3, n_startup_trials=5))
        study.optimize(lambda t: (t.suggest_float("x", -4, 4) - 1) ** 2, n_trials=40)
        assert study.best_value < (0.5 if name == "qmc" else 0.05), name
    assert quotas(7, 3) == [3, 2, 2] and quotas(-1, 2) == [0, 0]
    secret = "postgresql+psycopg://calib:s3cret@db.example:5432/optuna"
    assert storage_url(secret, tmp_path) == secret and "s3cret" not in redacted(secret)
    monkeypatch.setenv(ENV_STORAGE, "sqlite:///elsewhere.db")
    assert storage_url(secret, tmp_path) == "sqlite:///elsewhere.db"
    monkeypatch.delenv(ENV_STORAGE)
    assert storage_url(None, tmp_path) == f"sqlite:///{tmp_path.resolve() / 'study.db'}"
    with pytest.raises(ValueError, match="calibrate.storage: not a database URL") as e:
        storage_url("::nope:s3cret", tmp_path)
    assert "s3cret" not in str(e.value)


def test_partial_simulations_report_and_prune(log_root, tmp_path):
    cfg = cal_cfg(log_root, tmp_path, "calibrate.pruning.fractions=[0.25,0.5]")
    objective, _ = objective_for(cfg, tmp_path)
    assert objective.target.steps == (87, 174, 347)
    kept = optuna.create_study(pruner=optuna.pruners.NopPruner())
    kept.optimize(objective, n_trials=1)
    t = kept.trials[0]
    assert t.state.name == "COMPLETE" and sorted(t.intermediate_values) == [0, 1]
    assert t.value == objective.evaluate(t.params)[0]
    cut = optuna.create_study(pruner=optuna.pruners.ThresholdPruner(upper=-1.0))
    cut.enqueue_trial(t.params)
    cut.optimize(objective, n_trials=1)
    assert cut.trials[0].state.name == "PRUNED" and list(cut.trials[0].intermediate_values) == [0]
    assert cut.trials[0].intermediate_values[0] == t.intermediate_values[0]


def _finished(db: Path) -> list[tuple]:
    """(number, state, value) of every trial in an Optuna SQLite file (none while it is created)."""
    try:
        with sqlite3.connect(db) as con:
            return con.execute("SELECT t.number, t.state, v.value FROM trials t LEFT JOIN trial_values v "
                               "ON v.trial_id = t.trial_id ORDER BY t.number").fetchall()
    except sqlite3.OperationalError:
        return []


def test_sqlite_study_resumes_after_kill(log_root, tmp_path):
    out = tmp_path / "cal"
    overrides = cal_overrides(log_root, out, "calibrate.n_trials=200")
    script = textwrap.dedent(f"""
        from smabm.config import load_config
        from calibrate.optuna_study import run_calibration
        run_calibration(load_config({overrides!r}))
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    db = out / "study.db"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            time.sleep(0.2)
            if db.exists() and sum(s == "COMPLETE" for _, s, _ in _finished(db)) >= 3:
                break
        else:
            pytest.fail("the calibration did not complete 3 trials in time")
    finally:
        proc.kill()
        proc.wait()
    before = [r for r in _finished(db) if r[1] == "COMPLETE"]
    assert 3 <= len(before) < 200
    n = len([r for r in _finished(db) if r[1] in ("COMPLETE", "PRUNED")]) + 4
    cfg = load_config(cal_overrides(log_root, out, f"calibrate.n_trials={n}"))
    run_calibration(cfg)
    after = _finished(db)
    assert sum(s in ("COMPLETE", "PRUNED") for _, s, _ in after) == n
    assert [r for r in after if r[1] == "COMPLETE"][:len(before)] == before   # nothing lost or redone
    assert (out / "best_sim.yaml").is_file()


def test_two_workers_share_a_postgres_study(log_root, tmp_path, monkeypatch, caplog):
    out = tmp_path / "cal"
    with postgres_server() as url:
        dsn = url.replace("postgres@", "postgres:s3cret@")   # trust auth: the password is unused
        monkeypatch.setenv(ENV_STORAGE, dsn)
        cfg = cal_cfg(log_root, out, "calibrate.workers=2", "calibrate.n_trials=8",
                      "calibrate.sampler=qmc", "calibrate.pruning.enabled=false")
        with caplog.at_level("INFO", logger="smabm.calibrate"):
            run_calibration(cfg)
        study = optuna.load_study(study_name=study_name(cfg), storage=dsn)
        trials = study.get_trials()
        assert len(trials) == 8 and all(t.state.name == "COMPLETE" for t in trials)
        assert {t.user_attrs["worker"] for t in trials} == {0, 1}
        # the stored study reproduces: its best trial's value from its stored parameters
        objective, _ = objective_for(cfg, out)
        assert objective.evaluate(study.best_params)[0] == study.best_value
    assert not (out / "study.db").exists()
    summary = (out / "reevaluation.json").read_text()
    assert "s3cret" not in summary and "s3cret" not in caplog.text
    assert orjson.loads(summary)["trials"]["complete"] == 8


def test_calibration_is_deterministic_and_its_winner_replays(log_root, tmp_path):
    runs = [run_calibration(cal_cfg(log_root, tmp_path / name, "calibrate.n_trials=8",
                                    "calibrate.sampler=tpe", f"calibrate.report={name == 'a'}"))
            for name in ("a", "b")]
    best = [yaml.safe_load((r / "best_sim.yaml").read_text()) for r in runs]
    assert best[0] == best[1]
    rows = [orjson.loads((r / "reevaluation.json").read_bytes()) for r in runs]
    assert rows[0]["reevaluated"] == rows[1]["reevaluated"]
    assert rows[0]["winner"]["distance_fresh"] == best[0]["distance_fresh"]
    over = overrides_from_file(runs[0] / "best_sim.yaml")
    assert sorted(o.split("=")[0] for o in over) == ["sim.agents.market_maker.half_spread_ticks",
                                                     "sim.agents.noise.rate_per_step"]
    hashes = []
    for k in range(2):
        cfg = load_config([f"log.root={log_root}", "replay.stages=[book,tape,sim]", *SMALL, *over,
                           f"replay.out={tmp_path / f'replay{k}'}"])
        assert cfg.sim.agents.noise.rate_per_step == best[0]["sim"]["agents"]["noise"]["rate_per_step"]
        m = orjson.loads((run_replay(cfg, progress=False) / "manifest.json").read_bytes())
        hashes.append(m["outputs"])
    assert hashes[0] == hashes[1]
    # the winner's own replay (same window and sim) and its report: real vs calibrated simulation
    assert orjson.loads((runs[0] / "best_replay/manifest.json").read_bytes())["outputs"]["sim"] == \
        hashes[0]["sim"]
    report = orjson.loads((runs[0] / "best_replay/report/report.json").read_bytes())
    assert report["simulated"]["facts"] and report["comparison"]
    assert not (runs[1] / "best_replay").exists()
