"""Running recorders against the local servers: configs, in-process runs, log contents."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pyarrow as pa
from omegaconf import OmegaConf

from recorder.daemon import Daemon
from recorder.events import SCHEMA
from recorder.reader import LogReader

DATA = Path(__file__).resolve().parent.parent / "data"
SPOT_BTC = DATA / "binance" / "spot_btcusdt_20240808.gz"
USDM_BTC = DATA / "binance" / "usdm_btcusdt_20240808_head3000.gz"
REDDIT_POSTS = DATA / "reddit" / "crypto_posts_20251030_213713.csv.gz"
REDDIT_COMMENTS = DATA / "reddit" / "crypto_comments_20251030_213713.csv.gz"


def binance_cfg(root: Path, ex, *, backend: str = "parquet", market: str = "spot",
                streams=("depth@100ms", "trade", "bookTicker"), **binance) -> dict:
    """A `record` + `log` config recording `market` from the local exchange `ex`."""
    return {
        "log": {"root": str(root), "fsync": "batch"},
        "record": {
            "backend": backend, "writer_id": "recorder",
            "status_file": str(root.parent / f"{root.name}-status.json"),
            "status_interval_s": 0.2,
            "binance": {"enabled": True, "markets": [market], "symbols": ["btcusdt"],
                        "streams": list(streams),
                        "urls": {market: {"ws": ex.ws_url, "rest": ex.rest_url(market)}},
                        "backoff_initial_s": 0.05, "backoff_max_s": 0.3, **binance}}}


def run_daemon_with(cfg: dict, script: Callable[[Daemon], Awaitable[None]]) -> tuple[int, Daemon]:
    """Run a daemon in this process while `script(daemon)` drives faults; stop after it."""

    async def main():
        d = Daemon(OmegaConf.create(cfg))
        task = asyncio.create_task(d.run())
        try:
            await script(d)
        finally:
            d.stop()
        return await task, d

    return asyncio.run(main())


async def wait_for(pred: Callable[[], bool], timeout: float, step: float = 0.05) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not pred():
        if loop.time() > end:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(step)


def read_all(root: Path) -> pa.Table:
    batches = list(LogReader(root).read(include_open=True))
    return pa.Table.from_batches(batches, SCHEMA) if batches else SCHEMA.empty_table()
