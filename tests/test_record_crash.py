"""kill -9 of a recording daemon: every acknowledged event is in the log exactly once."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import polars as pl
from harness.exchange import LocalExchange
from harness.runs import SPOT_BTC, binance_cfg, read_all
from omegaconf import OmegaConf

from recorder.verify import verify

REPO = Path(__file__).resolve().parent.parent


class _Daemon:
    """`python -m recorder.daemon` in a subprocess; JSON log lines collected as they come."""

    def __init__(self, cfg_path: Path) -> None:
        self.lines: list[dict] = []
        self.proc = subprocess.Popen([sys.executable, "-m", "recorder.daemon", str(cfg_path)],
                                     cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            try:
                self.lines.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                self.lines.append({"raw": line.decode(errors="replace")})

    def acks(self) -> list[dict]:
        return [x for x in self.lines if x.get("event") == "ack"]

    def wait_acks(self, n_written: int, timeout: float) -> None:
        end = time.monotonic() + timeout
        while not (self.acks() and self.acks()[-1]["written"] >= n_written):
            assert self.proc.poll() is None, self.lines[-5:]
            assert time.monotonic() < end, "daemon acknowledged too little"
            time.sleep(0.05)


def test_kill_9_loses_and_duplicates_no_acknowledged_event(tmp_path):
    root = tmp_path / "log"
    with LocalExchange([SPOT_BTC], speed=8.0, line_limit=8_000) as ex:
        cfg = binance_cfg(root, ex)
        cfg["record"]["ack_log"] = True
        cfg_path = tmp_path / "record.yaml"
        OmegaConf.save(OmegaConf.create(cfg), cfg_path)

        first = _Daemon(cfg_path)
        first.wait_acks(1500, 60)
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(10)
        first._t.join(5)
        acked = first.acks()[-1]["streams"]

        second = _Daemon(cfg_path)
        second.wait_acks(500, 60)
        second.proc.send_signal(signal.SIGTERM)
        assert second.proc.wait(30) == 0
        second._t.join(5)

    df = pl.from_arrow(read_all(root))
    # the first daemon's connection is the earliest connect marker
    first_conn = df.filter(pl.col("kind") == "connect").sort("recv_ts_ns")["conn"][0]
    mine = df.filter(pl.col("conn") == first_conn)
    for key, n in acked.items():
        source, stream = key.split(":", 1)
        held = mine.filter((pl.col("source") == source) & (pl.col("stream") == stream)).height
        assert held >= n, (key, held, n)
    msgs = df.filter(pl.col("kind") == "message")
    assert msgs.height == msgs.unique(["stream", "payload"]).height  # exactly once
    assert df.filter(pl.col("kind") == "connect")["conn"].n_unique() == 2
    report = verify(root)
    assert not report["problems"]
    assert not [g for g in report["gaps"] if g["type"] == "seq"]
    assert not report["gaps"] or all(g["recv_ts_ns"] > mine["recv_ts_ns"].max()
                                     for g in report["gaps"] if "recv_ts_ns" in g)
