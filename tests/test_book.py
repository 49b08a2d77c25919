"""Book kernel units: Binance sync rules, gaps and resync, deletes, crossed books, chunking."""

from __future__ import annotations

import numpy as np
import orjson
import polars as pl
import pytest

from recorder.events import events_table
from recorder.normalize.tables import SCHEMAS
from replay.book import BookStage, book_steps
from replay.stage import Chunk

NAN = float("nan")


def msg(ts, first, last, levels, *, prev=None, snap=False, seq=None, market="spot",
        symbol="BTCUSDT"):
    """One depth message as a dict; levels are (side, price, qty)."""
    return {"ts": ts, "first": first, "last": last, "prev": prev, "snap": snap, "seq": seq,
            "levels": levels, "market": market, "symbol": symbol}


def depth_frame(msgs) -> pl.DataFrame:
    """Normalised depth rows (recorder.normalize.tables.SCHEMAS['depth']) for `msgs`."""
    rows = []
    seqs = {"d": 0, "s": 0}
    for m in msgs:
        kind = "s" if m["snap"] else "d"
        seq = m["seq"] if m["seq"] is not None else seqs[kind]
        seqs[kind] = seq + 1
        stream = f"{m['symbol'].lower()}@" + ("snapshot" if m["snap"] else "depth@100ms")
        levels = m["levels"] or [(-1, NAN, NAN)]
        for lv, (side, px, qty) in enumerate(levels):
            rows.append({"recv_ts_ns": m["ts"], "event_ts_ns": m["ts"],
                         "source": f"binance.{m['market']}", "stream": stream, "seq": seq,
                         "conn": "c0", "symbol": m["symbol"], "market": m["market"],
                         "transact_ts_ns": None, "first_id": m["first"], "last_id": m["last"],
                         "prev_id": m["prev"], "is_snapshot": m["snap"], "level": lv,
                         "side": side, "price": px, "qty": qty})
    return pl.DataFrame(rows, schema=SCHEMAS["depth"])


def per_message(stage: BookStage, msgs) -> dict[str, np.ndarray]:
    return stage.replay_messages(depth_frame(msgs))


SNAP = [(0, 100.0, 1.0), (0, 99.5, 2.0), (0, 99.0, 3.0), (1, 100.5, 1.5), (1, 101.0, 2.5)]


def test_spot_snapshot_then_diffs_drops_old_and_syncs_on_straddle():
    msgs = [
        msg(10, 100, 100, SNAP, snap=True),                      # lastUpdateId = 100
        msg(20, 95, 100, [(0, 100.0, 9.0)]),                     # u <= L: dropped
        msg(30, 99, 103, [(0, 100.0, 4.0), (1, 100.5, 0.0)]),    # U <= L+1 <= u: first applied
        msg(40, 104, 106, [(1, 100.25, 0.75)]),                  # U == prev u + 1
    ]
    st = BookStage("BTCUSDT", "spot")
    out = per_message(st, msgs)
    assert out["valid"].tolist() == [False, False, True, True]
    assert out["bid_px"][2] == 100.0 and out["bid_qty"][2] == 4.0
    assert out["ask_px"][2] == 101.0  # 100.5 deleted by qty 0
    assert out["ask_px"][3] == 100.25 and out["ask_qty"][3] == 0.75
    c = st.counters()
    assert (c["stale"], c["applied"], c["gaps"], c["snapshots_used"]) == (1, 2, 0, 1)


def test_spot_snapshot_logged_after_the_diff_that_passed_it():
    # as in the recordings: the straddling diff arrives before the REST snapshot
    msgs = [
        msg(10, 90, 98, [(0, 100.0, 7.0)]),            # older than the snapshot: dropped at sync
        msg(20, 99, 103, [(0, 100.0, 4.0)]),           # straddles L+1 = 101
        msg(25, 104, 105, [(1, 100.5, 0.5)]),
        msg(30, 100, 100, SNAP, snap=True),
        msg(40, 106, 107, [(0, 99.5, 0.0)]),
    ]
    st = BookStage("BTCUSDT", "spot")
    out = per_message(st, msgs)
    assert out["valid"].tolist() == [False, False, False, True, True]
    assert (out["bid_px"][3], out["bid_qty"][3]) == (100.0, 4.0)
    assert (out["ask_px"][3], out["ask_qty"][3]) == (100.5, 0.5)
    steps = book_steps(depth_frame(msgs), "BTCUSDT", "spot", start_ns=0, step_ns=50, n_steps=1,
                       depth_levels=2)
    assert steps["bid_depth"][0] == 4.0 + 3.0  # 99.5 deleted: 100 and 99 remain
    assert st.counters()["gaps"] == 0


