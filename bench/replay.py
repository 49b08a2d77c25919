"""Book replay throughput at max speed, against a plain-Python dict book and hftbacktest, same run.

Data: Binance spot BTCUSDT 2024-08-08 + 09 (hftbacktest's example recordings, ../shared/data;
tests/data's 08-08 file alone when the shared copy is missing), imported into a temporary log and
normalised once. The ~11 minutes are repeated K times with shifted timestamps and update ids (each
copy starts with an id gap, so every copy resyncs at its own snapshot, as hftbacktest's copies
start with a clear + snapshot). Events are counted as hftbacktest counts them: depth rows
(snapshot levels included) + trades. The book stage only reads depth; trades are in the count so
the figures compare.

Figures (one JSON line each): events/s of
- `BookStage.process_depth` (numba kernel, normalised polars rows in, per-step outputs out,
  100 ms steps, 10 depth levels), one call per copy;
- a plain-Python dict book doing the same sync checks and per-step outputs (on one copy);
- hftbacktest 2.4.4 (ROIVector and HashMap depth) elapsing 100 ms steps through the same rows,
  converted with its event format and its own latency/order correction and validation;
and peak RSS of a K-copy run and a 10K-copy run, each in a fresh subprocess (VmHWM; see
peak_rss_kb).
Usage: python bench/replay.py [K]   (default 10)
"""

from __future__ import annotations

import contextlib
import heapq
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson
import polars as pl

# run as `python bench/replay.py`, this file's folder comes first on sys.path and its name would
# shadow the `replay` package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from replay.book import BookStage  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "hftbacktest_examples"
FILES = [SHARED / "spot_btcusdt_20240808.gz", SHARED / "spot_btcusdt_20240809.gz"]
FALLBACK = [Path(__file__).resolve().parents[1] / "tests/data/binance/spot_btcusdt_20240808.gz"]
STEP_NS = 100_000_000
LEVELS = 10
TICK, LOT = 0.01, 0.00001


def emit(**fields) -> None:
    print(orjson.dumps(fields).decode(), flush=True)


def load_base(cache: Path) -> tuple[pl.DataFrame, pl.DataFrame, list[str]]:
    """Normalised depth and trades of the sample (imported and normalised once per run)."""
    if not (cache / "depth.parquet").exists():
        from recorder.importers import import_files
        from recorder.normalize.read import read_table

        files = FILES if all(f.exists() for f in FILES) else FALLBACK
        log = cache / "log"
        import_files(log, "hftbacktest", files, progress=False)
        read_table(log, "depth").collect().write_parquet(cache / "depth.parquet")
        read_table(log, "trades").collect().write_parquet(cache / "trades.parquet")
        (cache / "files.txt").write_text("\n".join(f.name for f in files))
    return (pl.read_parquet(cache / "depth.parquet"), pl.read_parquet(cache / "trades.parquet"),
            (cache / "files.txt").read_text().split("\n"))


class Copies:
    """The base window repeated with shifted times and ids (a gap at every copy's start)."""

    def __init__(self, depth: pl.DataFrame, trades: pl.DataFrame) -> None:
        self.depth, self.trades = depth, trades
        self.t0 = int(min(depth["recv_ts_ns"].min(), trades["recv_ts_ns"].min()))
        t1 = int(max(depth["recv_ts_ns"].max(), trades["recv_ts_ns"].max()))
        self.n_steps = (t1 - self.t0) // STEP_NS + 1
        self.span = self.n_steps * STEP_NS
        self.id_span = int(depth["last_id"].max() - depth["first_id"].min()) + 1000

    def depth_copy(self, k: int) -> tuple[pl.DataFrame, np.ndarray]:
        d = self.depth.with_columns(
            pl.col("recv_ts_ns") + self.span * k, pl.col("event_ts_ns") + self.span * k,
            pl.col("first_id") + self.id_span * k, pl.col("last_id") + self.id_span * k)
        step = (d["recv_ts_ns"].to_numpy() - self.t0 - self.span * k) // STEP_NS
        return d, step


