"""The whole chain on the bundled real samples: book, tape, sentiment, regimes, sim."""

from __future__ import annotations

from pathlib import Path

import orjson
import polars as pl
import pytest

from recorder.importers import import_files
from replay.pipeline import run_replay, verify_run
from smabm.config import load_config

REPO = Path(__file__).resolve().parents[1]
BINANCE = REPO / "tests/data/binance/spot_btcusdt_20240808.gz"
REDDIT = REPO / "examples/reddit/crypto_comments_20251010_22h_utc+1.csv.gz"


@pytest.fixture(scope="module")
def demo_log(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("demo") / "log"
    import_files(root, "hftbacktest", [BINANCE], progress=False)
    import_files(root, "reddit", [REDDIT], tz="+01:00", progress=False)
    return root


def demo_cfg(root: Path, out: Path, *extra: str):
    base = load_config([])
    return load_config([f"log.root={root}", *base.demo.overrides, "models/sentiment=lexicon",
                        f"models.sentiment.cache={out.parent / 'cache.parquet'}", f"replay.out={out}",
                        *extra])


def outputs(run: Path) -> dict:
    return orjson.loads((run / "manifest.json").read_bytes())["outputs"]


def test_whole_chain_is_deterministic_and_chunk_invariant(demo_log, tmp_path):
    a = run_replay(demo_cfg(demo_log, tmp_path / "a"), progress=False)
    b = run_replay(demo_cfg(demo_log, tmp_path / "b", "replay.chunk_steps=13"), progress=False)
    assert outputs(a) == outputs(b)
    assert {"book", "tape", "sentiment", "regimes", "sim", "sim_trades", "sim_agents"} <= set(outputs(a))
    # re-running from the manifest alone reproduces every table (config key order included)
    assert verify_run(a, progress=False)["identical"]
    book = pl.read_parquet(a / "book.parquet")
    assert book.height == 347 and book["valid"].sum() >= 340
    sim = pl.read_parquet(a / "sim.parquet")
    started = sim.filter(pl.col("mid").is_not_nan())
    assert started.height >= 340 and (started["best_ask"] > started["best_bid"]).all()


def test_other_seed_changes_only_the_simulation(demo_log, tmp_path):
    a = outputs(run_replay(demo_cfg(demo_log, tmp_path / "a"), progress=False))
    b = outputs(run_replay(demo_cfg(demo_log, tmp_path / "b", "seed=7"), progress=False))
    for name in ("book", "tape", "sentiment", "regimes"):
        assert a[name] == b[name]
    assert a["sim_trades"] != b["sim_trades"]


def test_alignment_brings_the_reddit_hour_into_the_window(demo_log, tmp_path):
    run = run_replay(demo_cfg(demo_log, tmp_path / "a"), progress=False)
    texts = pl.read_parquet(run / "sentiment_texts.parquet")
    manifest = orjson.loads((run / "manifest.json").read_bytes())
    w = manifest["window"]
    # comments created 21:24:00-21:29:47 UTC on 2025-10-10 land inside the Binance window
    assert texts.height >= 20
    assert (texts["recv_ts_ns"] >= w["start_ns"]).all() and (texts["recv_ts_ns"] < w["end_ns"]).all()
    assert manifest["config"]["replay"]["align"][0]["from_time"] == "2025-10-10T21:24:00Z"
    steps = pl.read_parquet(run / "sentiment.parquet")
    assert steps["n_texts"].sum() == texts.height


def test_book_stage_is_valid_from_the_snapshot_on(demo_log, tmp_path):
    run = run_replay(demo_cfg(demo_log, tmp_path / "a", "replay.stages=[book]",
                              "replay.window.start=2024-08-08T23:56:00Z"), progress=False)
    book = pl.read_parquet(run / "book.parquet")
    # the window starts two minutes after the snapshot: the warm-up makes step 0 valid
    assert book["valid"][0] and (book["ask_px"] > book["bid_px"]).all()


def test_backtest_mode_trades_against_the_real_book(demo_log, tmp_path):
    backtest = ("replay.stages=[book,tape,sim]", "sim.mode=backtest")
    run = run_replay(demo_cfg(demo_log, tmp_path / "bt", *backtest), progress=False)
    sim = pl.read_parquet(run / "sim.parquet").filter(pl.col("mid").is_not_nan())
    book = pl.read_parquet(run / "book.parquet")
    # the venue is the real book (on the simulation's 1-dollar tick): mids agree within a tick
    joined = sim.join(book.select("step", pl.col("mid").alias("real_mid")), on="step")
    assert (joined["mid"] - joined["real_mid"]).abs().max() <= 1.0
    trades = pl.read_parquet(run / "sim_trades.parquet")
    assert trades.height > 100 and set(trades["maker_type"].unique()) & {"real_market"}
    again = run_replay(demo_cfg(demo_log, tmp_path / "bt2", *backtest), progress=False)
    assert outputs(run) == outputs(again)