def test_futures_rules_use_pu_and_snapshot_inside_first_diff():
    fut = dict(market="usdm")
    msgs = [
        msg(10, 500, 500, SNAP, snap=True, **fut),
        msg(20, 480, 499, [(0, 100.0, 8.0)], prev=470, **fut),     # u < L: dropped
        msg(30, 495, 510, [(0, 100.0, 5.0)], prev=499, **fut),     # U <= L <= u
        msg(40, 530, 540, [(1, 100.5, 9.0)], prev=510, **fut),     # pu == prev u (ids not contiguous)
        msg(50, 560, 570, [(1, 100.5, 1.0)], prev=545, **fut),     # pu != 540: gap
        msg(60, 571, 580, [(1, 100.5, 2.0)], prev=570, **fut),     # chained after the gap: buffered
        msg(70, 575, 575, SNAP, snap=True, **fut),                 # resync with the buffered diff
    ]
    st = BookStage("BTCUSDT", "usdm")
    out = per_message(st, msgs)
    assert out["valid"].tolist() == [False, False, True, True, False, False, True]
    assert out["ask_qty"][3] == 9.0
    assert (out["ask_px"][6], out["ask_qty"][6]) == (100.5, 2.0)
    gaps = st.tables()["book_gaps"].to_pylist()
    assert gaps == [{"recv_ts_ns": 50, "expected_id": 540, "got_id": 545, "kind": "diff"}]


def test_spot_gap_marks_invalid_until_next_snapshot_then_resyncs():
    msgs = [
        msg(10, 100, 100, SNAP, snap=True),
        msg(20, 101, 102, [(0, 100.0, 2.0)]),
        msg(30, 110, 111, [(0, 100.0, 3.0)]),           # U != 103: gap
        msg(40, 112, 113, [(0, 100.0, 4.0)]),
        msg(50, 200, 200, [(0, 98.0, 1.0)], snap=True),  # new snapshot, newer than the buffer
        msg(60, 201, 202, [(0, 98.0, 6.0)]),
    ]
    st = BookStage("BTCUSDT", "spot")
    out = per_message(st, msgs)
    assert out["valid"].tolist() == [False, True, False, False, False, True]
    assert (out["bid_px"][5], out["bid_qty"][5]) == (98.0, 6.0)
    assert np.isnan(out["ask_px"][5])  # the second snapshot has no asks
    gaps = st.tables()["book_gaps"].to_pylist()
    assert gaps == [{"recv_ts_ns": 30, "expected_id": 103, "got_id": 110, "kind": "diff"}]
    # per-step view: invalid steps are NaN, the gap is counted in its step
    steps = book_steps(depth_frame(msgs), "BTCUSDT", "spot", start_ns=0, step_ns=25, n_steps=3)
    assert steps["valid"].tolist() == [True, False, True]
    assert steps["n_gaps"].tolist() == [0, 1, 0]
    assert np.isnan(steps["bid_px"][1]) and steps["bid_px"][2] == 98.0


def test_snapshot_older_than_every_later_diff_is_a_gap():
    msgs = [
        msg(10, 100, 100, SNAP, snap=True),
        msg(20, 105, 107, [(0, 100.0, 2.0)]),   # U > L+1: the snapshot cannot be continued
        msg(30, 108, 109, [(0, 100.0, 3.0)]),
    ]
    st = BookStage("BTCUSDT", "spot")
    out = per_message(st, msgs)
    assert not out["valid"].any()
    assert st.tables()["book_gaps"].to_pylist() == [
        {"recv_ts_ns": 20, "expected_id": 101, "got_id": 105, "kind": "snapshot"}]