def run_stage(copies: Copies, k_copies: int, keep: bool = False) -> tuple[float, int]:
    """Seconds for the book stage over k copies (prepared beforehand), and valid steps seen."""
    parts = [copies.depth_copy(k) for k in range(k_copies)]
    stage = BookStage("BTCUSDT", "spot", LEVELS)
    valid = 0
    t = time.perf_counter()
    for d, step in parts:
        out = stage.process_depth(d, step, copies.n_steps)
        valid += int(out["valid"].sum())
    return time.perf_counter() - t, valid


def dict_book(rows: list[tuple], n_steps: int) -> int:
    """The same job in plain Python: spot sync rule, dict per side, per-step best and depth."""
    sides: list[dict[float, float]] = [{}, {}]
    best = [None, None]
    state, last = 0, -1   # 0 unsynced, 1 pending (snapshot loaded), 2 synced
    buffered: list[tuple] = []
    out_valid = 0
    cur_msg = None
    step_i = 0

    def apply(levels):
        for side, px, qty in levels:
            book = sides[side]
            if qty == 0.0:
                book.pop(px, None)
                if best[side] == px:
                    best[side] = (max(book) if side == 0 else min(book)) if book else None
            else:
                book[px] = qty
                b = best[side]
                if b is None or (px > b if side == 0 else px < b):
                    best[side] = px

    def message(m):
        nonlocal state, last
        snap, first, u, levels = m
        if snap:
            if state == 2:
                return
            sides[0].clear()
            sides[1].clear()
            best[0] = best[1] = None
            apply(levels)
            state, last = 1, u
            pending = list(buffered)
            buffered.clear()
            for b in pending:
                message(b)
            return
        if state == 0:
            buffered.append(m)
            return
        if u <= last:
            return
        ok = first == last + 1 if state == 2 else first <= last + 1
        if ok:
            apply(levels)
            state, last = 2, u
        else:
            state = 0
            buffered.clear()
            buffered.append(m)

    def emit_step():
        nonlocal out_valid
        if state == 2 and best[0] is not None and best[1] is not None:
            sum(q for _, q in heapq.nlargest(LEVELS, sides[0].items()))
            sum(q for _, q in heapq.nsmallest(LEVELS, sides[1].items()))
            out_valid += 1

    levels: list = []
    head: tuple = ()
    for step, key, snap, first, u, side, px, qty in rows:
        if key != cur_msg:
            if cur_msg is not None:
                message(head + (levels,))
            while step_i < step:
                emit_step()
                step_i += 1
            cur_msg, head, levels = key, (snap, first, u), []
        if side >= 0:
            levels.append((side, px, qty))
    message(head + (levels,))
    while step_i < n_steps:
        emit_step()
        step_i += 1
    return out_valid


def dict_rows(copies: Copies) -> list[tuple]:
    d, step = copies.depth_copy(0)
    key = (d["stream"] + ":" + d["seq"].cast(pl.String)).to_list()
    return list(zip(step.tolist(), key, d["is_snapshot"].to_list(), d["first_id"].to_list(),
                    d["last_id"].to_list(), d["side"].to_list(), d["price"].to_list(),
                    d["qty"].to_list()))


