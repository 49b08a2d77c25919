"""Property tests: the compiled book against a plain-Python dict book, and chunking invariance.

A 64-tick window makes most levels land in the overflow table and the window recentre often,
so the exact bookkeeping between the two (best levels, depth past the window edge) is tested.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recorder.normalize.tables import SCHEMAS
from replay.book import BookStage

LEVELS = 4
# prices on a 20-tick grid so diffs often hit existing levels (and the best one); a 64-tick
# window holds only ~3 of them, the rest sit in the overflow table
GRID = 20
off_s = st.integers(-20, 20).map(lambda k: GRID * k)
qty_s = st.one_of(st.just(0), st.integers(1, 5000))  # lots of 0.001; 0 deletes the level
level_s = st.tuples(st.integers(0, 1), off_s, qty_s)
move_s = st.integers(-8, 8).map(lambda k: GRID * k)
diff_s = st.tuples(move_s, st.lists(level_s, max_size=12))  # (centre move, levels)
side_book_s = st.lists(st.tuples(st.integers(1, 20).map(lambda k: GRID * k), st.integers(1, 5000)),
                       max_size=30)
book_s = st.tuples(side_book_s, side_book_s, st.lists(diff_s, min_size=1, max_size=60))


def frame(book, c0: int = 100_001):  # odd: prices need 2 decimals
    """Depth rows (snapshot lastUpdateId 10, then chained spot diffs) and the messages as ticks."""
    bids, asks, diffs = book
    msgs = [[(0, c0 - o, q) for o, q in bids] + [(1, c0 + o, q) for o, q in asks]]
    c = c0
    for move, levels in diffs:
        c += move
        msgs.append([(s, c + o, q) for s, o, q in levels])
    rows = []
    for i, levels in enumerate(msgs):
        snap = i == 0
        first, last = (10, 10) if snap else (10 + i, 10 + i)
        for lv, (side, tick, q) in enumerate(levels or [(-1, None, None)]):
            rows.append({"recv_ts_ns": i, "event_ts_ns": i, "source": "binance.spot",
                         "stream": "x@snapshot" if snap else "x@depth@100ms", "seq": i,
                         "conn": "c", "symbol": "X", "market": "spot", "transact_ts_ns": None,
                         "first_id": first, "last_id": last, "prev_id": None, "is_snapshot": snap,
                         "level": lv, "side": side,
                         "price": float("nan") if tick is None else tick / 100,
                         "qty": float("nan") if q is None else q / 1000})
    return pl.DataFrame(rows, schema=SCHEMAS["depth"]), msgs


def reference(msgs, n: int) -> dict[str, list]:
    """Plain dict book, the obvious way: best = max/min of live keys, depth = top-n sum."""
    sides: list[dict[int, int]] = [{}, {}]
    out = {k: [] for k in ("bid_px", "bid_qty", "ask_px", "ask_qty", "bid_depth", "ask_depth")}
    for levels in msgs:
        for side, tick, q in levels:
            if q == 0:
                sides[side].pop(tick, None)
            else:
                sides[side][tick] = q
        bids = sorted(sides[0].items(), reverse=True)
        asks = sorted(sides[1].items())
        for name, lv in (("bid", bids), ("ask", asks)):
            out[f"{name}_px"].append(lv[0][0] / 100 if lv else np.nan)
            out[f"{name}_qty"].append(lv[0][1] / 1000 if lv else 0.0)
            out[f"{name}_depth"].append(sum(q for _, q in lv[:n]) / 1000)
    return out


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(book=book_s)
def test_compiled_book_matches_dict_book(book):
    df, msgs = frame(book)
    stage = BookStage("X", "spot", LEVELS, window_ticks=64)
    out = stage.process_depth(df, df["recv_ts_ns"].to_numpy(), len(msgs))
    ref = reference(msgs, LEVELS)
    # step 0 holds only the snapshot (not yet continued by a diff): the book is not valid yet
    assert not out["valid"][0] and out["valid"][1:].all()
    for key, want in ref.items():
        np.testing.assert_array_equal(out[key][1:], np.asarray(want[1:]), err_msg=key)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(book=book_s, cuts=st.lists(st.integers(0, 61), max_size=6))
def test_chunked_feed_equals_whole_feed(book, cuts):
    df, msgs = frame(book)
    n = len(msgs)
    t = df["recv_ts_ns"].to_numpy()
    whole = BookStage("X", "spot", LEVELS, window_ticks=64).process_depth(df, t, n)
    stage = BookStage("X", "spot", LEVELS, window_ticks=64)
    bounds = sorted({0, n, *(c for c in cuts if c < n)})
    parts = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        lo, hi = np.searchsorted(t, [a, b])
        part = df.slice(int(lo), int(hi - lo))
        parts.append(stage.process_depth(part, part["recv_ts_ns"].to_numpy() - a, b - a))
    for key, col in whole.items():
        np.testing.assert_array_equal(np.concatenate([p[key] for p in parts]), col, err_msg=key)