def test_crossed_states_are_counted_at_message_boundaries():
    msgs = [
        msg(10, 100, 100, SNAP, snap=True),
        msg(20, 101, 101, [(0, 100.75, 1.0)]),                     # bid above best ask 100.5
        msg(30, 102, 102, [(1, 100.5, 0.0), (1, 101.0, 0.0), (1, 102.0, 1.0)]),  # uncrossed
        msg(40, 103, 103, [(0, 102.0, 1.0), (0, 102.0, 0.0)]),     # crossed only inside a message
    ]
    st = BookStage("BTCUSDT", "spot")
    out = per_message(st, msgs)
    assert out["valid"].tolist() == [False, True, True, True]
    assert out["bid_px"][1] > out["ask_px"][1]
    assert st.counters()["crossed"] == 1
    steps = book_steps(depth_frame(msgs), "BTCUSDT", "spot", start_ns=0, step_ns=25, n_steps=2)
    assert steps["n_crossed"].tolist() == [1, 0]


def test_zero_qty_delete_of_best_walks_to_next_level_and_depth_sums_top_n():
    msgs = [msg(10, 100, 100, SNAP, snap=True),
            msg(20, 101, 101, [(0, 100.0, 0.0), (1, 100.5, 0.0)])]
    steps = book_steps(depth_frame(msgs), "BTCUSDT", "spot", start_ns=0, step_ns=100, n_steps=1,
                       depth_levels=5)
    assert (steps["bid_px"][0], steps["bid_qty"][0]) == (99.5, 2.0)
    assert (steps["ask_px"][0], steps["ask_qty"][0]) == (101.0, 2.5)
    assert steps["bid_depth"][0] == 5.0 and steps["ask_depth"][0] == 2.5
    assert steps["spread"][0] == 1.5 and steps["mid"][0] == 100.25
    assert steps["microprice"][0] == pytest.approx((99.5 * 2.5 + 101.0 * 2.0) / 4.5)
    assert steps["imbalance"][0] == pytest.approx((2.0 - 2.5) / 4.5)
    assert steps["depth_imbalance"][0] == pytest.approx((5.0 - 2.5) / 7.5)


def test_ofi_follows_cont_kukanov_stoikov():
    msgs = [
        msg(10, 100, 100, SNAP, snap=True),
        msg(12, 101, 101, [(1, 101.0, 2.5)]),                    # warm-up: first valid state
        msg(20, 102, 102, [(0, 100.0, 1.5)]),                    # bid size +0.5          e = +0.5
        msg(30, 103, 103, [(0, 100.25, 2.0)]),                   # bid improves           e = +2.0
        msg(40, 104, 104, [(1, 100.5, 0.0)]),                    # best ask 1.5 leaves    e = +1.5
        msg(50, 105, 105, [(1, 100.3, 0.25)]),                   # ask improves           e = -0.25
    ]
    steps = book_steps(depth_frame(msgs), "BTCUSDT", "spot", start_ns=15, step_ns=20, n_steps=2)
    assert steps["ofi"].tolist() == [0.5 + 2.0, 1.5 - 0.25]


def test_coinm_contract_quantities_and_futures_first_diff():
    fut = dict(market="coinm", symbol="BTCUSD_PERP")
    snap = [(0, 60000.1, 120.0), (1, 60000.2, 75.0)]
    msgs = [msg(10, 7, 7, snap, snap=True, **fut),
            msg(20, 5, 9, [(1, 60000.2, 80.0)], prev=4, **fut),
            msg(30, 12, 14, [(0, 60000.1, 0.0), (0, 59999.9, 3.0)], prev=9, **fut)]
    st = BookStage("BTCUSD_PERP", "coinm")
    out = per_message(st, msgs)
    assert out["valid"].tolist() == [False, True, True]
    assert (out["bid_px"][2], out["bid_qty"][2], out["ask_qty"][2]) == (59999.9, 3.0, 80.0)
    assert st.qty_decimals == 0 and st.price_decimals == 1