def hbt_events(copies: Copies, k_copies: int) -> list[np.ndarray]:
    """hftbacktest event arrays: depth, clear + snapshot, trades; its own order correction."""
    from hftbacktest.data.validation import (
        correct_event_order,
        correct_local_timestamp,
        validate_event_order,
    )
    from hftbacktest.types import (
        BUY_EVENT,
        DEPTH_CLEAR_EVENT,
        DEPTH_EVENT,
        DEPTH_SNAPSHOT_EVENT,
        SELL_EVENT,
        TRADE_EVENT,
        event_dtype,
    )

    d = copies.depth.filter(pl.col("side") >= 0)
    snap = d["is_snapshot"].to_numpy()
    side = d["side"].to_numpy()
    flag = np.where(side == 0, BUY_EVENT, SELL_EVENT).astype(np.uint64)
    ev = np.where(snap, DEPTH_SNAPSHOT_EVENT, DEPTH_EVENT).astype(np.uint64) | flag
    px, qty = d["price"].to_numpy(), d["qty"].to_numpy()
    local = d["recv_ts_ns"].to_numpy()
    exch = d["event_ts_ns"].fill_null(d["recv_ts_ns"]).to_numpy()
    # a snapshot clears each side up to its deepest level first (as hftbacktest's converters do)
    clears = []
    for s, flag_s, far in ((0, BUY_EVENT, np.min), (1, SELL_EVENT, np.max)):
        m = snap & (side == s)
        if m.any():
            i = int(np.flatnonzero(m)[0])
            clears.append((i, DEPTH_CLEAR_EVENT | flag_s, exch[i], local[i], far(px[m])))
    t = copies.trades
    t_ev = (TRADE_EVENT | np.where(t["is_buyer_maker"].to_numpy(), SELL_EVENT, BUY_EVENT)).astype(np.uint64)
    t_exch = t["trade_ts_ns"].fill_null(t["recv_ts_ns"]).to_numpy()
    n = len(ev) + len(clears) + t.height
    base = np.zeros(n, event_dtype)
    pos = np.arange(len(ev)) + np.searchsorted([c[0] for c in clears], np.arange(len(ev)), "right")
    base["ev"][pos], base["exch_ts"][pos], base["local_ts"][pos] = ev, exch, local
    base["px"][pos], base["qty"][pos] = px, qty
    for j, (i, e, x, lt, p) in enumerate(clears):
        at = i + j
        base[at] = (e, x, lt, p, 0.0, 0, 0, 0.0)
    tr = slice(len(ev) + len(clears), n)
    base["ev"][tr], base["exch_ts"][tr] = t_ev, t_exch
    base["local_ts"][tr], base["px"][tr] = t["recv_ts_ns"].to_numpy(), t["price"].to_numpy()
    base["qty"][tr] = t["qty"].to_numpy()
    base = base[np.argsort(base["local_ts"], kind="stable")]
    with contextlib.redirect_stdout(sys.stderr):  # it prints its latency offset
        base = correct_local_timestamp(base, 0)
    base = correct_event_order(base, np.argsort(base["exch_ts"], kind="mergesort"),
                               np.argsort(base["local_ts"], kind="mergesort"))
    validate_event_order(base)
    out = []
    for k in range(k_copies):
        c = base.copy()
        c["exch_ts"] += copies.span * k
        c["local_ts"] += copies.span * k
        out.append(c)
    return out


def _elapse_all(hbt, step):
    """Elapse step by step to the end, reading the best levels at every step."""
    acc = 0.0
    while hbt.elapse(step) == 0:
        depth = hbt.depth(0)
        acc += depth.best_bid + depth.best_ask + depth.best_bid_qty + depth.best_ask_qty
    return acc


_ELAPSE = []


def run_hbt(kind: str, data: list[np.ndarray]) -> float:
    """Seconds hftbacktest takes to elapse through `data` (numba loop compiled beforehand)."""
    from hftbacktest import BacktestAsset, HashMapMarketDepthBacktest, ROIVectorMarketDepthBacktest
    from numba import njit

    if not _ELAPSE:
        _ELAPSE.append(njit(_elapse_all))
    elapse_all = _ELAPSE[0]
    asset = (BacktestAsset().data(data).linear_asset(1.0).constant_order_latency(0, 0)
             .risk_adverse_queue_model().no_partial_fill_exchange().trading_value_fee_model(0.0, 0.0)
             .tick_size(TICK).lot_size(LOT).roi_lb(55_000.0).roi_ub(70_000.0).last_trades_capacity(0))
    build = ROIVectorMarketDepthBacktest if kind == "roivector" else HashMapMarketDepthBacktest
    hbt = build([asset])
    t = time.perf_counter()
    elapse_all(hbt, STEP_NS)
    seconds = time.perf_counter() - t
    hbt.close()
    return seconds


