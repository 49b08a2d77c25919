"""Raw Binance JSON -> normalised depth + trade rows per second, against same-run baselines.

    .venv/bin/python bench/import.py [DATA_DIR] [--repeat 3]

DATA_DIR holds hftbacktest-format recordings (`<local_ts> <frame json>` per line, gzip; one
line is the REST snapshot), default ../shared/data/hftbacktest_examples. Each file becomes a
raw event table in memory (not timed), then the timed part is `parse_events(raw, ["depth",
"trades"])` (compiled scanner; then again with `scan=False`, polars' JSON decoder only).
The headline runs polars on one thread (POLARS_MAX_THREADS=1, set in a child process before
polars loads); a 2-thread figure follows. CPU time is printed beside wall time: on a shared
machine another process's load stretches wall time, not this process's CPU time.
Baselines in the same run, same files:
  (1) a per-line `json.loads` Python row builder emitting the same depth and trade rows;
  (2) hftbacktest's `hftbacktest.data.utils.binancefutures.convert` on the USD-M files
      (it reads the gzip file itself, so the ratio is also given against our file-to-rows
      time: gzip + line split + raw table + parse).
Prints one JSON line per figure; ratios are ours / baseline (higher is better for us).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "hftbacktest_examples"
MARKETS = {"spot": "binance.spot", "usdm": "binance.usdm", "coinm": "binance.coinm"}


def emit(**fields) -> None:
    print(json.dumps({"bench": "normalize.import", **fields}), flush=True)


def recordings(data_dir: Path) -> list[Path]:
    files = sorted(p for p in data_dir.glob("*.gz") if p.name.split("_")[0] in MARKETS)
    if not files:
        raise SystemExit(f"bench/import.py: no <market>_<symbol>_<date>.gz files in {data_dir}")
    return files


def raw_table(path: Path, content: bytes | None = None):
    """The file as the log would hold it: one raw event per line, payload verbatim."""
    import polars as pl

    from recorder.events import events_table

    market, symbol = path.name.split("_")[:2]
    content = gzip.decompress(path.read_bytes()) if content is None else content
    lines = pl.Series("line", content.splitlines(), dtype=pl.Binary).cast(pl.String)
    df = pl.DataFrame(lines).select(
        parts=pl.col("line").str.splitn(" ", 2)).unnest("parts")
    ts = df["field_0"].cast(pl.Int64)
    if ts.len() and len(df["field_0"][0]) <= 16:  # 2023 files log µs
        ts = ts * 1000
    payload = df["field_1"]
    stream = payload.str.extract(r'^\{"stream":"([^"]+)"')
    is_snap = stream.is_null()
    stream = stream.fill_null(f"{symbol}@snapshot")
    kind = pl.Series(["message", "snapshot"]).gather(is_snap.cast(pl.UInt32))
    return events_table(source=MARKETS[market], stream=stream.to_arrow(), recv_ts_ns=ts.to_arrow(),
                        payload=payload.cast(pl.Binary).to_arrow(), kind=kind.to_arrow(),
                        seq=pl.int_range(len(ts), eager=True).to_arrow(), conn="file:bench")


def best_of(fn, repeat: int) -> tuple[float, float, object]:
    """Best wall and best CPU seconds of `repeat` calls after one untimed warm-up call.

    CPU time is the honest one-core figure on a shared machine: another process's load
    stretches wall time, not this process's CPU time (1 thread: CPU ~= wall when idle).
    """
    out = fn()
    wall, cpu = float("inf"), float("inf")
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        wall = min(wall, time.perf_counter() - w0)
        cpu = min(cpu, time.process_time() - c0)
    return wall, cpu, out


def worker(files: list[Path], repeat: int) -> None:
    """Runs in a child with POLARS_MAX_THREADS set: our parse, per file and in total."""
    from recorder.normalize import parse_events

    threads = int(os.environ["POLARS_MAX_THREADS"])
    rows_all, wall_all, cpu_all = 0, 0.0, 0.0
    for f in files:
        raw = raw_table(f)
        wall, cpu, parsed = best_of(lambda raw=raw: parse_events(raw, ["depth", "trades"]),
                                    repeat)
        rows = parsed.tables["depth"].height + parsed.tables["trades"].height
        rows_all, wall_all, cpu_all = rows_all + rows, wall_all + wall, cpu_all + cpu
        e2e_wall, e2e_cpu, _ = best_of(
            lambda f=f: parse_events(raw_table(f), ["depth", "trades"]), repeat)
        emit(figure="ours_file", file=f.name, threads=threads, rows=rows, lines=raw.num_rows,
             wall_s=round(wall, 4), cpu_s=round(cpu, 4), rows_per_s_wall=round(rows / wall),
             rows_per_s_cpu=round(rows / cpu), file_to_rows_wall_s=round(e2e_wall, 4),
             file_to_rows_cpu_s=round(e2e_cpu, 4))
    emit(figure="ours_total", threads=threads, rows=rows_all, wall_s=round(wall_all, 4),
         cpu_s=round(cpu_all, 4), rows_per_s_wall=round(rows_all / wall_all),
         rows_per_s_cpu=round(rows_all / cpu_all))
    # the same parse with the compiled scanner off: polars' JSON decoder only (reference path)
    rows_ref, wall_ref, cpu_ref = 0, 0.0, 0.0
    for f in files:
        raw = raw_table(f)
        wall, cpu, parsed = best_of(
            lambda raw=raw: parse_events(raw, ["depth", "trades"], scan=False), repeat)
        rows_ref += parsed.tables["depth"].height + parsed.tables["trades"].height
        wall_ref, cpu_ref = wall_ref + wall, cpu_ref + cpu
    emit(figure="polars_decoder_total", threads=threads, rows=rows_ref,
         wall_s=round(wall_ref, 4), cpu_s=round(cpu_ref, 4),
         rows_per_s_wall=round(rows_ref / wall_ref), rows_per_s_cpu=round(rows_ref / cpu_ref))


def python_rows(path: Path) -> list[tuple]:
    """Baseline 1: the obvious per-line json.loads row builder, same rows as ours."""
    rows: list[tuple] = []
    append = rows.append
    with gzip.open(path, "rb") as fh:
        for line in fh:
            ts, _, payload = line.partition(b" ")
            recv = int(ts)
            msg = json.loads(payload)
            data = msg.get("data", msg)
            stream = msg.get("stream", "")
            if "lastUpdateId" in data:
                lid = data["lastUpdateId"]
                for side, key in ((0, "bids"), (1, "asks")):
                    for px, qty in data[key]:
                        append((recv, data.get("E"), stream, lid, lid, None, side, float(px),
                                float(qty), True))
            elif data.get("e") == "depthUpdate":
                n = 0
                for side, key in ((0, "b"), (1, "a")):
                    for px, qty in data[key]:
                        append((recv, data["E"], stream, data["U"], data["u"], data.get("pu"),
                                side, float(px), float(qty), False))
                        n += 1
                if n == 0:
                    append((recv, data["E"], stream, data["U"], data["u"], data.get("pu"), -1,
                            float("nan"), float("nan"), False))
            elif data.get("e") in ("trade", "aggTrade"):
                tid = data["t"] if data["e"] == "trade" else data["a"]
                append((recv, data["E"], stream, tid, float(data["p"]), float(data["q"]),
                        data["m"], data["T"]))
    return rows


def hftbacktest_convert():
    """Baseline 2 (optional `bench` extra); None with the reason when it cannot be imported."""
    try:
        from hftbacktest.data.utils import binancefutures
    except Exception as exc:  # noqa: BLE001 - any import failure means "not available"
        return None, f"{type(exc).__name__}: {exc}"
    return binancefutures.convert, None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data_dir", nargs="?", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    files = recordings(args.data_dir)
    if args.worker:
        worker(files, args.repeat)
        return

    ours: dict[int, dict] = {}
    per_file: dict[tuple[int, str], dict] = {}
    for threads in (1, 2):
        env = {**os.environ, "POLARS_MAX_THREADS": str(threads), "PYTHONPATH": str(REPO)}
        out = subprocess.run([sys.executable, __file__, str(args.data_dir), "--repeat",
                              str(args.repeat), "--worker"], env=env, check=True,
                             capture_output=True, text=True).stdout
        for line in out.splitlines():
            print(line, flush=True)
            rec = json.loads(line)
            if rec["figure"] == "ours_total":
                ours[threads] = rec
            elif rec["figure"] == "ours_file":
                per_file[(threads, rec["file"])] = rec

    py_rows, py_wall, py_cpu = 0, 0.0, 0.0
    for f in files:
        wall, cpu, rows = best_of(lambda f=f: python_rows(f), max(1, args.repeat - 1))
        py_rows, py_wall, py_cpu = py_rows + len(rows), py_wall + wall, py_cpu + cpu
    emit(figure="baseline_json_loads", rows=py_rows, wall_s=round(py_wall, 4),
         cpu_s=round(py_cpu, 4), rows_per_s_wall=round(py_rows / py_wall),
         rows_per_s_cpu=round(py_rows / py_cpu), note="includes gzip read; per-line json.loads")
    if py_rows != ours[1]["rows"]:
        emit(figure="row_count_mismatch", ours=ours[1]["rows"], baseline=py_rows)
    for threads, rec in sorted(ours.items()):
        emit(figure="ratio_vs_json_loads", threads=threads,
             ratio_wall=round(rec["rows_per_s_wall"] / (py_rows / py_wall), 2),
             ratio_cpu=round(rec["rows_per_s_cpu"] / (py_rows / py_cpu), 2))

    convert, why = hftbacktest_convert()
    if convert is None:
        emit(figure="baseline_hftbacktest_convert", available=False, reason=why)
        return
    for f in [f for f in files if f.name.startswith("usdm_")]:
        with contextlib.redirect_stdout(io.StringIO()):
            wall, cpu, data = best_of(lambda f=f: convert(str(f), buffer_size=5_000_000),
                                      max(1, args.repeat - 1))
        rows = len(data)
        emit(figure="baseline_hftbacktest_convert", file=f.name, rows=rows, wall_s=round(wall, 4),
             cpu_s=round(cpu, 4), rows_per_s_wall=round(rows / wall),
             rows_per_s_cpu=round(rows / cpu),
             note="reads gzip itself; includes its event-order fix; warm (numba compiled)")
        for threads in (1, 2):
            mine = per_file[(threads, f.name)]
            emit(figure="ratio_vs_hftbacktest", file=f.name, threads=threads,
                 parse_ratio_wall=round(mine["rows_per_s_wall"] / (rows / wall), 2),
                 parse_ratio_cpu=round(mine["rows_per_s_cpu"] / (rows / cpu), 2),
                 file_to_rows_ratio_wall=round(
                     (mine["rows"] / mine["file_to_rows_wall_s"]) / (rows / wall), 2),
                 file_to_rows_ratio_cpu=round(
                     (mine["rows"] / mine["file_to_rows_cpu_s"]) / (rows / cpu), 2))


if __name__ == "__main__":
    main()
