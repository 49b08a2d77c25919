"""Live Binance recorder against the local exchange: gaps, reconnects, bad frames, stalls."""

from __future__ import annotations

import asyncio

import numpy as np
import orjson
import polars as pl
from harness.exchange import LocalExchange
from harness.runs import SPOT_BTC, binance_cfg, read_all, run_daemon_with, wait_for

from recorder.verify import verify
from replay.check_book import check_book

DEPTH = "btcusdt@depth@100ms"


def _df(root) -> pl.DataFrame:
    return pl.from_arrow(read_all(root)).sort("recv_ts_ns", "stream", "seq")


def _depth_ids(df: pl.DataFrame) -> pl.DataFrame:
    msgs = df.filter((pl.col("stream") == DEPTH) & (pl.col("kind") == "message"))
    ids = [orjson.loads(p)["data"] for p in msgs["payload"]]
    return msgs.with_columns(U=pl.Series([d["U"] for d in ids]), u=pl.Series([d["u"] for d in ids]))


def test_disconnect_storm_records_every_gap_and_resnapshots(tmp_path):
    root = tmp_path / "log"
    rng = np.random.default_rng(np.random.SeedSequence(7))
    faults = rng.permutation(["disconnect"] * 10 + ["drop"] * 10)
    with LocalExchange([SPOT_BTC], speed=12.0, line_limit=14_000) as ex:
        async def storm(d):
            await wait_for(lambda: d.ingest.written > 200, 20)
            for f in faults:
                if f == "disconnect":
                    ex.disconnect(abrupt=bool(rng.integers(2)))
                else:
                    ex.drop(int(rng.integers(1, 4)))
                await asyncio.sleep(float(rng.uniform(0.35, 0.6)))
            await wait_for(ex.done.is_set, 60)
            await asyncio.sleep(0.5)

        rc, d = run_daemon_with(binance_cfg(root, ex), storm)
        dropped = [ex.recording.frames[i].depth for i in ex.dropped]
    assert rc == 0 and d.ingest.dropped == 0
    df = _df(root)
    conns = df.filter(pl.col("kind") == "connect")["conn"].unique().to_list()
    assert len(conns) >= 11  # the first connection plus one per disconnect

    # every reconnect re-snapshots: each connection holds a REST snapshot
    snaps = df.filter(pl.col("kind") == "snapshot")
    assert set(conns) == set(snaps["conn"].unique().to_list())

    # every chain break verify finds has a gap marker with the same missing range, and back
    report = verify(root)
    chain = {(g["stream"], g["prev_last_id"] + 1 if g["type"] == "update_id" else g["prev_id"] + 1,
              g["first_id"] - 1) for g in report["gaps"] if g["type"] in ("update_id", "trade_id")}
    markers = {(g["stream"], *(lambda m: (m["from"], m["to"]))(orjson.loads(g["detail"])))
               for g in report["gaps"] if g["type"] == "marker"}
    assert chain and chain == markers
    assert not [g for g in report["gaps"] if g["type"] == "seq"]
    assert not report["problems"]

    # every dropped depth frame lies inside a recorded gap
    depth_gaps = [(a, b) for s, a, b in markers if s == DEPTH]
    for data in dropped:
        assert any(a <= data["U"] and data["u"] <= b for a, b in depth_gaps), data["U"]

    # the book is recoverable after every gap: a later snapshot that a recorded diff straddles
    # (not always the first one after the gap: when the diff right after a snapshot is dropped
    # too, or the connection is cut, the recorder snapshots again)
    diffs = _depth_ids(df)
    lids = [(r["recv_ts_ns"], orjson.loads(r["payload"])["lastUpdateId"])
            for r in snaps.iter_rows(named=True)]
    synced = [t for t, lid in lids
              if diffs.filter((pl.col("U") <= lid + 1) & (pl.col("u") >= lid + 1)).height]
    gap_rows = df.filter((pl.col("kind") == "gap") & (pl.col("stream") == DEPTH))
    assert gap_rows.height  # the drops above made some
    for g in gap_rows.iter_rows(named=True):
        assert any(t >= g["recv_ts_ns"] for t in synced), f"book not recoverable after the gap at {g}"

    # the replayed book is valid on every synced interval: it matches bookTicker, never crosses
    cb = check_book(root)
    assert cb["compared"] > 50 and cb["matched"] == cb["compared"], cb["mismatches"]
    assert cb["crossed"] == 0


def test_malformed_frames_are_kept_as_errors_and_recording_goes_on(tmp_path):
    root = tmp_path / "log"
    with LocalExchange([SPOT_BTC], speed=10.0, line_limit=4_000) as ex:
        async def inject(d):
            await wait_for(lambda: d.ingest.written > 100, 20)
            ex.malformed(5)
            await wait_for(lambda: len(ex.malformed_sent) == 5, 10)
            await wait_for(ex.done.is_set, 60)
            await asyncio.sleep(0.3)

        rc, d = run_daemon_with(binance_cfg(root, ex), inject)
        sent = list(ex.malformed_sent)
        total_frames = ex.sent
    assert rc == 0
    df = _df(root)
    errors = df.filter(pl.col("kind") == "error")
    assert errors["stream"].unique().to_list() == ["error"]
    assert errors["payload"].to_list() == sent  # the raw bytes, in order
    last_error = errors["recv_ts_ns"].max()
    after = df.filter((pl.col("kind") == "message") & (pl.col("recv_ts_ns") > last_error))
    assert after.height > 100
    # every frame the exchange sent is in the log: messages plus errors
    assert df.filter(pl.col("kind").is_in(["message", "error"])).height == total_frames
    assert df.filter(pl.col("kind") == "connect")["conn"].n_unique() == 1  # no reconnect needed


def test_stall_reconnects_and_snapshot_errors_are_retried(tmp_path):
    root = tmp_path / "log"
    with LocalExchange([SPOT_BTC], speed=10.0, line_limit=5_000) as ex:
        async def inject(d):
            await wait_for(lambda: d.ingest.written > 100, 20)
            ex.snapshot_errors(2, status=500)
            ex.stall(1.3)   # longer than stale_timeout_s: the recorder must reconnect
            await wait_for(lambda: ex.connections >= 2, 10)
            ex.slow(0.01, 30)
            await wait_for(ex.done.is_set, 60)
            await asyncio.sleep(0.3)

        rc, d = run_daemon_with(binance_cfg(root, ex, stale_timeout_s=0.8), inject)
    assert rc == 0
    df = _df(root)
    disc = df.filter((pl.col("kind") == "disconnect") & (pl.col("stream") == DEPTH))
    assert any(p.startswith(b"stale") for p in disc["payload"].to_list())
    snap_stream = df.filter(pl.col("stream") == "btcusdt@snapshot")
    errs = snap_stream.filter(pl.col("kind") == "error")
    assert errs.height == 2 and all(b"injected" in p for p in errs["payload"].to_list())
    second = df.filter(pl.col("kind") == "connect")["conn"].unique().sort()[-1]
    assert snap_stream.filter((pl.col("kind") == "snapshot") & (pl.col("conn") == second)).height == 1
    st = orjson.loads((root.parent / "log-status.json").read_bytes())
    assert st["stopped"] and st["dropped"] == 0 and st["binance"]["snapshot_errors"] == 2
    depth = next(s for s in st["streams"] if s["stream"] == DEPTH)
    assert depth["reconnects"] == 2 and depth["written"] == depth["received"]