def rss_child(cache: Path, k_copies: int) -> None:
    """One window of k copies fed copy by copy (outputs dropped), then the peak RSS."""
    depth, trades, _ = load_base(cache)
    copies = Copies(depth, trades)
    stage = BookStage("BTCUSDT", "spot", LEVELS)
    for k in range(k_copies):
        d, step = copies.depth_copy(k)
        stage.process_depth(d, step, copies.n_steps)
    print(peak_rss_kb())


def peak_rss_kb() -> int:
    """Peak RSS of this process image. Linux's ru_maxrss carries the parent's peak over fork +
    exec, so VmHWM (reset at exec) is read where /proc has it."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main(k_copies: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp)
        depth, trades, files = load_base(cache)
        copies = Copies(depth, trades)
        per_copy = depth.height + trades.height
        events = per_copy * k_copies
        window_min = round(copies.span * k_copies / 60e9, 1)
        common = {"files": files, "copies": k_copies, "window_minutes": window_min,
                  "step_ms": STEP_NS // 1_000_000, "depth_levels": LEVELS}
        run_stage(copies, 1)  # compile / warm caches
        stage_s, valid = min(run_stage(copies, k_copies) for _ in range(3))
        stage_eps = events / stage_s
        emit(figure="book_replay_events_per_s", engine="smabm BookStage (numba)", events=events,
             depth_rows=depth.height * k_copies, trades=trades.height * k_copies,
             seconds=round(stage_s, 3), events_per_s=round(stage_eps), valid_steps=valid, **common)

        rows = dict_rows(copies)
        dict_s = min(_timed(dict_book, rows, copies.n_steps) for _ in range(2))
        dict_eps = per_copy / dict_s
        emit(figure="book_replay_events_per_s", engine="plain-Python dict book", events=per_copy,
             seconds=round(dict_s, 3), events_per_s=round(dict_eps), copies=1,
             ratio_smabm_to_this=round(stage_eps / dict_eps, 2))

        try:
            data = hbt_events(copies, k_copies)
        except ImportError as exc:
            emit(figure="book_replay_events_per_s", engine="hftbacktest", skipped=True,
                 reason=f"hftbacktest not importable ({exc}); pip install --no-deps "
                        "hftbacktest==2.4.4 (it pins numpy<2.3 but runs on this numpy)")
        else:
            hbt_rows = sum(len(a) for a in data)
            run_hbt("roivector", data[:1])  # compile for both depth types
            run_hbt("hashmap", data[:1])
            for kind, name in (("roivector", "ROIVectorMarketDepth"), ("hashmap", "HashMapMarketDepth")):
                s = min(run_hbt(kind, data) for _ in range(3))
                eps = hbt_rows / s
                emit(figure="book_replay_events_per_s", engine=f"hftbacktest 2.4.4 {name}",
                     events=hbt_rows, seconds=round(s, 3), events_per_s=round(eps),
                     ratio_smabm_to_this=round(stage_eps / eps, 2), **common)

        rss = {}
        for k in (k_copies, 10 * k_copies):
            res = subprocess.run([sys.executable, __file__, "--rss-child", str(cache), str(k)],
                                 capture_output=True, text=True, check=True,
                                 env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
            rss[k] = int(res.stdout.split()[-1]) / 1024
            emit(figure="book_peak_rss_mb", copies=k, window_minutes=round(copies.span * k / 60e9, 1),
                 rss_mb=round(rss[k], 1))
        emit(figure="book_rss_growth", ratio_10x_window=round(rss[10 * k_copies] / rss[k_copies], 3))


def _timed(fn, *args) -> float:
    t = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--rss-child":
        rss_child(Path(sys.argv[2]), int(sys.argv[3]))
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
