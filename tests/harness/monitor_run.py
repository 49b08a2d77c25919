"""A small real run for the monitoring tests: the bundled Binance and Reddit samples imported
into a log and replayed (book, tape, lexicon sentiment, regimes, sim) as `smabm demo` does."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from recorder.importers import import_files
from replay.pipeline import run_replay
from smabm.config import load_config

REPO = Path(__file__).resolve().parents[2]
BINANCE = REPO / "tests/data/binance/spot_btcusdt_20240808.gz"
REDDIT = REPO / "examples/reddit/crypto_comments_20251010_22h_utc+1.csv.gz"
MONITOR_YAML = REPO / "conf/monitor/default.yaml"
STAGES = ("book", "tape", "sentiment", "regimes", "sim")


def config(*overrides: str):
    """The composed config plus the `monitor` group (whether or not the root lists it);
    `monitor.*` overrides apply on top of conf/monitor/default.yaml."""
    mine = [o for o in overrides if o.startswith("monitor.")]
    cfg = load_config([o for o in overrides if o not in mine])
    OmegaConf.set_struct(cfg, False)
    return OmegaConf.merge(cfg, {"monitor": OmegaConf.load(MONITOR_YAML)}, OmegaConf.from_dotlist(mine))


def demo_run(base: Path) -> Path:
    """Import the samples under `base` and replay them into `base/runs/replay-demo`."""
    root = base / "log"
    import_files(root, "hftbacktest", [BINANCE], progress=False)
    import_files(root, "reddit", [REDDIT], tz="+01:00", progress=False)
    demo = load_config([]).demo
    cfg = load_config([f"log.root={root}", *demo.overrides, "models/sentiment=lexicon",
                       f"models.sentiment.cache={base / 'cache.parquet'}",
                       f"replay.out={base / 'runs' / 'replay-demo'}"])
    return run_replay(cfg, progress=False)
