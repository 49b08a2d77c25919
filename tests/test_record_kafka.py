"""Kafka path end to end: recorder -> tansu -> faust archiver -> Parquet, with an archiver crash."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import polars as pl
import pyarrow as pa
from harness.exchange import LocalExchange
from harness.runs import SPOT_BTC, binance_cfg, read_all, wait_for
from harness.tansu import Tansu
from omegaconf import OmegaConf

from recorder.daemon import Daemon
from recorder.kafka import tail
from recorder.verify import verify

REPO = Path(__file__).resolve().parent.parent
TOPIC = "raw.binance.spot"


def _archiver(broker: str, root: Path, app_id: str, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "recorder.kafka.archiver", "--brokers", broker, "--topics", TOPIC,
         "--root", str(root), "--writer-id", "archiver-0", "--app-id", app_id,
         "--within-s", "0.2", "--session-timeout-s", "6"],
        cwd=REPO, stdout=log.open("ab"), stderr=subprocess.STDOUT)


def _rows(root: Path) -> int:
    try:
        return read_all(root).num_rows
    except FileNotFoundError:
        return 0


def _wait_rows(root: Path, n: int, proc: subprocess.Popen, timeout: float) -> None:
    end = time.monotonic() + timeout
    while _rows(root) < n:
        assert proc.poll() is None, "archiver exited"
        assert time.monotonic() < end, f"archiver wrote {_rows(root)} of {n} rows"
        time.sleep(0.3)


def test_kafka_path_matches_direct_recording_and_survives_archiver_kill(tmp_path):
    direct, archived = tmp_path / "direct", tmp_path / "archived"
    app_id = f"test-archiver-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "archiver.log"
    with Tansu() as broker, LocalExchange([SPOT_BTC], speed=6.0, line_limit=7_000,
                                          min_clients=2) as ex:
        broker.create_topic(TOPIC, partitions=2)
        arch = _archiver(broker.address, archived, app_id, log)
        kcfg = binance_cfg(tmp_path / "kafka-status", ex, backend="kafka")
        kcfg["record"]["kafka"] = {"brokers": broker.address, "create_topics": False}

        async def both():
            d1 = Daemon(OmegaConf.create(binance_cfg(direct, ex)))
            d2 = Daemon(OmegaConf.create(kcfg))
            tasks = [asyncio.create_task(d1.run()), asyncio.create_task(d2.run())]
            await wait_for(lambda: d2.ingest.written > 500, 30)
            await asyncio.to_thread(_wait_rows, archived, 300, arch, 90)
            arch.send_signal(signal.SIGKILL)   # the archiver dies mid-stream
            arch.wait(10)
            await wait_for(ex.done.is_set, 90)
            await asyncio.sleep(0.5)
            d1.stop()
            d2.stop()
            return await asyncio.gather(*tasks), d2.ingest.written

        (rc1, rc2), in_kafka = asyncio.run(both())
        assert rc1 == 0 and rc2 == 0
        arch = _archiver(broker.address, archived, app_id, log)   # same group: resumes
        _wait_rows(archived, in_kafka, arch, 120)
        time.sleep(2.0)   # anything re-delivered after the restart would show up as extra rows
        arch.send_signal(signal.SIGTERM)
        arch.wait(60)

        tailed = pa.concat_tables(tail(broker.address, [TOPIC], 0, idle_timeout_s=2.0))
        mid = int(pl.from_arrow(tailed)["recv_ts_ns"].median())
        tailed_mid = pa.concat_tables(tail(broker.address, [TOPIC], mid, idle_timeout_s=2.0))

    a = pl.from_arrow(read_all(archived))
    d = pl.from_arrow(read_all(direct))
    assert a.height == in_kafka                                  # nothing lost ...
    assert a.unique(["source", "stream", "seq"]).height == a.height   # ... nothing twice
    assert a.unique(["stream", "conn", "kind", "payload"]).height == a.height

    def messages(df):
        return df.filter(pl.col("kind") == "message").select("stream", "payload").sort(
            "stream", "payload")

    assert messages(a).equals(messages(d))    # same events as the direct Parquet recording
    assert (a.group_by("kind").len().sort("kind").equals(d.group_by("kind").len().sort("kind")))
    rep = verify(archived)
    assert not rep["problems"] and not [g for g in rep["gaps"] if g["type"] == "seq"]

    # live tail from Kafka: the same rows, and a start time cuts exactly
    assert tailed.num_rows == in_kafka
    t = pl.from_arrow(tailed_mid)
    assert t.height == a.filter(pl.col("recv_ts_ns") >= mid).height
    assert t["recv_ts_ns"].min() >= mid


def _messages(seqs, stream=b"btcusdt@trade"):
    from recorder.kafka.producer import headers_of
    return [(stream, b'{"i":%d}' % q, headers_of("binance.spot", 1_000 + q, None, q, "c0", "message"))
            for q in seqs]


def test_archive_workers_never_log_a_row_twice(tmp_path, monkeypatch):
    """Re-delivered rows are skipped whether the first copy sits in another worker's open journal
    or in a segment it sealed, even one sealed while the new owner looks; a rebalance hands the
    stream from worker a to b and then c."""
    from recorder.kafka import archiver

    a = archiver.Archive(tmp_path, "archiver-a", segment_max_age_s=None)
    assert a.write(_messages(range(10))) == 10
    b = archiver.Archive(tmp_path, "archiver-b", segment_max_age_s=None)   # a's rows in a's journal
    assert b.write(_messages(range(15))) == 5 and b.skipped == 10
    assert a.write(_messages(range(15, 20))) == 5
    read_open_journals = archiver.read_open_journals

    def sealed_meanwhile(directory):   # a seals while b refreshes, just before b reads the journals
        a.pool.submit(a.writer.seal).result()
        return read_open_journals(directory)
    monkeypatch.setattr(archiver, "read_open_journals", sealed_meanwhile)
    b.refresh()
    monkeypatch.undo()
    assert b.write(_messages(range(21))) == 1
    a.close()                                                       # a's journal sealed and gone
    b.close()
    c = archiver.Archive(tmp_path, "archiver-c", segment_max_age_s=None)   # all from the index
    assert c.write(_messages(range(25))) == 4
    c.close()
    assert read_all(tmp_path)["seq"].to_pylist() == list(range(25))