def random_walk_msgs(seed: int, n: int, spot: bool = True, gap_at: int | None = None):
    """A long seeded message sequence: snapshot, diffs drifting far (recentres, overflow), a gap."""
    rng = np.random.default_rng(seed)
    market = "spot" if spot else "usdm"
    out = []
    mid = 50_000
    bids = [(0, (mid - 1 - i) / 100, float(rng.integers(1, 9)) / 1000) for i in range(300)]
    asks = [(1, (mid + 1 + i) / 100, float(rng.integers(1, 9)) / 1000) for i in range(300)]
    u = 1000
    lid = u if spot else u + 1  # futures: the first diff must straddle the snapshot id
    out.append(msg(1, lid, lid, bids + asks, snap=True, market=market))
    ts = 10
    for k in range(n):
        mid += int(rng.integers(-40, 41))
        levels = []
        for _ in range(int(rng.integers(0, 12))):
            side = int(rng.integers(0, 2))
            off = int(rng.integers(1, 60)) if rng.random() < 0.9 else int(rng.integers(1, 20_000))
            px = (mid - off) if side == 0 else (mid + off)
            qty = 0.0 if rng.random() < 0.3 else float(rng.integers(1, 5000)) / 1000
            levels.append((side, px / 100, qty))
        jump = 50 if k == gap_at else 0
        first = u + 1 + jump
        last = first + int(rng.integers(0, 5))
        out.append(msg(ts, first, last, levels, prev=None if spot else u + jump, market=market))
        u = last
        ts += int(rng.integers(1, 80))
        if gap_at is not None and k == gap_at + 5:
            snap = [(0, (mid - 1 - i) / 100, 1.0) for i in range(50)]
            snap += [(1, (mid + 1 + i) / 100, 1.0) for i in range(50)]
            lid = u if spot else u + 1  # futures: the next diff must straddle the snapshot id
            out.append(msg(ts, lid, lid, snap, snap=True, market=market))
    return out


