"""Sustained ingest of the live recorder: local exchange at full send rate -> Parquet | Kafka.

Baseline (measured in the same run): the peak BTCUSDT message rate (frames per 1 s of receive
time, all streams of the connection) in the shared hftbacktest recordings. The local exchange
runs in its own process and sends the real spot BTCUSDT recordings (2024-08-08 + 08-09, ~100k
frames) as fast as the recorder reads them; the recorder runs `Daemon` with the Parquet
backend (fsync=batch) and with the Kafka backend (tansu, acks=all). Figures: messages/s
acknowledged (durable), the ratio to the peak, drops, and end-to-end lag (receipt -> durable
ack of the batch holding it). One JSON line per figure.

    .venv/bin/python bench/record.py [--shared /work/shared/data/hftbacktest_examples]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from harness.exchange import LocalExchange  # noqa: E402
from harness.tansu import Tansu  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from recorder.daemon import Daemon  # noqa: E402


def emit(**kv) -> None:
    print(orjson.dumps(kv).decode(), flush=True)


def peak_rate(path: Path) -> tuple[int, int]:
    """(peak frames in one second of receive time, frames) of one recording file."""
    counts: dict[int, int] = {}
    n = 0
    with gzip.open(path, "rb") as f:
        for line in f:
            ts, _, body = line.partition(b" ")
            if not body.startswith(b'{"stream"'):
                continue
            t = int(ts)
            sec = t // 1_000_000_000 if t > 10**17 else t // 1_000_000  # ns (2024) or µs (2023)
            counts[sec] = counts.get(sec, 0) + 1
            n += 1
    return max(counts.values()), n


def _exchange(files: list[str], q) -> None:
    ex = LocalExchange(files, speed=None, wire_batch=512).start()
    q.put((ex.ws_url, ex.rest_url("spot"), len(ex.recording.frames)))
    ex.done.wait()
    time.sleep(600)


def run(backend: str, files: list[str], root: Path, broker: str | None) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    proc = ctx.Process(target=_exchange, args=(files, q), daemon=True)
    proc.start()
    ws, rest, frames = q.get(timeout=120)
    cfg = {"log": {"root": str(root), "fsync": "batch"},
           "record": {"backend": backend, "queue_size": 2_000_000, "binance": {
               "enabled": True, "markets": ["spot"], "symbols": ["btcusdt"],
               "streams": ["depth@100ms", "trade", "bookTicker"],
               "urls": {"spot": {"ws": ws, "rest": rest}}}}}
    if broker:
        cfg["record"]["kafka"] = {"brokers": broker, "create_topics": True, "linger_ms": 20}

    async def main() -> dict:
        d = Daemon(OmegaConf.create(cfg))
        task = asyncio.create_task(d.run())
        ing = d.ingest
        while ing.received == 0:
            await asyncio.sleep(0.01)
        t0 = time.perf_counter()
        # frames + markers (connect per stream and snapshot stream) + the snapshot
        while sum(st.written for (_, s), st in ing.streams.items()
                  if not s.endswith("@snapshot")) - 3 < frames:
            await asyncio.sleep(0.01)
            if time.perf_counter() - t0 > 300:
                break
        dt = time.perf_counter() - t0
        out = {"frames": frames, "seconds": dt, "dropped": ing.dropped,
               "max_ack_lag_ms": ing.max_ack_lag_ns / 1e6, "batches": ing.batches}
        d.stop()
        await task
        return out

    try:
        return asyncio.run(main())
    finally:
        proc.terminate()
        proc.join(10)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default="/work/shared/data/hftbacktest_examples")
    a = ap.parse_args()
    shared = Path(a.shared)
    peaks = {}
    for p in sorted(shared.glob("*btcusdt*")):
        pk, n = peak_rate(p)
        peaks[p.name] = pk
        emit(figure="btcusdt_peak_msgs_per_s", file=p.name, value=pk, frames=n)
    peak = max(peaks.values())
    emit(figure="btcusdt_peak_msgs_per_s_max", value=peak, file=max(peaks, key=peaks.get))
    files = [str(shared / "spot_btcusdt_20240808.gz"), str(shared / "spot_btcusdt_20240809.gz")]
    with tempfile.TemporaryDirectory() as tmp:
        r = run("parquet", files, Path(tmp) / "parquet", None)
        rate = r["frames"] / r["seconds"]
        emit(figure="record_parquet_msgs_per_s", value=round(rate), ratio_to_peak=round(rate / peak, 1),
             dropped=r["dropped"], max_ack_lag_ms=round(r["max_ack_lag_ms"], 1),
             frames=r["frames"], batches=r["batches"], fsync="batch")
        with Tansu() as broker:
            r = run("kafka", files, Path(tmp) / "kafka", broker.address)
        rate = r["frames"] / r["seconds"]
        emit(figure="record_kafka_msgs_per_s", value=round(rate), ratio_to_peak=round(rate / peak, 1),
             dropped=r["dropped"], max_ack_lag_ms=round(r["max_ack_lag_ms"], 1),
             frames=r["frames"], batches=r["batches"], acks="all", broker="tansu")


if __name__ == "__main__":
    main()
