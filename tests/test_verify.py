"""`smabm log verify` and `log info` on real recordings: clean logs pass, cut gaps are found."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import orjson

from recorder.importers import import_files
from recorder.index import LogIndex
from recorder.verify import info, verify

DATA = Path(__file__).parent / "data" / "binance"
SPOT = DATA / "spot_btcusdt_20240808.gz"
USDM = DATA / "usdm_btcusdt_20240808_head3000.gz"


def smabm(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "smabm", *args], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": os.getcwd()})


def test_real_spot_and_usdm_recordings_have_no_gaps(tmp_path):
    import_files(tmp_path, "hftbacktest", [SPOT, USDM], progress=False)
    res = verify(tmp_path)
    assert res["ok"] and res["gaps"] == [] and res["problems"] == []
    assert res["events"] == 41_249 + 3_000 + 8  # lines + one connect marker per stream
    r = smabm("log", "verify", f"log.root={tmp_path}", "--json")
    assert r.returncode == 0 and orjson.loads(r.stdout)["ok"]
    streams = {(s["source"], s["stream"]): s["events"] for s in info(tmp_path)["streams"]}
    assert streams[("binance.spot", "btcusdt@depth@100ms")] == 3_451 + 1
    assert streams[("binance.usdm", "btcusdt@snapshot")] == 2


def _cut(src: Path, dst: Path, stream: str, nth: int) -> dict:
    """Copy a recording without the nth message of `stream`; return that message's data."""
    lines = gzip.decompress(src.read_bytes()).splitlines(keepends=True)
    seen = 0
    for i, ln in enumerate(lines):
        if f'"stream":"{stream}"'.encode() in ln:
            seen += 1
            if seen == nth:
                dropped = orjson.loads(ln.split(b" ", 1)[1])["data"]
                dst.write_bytes(gzip.compress(b"".join(lines[:i] + lines[i + 1:])))
                return dropped
    raise AssertionError("not enough messages")


def test_a_cut_depth_update_is_reported_with_time_and_size(tmp_path):
    dropped = _cut(SPOT, tmp_path / "cut.gz", "btcusdt@depth@100ms", 500)
    import_files(tmp_path / "log", "hftbacktest", [tmp_path / "cut.gz"], progress=False)
    res = verify(tmp_path / "log")
    assert not res["ok"]
    [gap] = res["gaps"]
    assert gap["type"] == "update_id" and gap["stream"] == "btcusdt@depth@100ms"
    assert gap["size"] == dropped["u"] - dropped["U"] + 1
    assert gap["first_id"] == dropped["u"] + 1 and gap["time"].startswith("2024-08-08T23:")
    r = smabm("log", "verify", f"log.root={tmp_path / 'log'}")
    assert r.returncode == 1 and "update_id" in r.stdout


def test_a_cut_futures_update_and_trade_are_reported(tmp_path):
    _cut(USDM, tmp_path / "a.gz", "btcusdt@depth@0ms", 50)
    _cut(tmp_path / "a.gz", tmp_path / "b.gz", "btcusdt@trade", 100)
    import_files(tmp_path / "log", "hftbacktest", [tmp_path / "b.gz"], progress=False)
    kinds = sorted(g["type"] for g in verify(tmp_path / "log")["gaps"])
    assert kinds == ["trade_id", "update_id"]


def test_tampered_and_unindexed_segments_are_problems(tmp_path):
    import_files(tmp_path, "hftbacktest", [USDM], progress=False)
    seg = LogIndex(tmp_path).segments()[0]
    path = tmp_path / seg.path
    (path.parent / "stray.parquet").write_bytes(path.read_bytes())
    path.write_bytes(path.read_bytes()[:-1] + b"\0")
    types = sorted(p["type"] for p in verify(tmp_path)["problems"])
    assert types == ["hash_mismatch", "unindexed_segment"]


def test_info_on_a_missing_log_is_a_one_line_error(tmp_path):
    r = smabm("log", "info", f"log.root={tmp_path / 'nothing'}")
    assert r.returncode == 1 and r.stderr.strip().count("\n") == 0 and "no log here" in r.stderr
    assert not (tmp_path / "nothing").exists()