def assert_same(a: dict, b: dict):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@pytest.mark.parametrize("spot", [True, False])
def test_chunked_equals_whole(spot):
    msgs = random_walk_msgs(7, 1500, spot=spot, gap_at=700)
    market = "spot" if spot else "usdm"
    df = depth_frame(msgs)
    step_ns = 97
    n_steps = int(df["recv_ts_ns"].max() // step_ns) + 2
    kw = dict(window_ticks=256)
    whole = book_steps(df, "BTCUSDT", market, 0, step_ns, n_steps, depth_levels=5, **kw)
    assert whole["n_gaps"].sum() == 1 and whole["valid"][-1] and whole["valid"].mean() > 0.9
    st = BookStage("BTCUSDT", market, 5, **kw)
    parts = []
    cuts = [0, 1, 2, 50, 51, n_steps // 2, n_steps // 2 + 1, n_steps - 3, n_steps]
    t = df["recv_ts_ns"].to_numpy()
    for a, b in zip(cuts[:-1], cuts[1:]):
        lo, hi = np.searchsorted(t, [a * step_ns, b * step_ns])
        part = df.slice(int(lo), int(hi - lo))
        parts.append(st.process_depth(part, part["recv_ts_ns"].to_numpy() // step_ns - a, b - a))
    chunked = {k: np.concatenate([p[k] for p in parts]) for k in whole}
    assert_same(whole, chunked)
    assert st.counters()["recentres"] > 0  # the walk left the 256-tick window


def test_coarser_first_chunk_refines_the_grid_without_changing_outputs():
    msgs = [msg(10, 100, 100, [(0, 100.0, 1.0), (1, 102.0, 2.0)], snap=True),
            msg(20, 101, 101, [(0, 101.0, 1.0)]),
            msg(30, 102, 102, [(0, 101.25, 0.125), (1, 101.5, 3.0)]),
            msg(40, 103, 103, [(0, 101.0, 0.0)])]
    df = depth_frame(msgs)
    whole = book_steps(df, "BTCUSDT", "spot", 0, 10, 5)
    st = BookStage("BTCUSDT", "spot")
    first = st.process_depth(df.head(3), df.head(3)["recv_ts_ns"].to_numpy() // 10, 3)
    assert (st.price_decimals, st.qty_decimals) == (0, 0)
    rest = df.slice(3)
    second = st.process_depth(rest, rest["recv_ts_ns"].to_numpy() // 10 - 3, 2)
    assert (st.price_decimals, st.qty_decimals) == (2, 3)
    assert_same(whole, {k: np.concatenate([first[k], second[k]]) for k in whole})


def frames(msgs) -> tuple[list[int], list[bytes], list[str], list[str]]:
    """Binance payloads (combined-stream diffs, bare REST snapshots) for a raw log table."""
    recv, payloads, streams, kinds = [], [], [], []
    for m in msgs:
        bids = [[f"{p:.2f}", f"{q:.3f}"] for s, p, q in m["levels"] if s == 0]
        asks = [[f"{p:.2f}", f"{q:.3f}"] for s, p, q in m["levels"] if s == 1]
        if m["snap"]:
            body = {"lastUpdateId": m["last"], "bids": bids, "asks": asks}
            streams.append("btcusdt@snapshot")
            kinds.append("snapshot")
        else:
            body = {"stream": "btcusdt@depth@100ms",
                    "data": {"e": "depthUpdate", "E": m["ts"] // 1_000_000, "s": "BTCUSDT",
                             "U": m["first"], "u": m["last"], "b": bids, "a": asks}}
            streams.append("btcusdt@depth@100ms")
            kinds.append("message")
        recv.append(m["ts"])
        payloads.append(orjson.dumps(body))
    return recv, payloads, streams, kinds


def test_stage_protocol_on_raw_events_is_chunking_invariant():
    msgs = random_walk_msgs(3, 400, gap_at=150)
    for m in msgs:
        m["ts"] *= 1_000_000  # ms-scale spacing
    recv, payloads, streams, kinds = frames(msgs)
    raw = events_table(source="binance.spot", stream=streams, recv_ts_ns=recv, payload=payloads,
                       kind=kinds, seq=list(range(len(recv))))
    step_ns = 250_000_000
    n_steps = recv[-1] // step_ns + 1
    starts = np.arange(n_steps, dtype=np.int64) * step_ns

    def run(chunk_steps: int, time: str = "recv") -> dict[str, np.ndarray]:
        st = BookStage("btcusdt", "spot", 3, time=time)
        assert st.streams == ("binance.spot:btcusdt@depth*", "binance.spot:btcusdt@snapshot")
        parts = []
        t = np.asarray(recv)
        for s0 in range(0, n_steps, chunk_steps):
            s = starts[s0:s0 + chunk_steps]
            lo, hi = np.searchsorted(t, [s[0], s[-1] + step_ns])
            ev = raw.slice(int(lo), int(hi - lo))
            offsets = np.searchsorted(t[lo:hi], np.append(s, s[-1] + step_ns)).astype(np.int64)
            parts.append(st.process(Chunk(s0, s, step_ns, ev, offsets)))
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    whole = run(n_steps)
    assert whole["valid"].sum() > n_steps // 2 and whole["n_gaps"].sum() == 1
    assert_same(whole, run(7))
    assert_same(whole, run(1))
    # here E (ms) equals the receive time and the snapshot has none (falls back to recv):
    # event-time ordering must give the very same steps
    assert_same(run(7, "event"), whole)


def test_bad_settings_name_the_field():
    with pytest.raises(ValueError, match="book.market"):
        BookStage("BTCUSDT", "options")
    with pytest.raises(ValueError, match="book.window_ticks"):
        BookStage("BTCUSDT", "spot", window_ticks=1000)
    with pytest.raises(ValueError, match="book.depth_levels"):
        BookStage("BTCUSDT", "spot", depth_levels=0)
    st = BookStage("BTCUSDT", "spot", price_decimals=1)
    with pytest.raises(ValueError, match="book.price_decimals=1"):
        st.replay_messages(depth_frame([msg(1, 5, 5, [(0, 100.25, 1.0)], snap=True)]))
    fut = BookStage("BTCUSDT", "usdm")
    with pytest.raises(ValueError, match="prev_id"):
        fut.replay_messages(depth_frame([msg(1, 5, 6, [(0, 100.0, 1.0)], market="usdm")]))
