"""Importer throughput on the real samples, as a ratio to a baseline measured in the same run.

Baseline ("floor"): decompress the file and orjson.loads every line's JSON (the least work any
validating importer must do), without building or writing anything. Figure: full import (parse,
build Arrow tables, markers, staged zstd Parquet commit) lines per second, and its ratio to the floor.
Prints one JSON line per figure.
"""
from __future__ import annotations

import gzip
import sys
import tempfile
import time
from pathlib import Path

import orjson

from recorder.importers import import_files

FILES = [Path(p) for p in sys.argv[1:]] or [Path("tests/data/binance/spot_btcusdt_20240808.gz")]


def floor(path: Path) -> tuple[int, float]:
    t = time.perf_counter()
    lines = gzip.decompress(path.read_bytes()).splitlines()
    for line in lines:
        orjson.loads(line[line.index(b" ") + 1:])
    return len(lines), time.perf_counter() - t


def full(path: Path) -> float:
    with tempfile.TemporaryDirectory() as root:
        t = time.perf_counter()
        import_files(root, "hftbacktest", [path], progress=False)
        return time.perf_counter() - t


for path in FILES:
    n, base = min((floor(path) for _ in range(5)), key=lambda x: x[1])
    imp = min(full(path) for _ in range(5))
    print(orjson.dumps({"figure": "hftbacktest_import_lines_per_s", "file": path.name, "lines": n,
                        "lines_per_s": round(n / imp), "floor_lines_per_s": round(n / base),
                        "ratio_to_floor": round(base / imp, 3)}).decode())
