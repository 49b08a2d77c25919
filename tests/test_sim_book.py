"""The compiled book against the reference book, plus the engine's documented rules."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.book import OrderBook
from sim.orders import (
    BUY,
    CANCEL,
    CANCELED,
    EXPIRED,
    FILLED,
    FOK,
    GTC,
    IOC,
    LIMIT,
    MARKET,
    MODIFIED,
    MODIFY,
    POST_ONLY,
    R_EMPTY_SIDE,
    R_FOK_UNFILLABLE,
    R_OUT_OF_BAND,
    R_POST_ONLY_CROSS,
    R_SELF_TRADE,
    REJECTED,
    RESTED,
    SELL,
    STP_CANCELED,
    TRADE,
    make_orders,
)
from sim.reference_book import ReferenceBook

_op = st.tuples(
    st.sampled_from([LIMIT] * 5 + [MARKET, CANCEL, MODIFY, MODIFY]),
    st.sampled_from([BUY, SELL]),
    st.sampled_from([GTC, GTC, GTC, IOC, FOK, POST_ONLY]),
    st.integers(0, 3),  # owner
    st.integers(95, 106),  # price tick
    st.integers(0, 6),  # qty (0 exercises the rejection)
    st.integers(0, 1000),  # which live order a cancel/modify targets
    st.sampled_from(["same_price", "same_owner", "raw"]),
)


def _resolve(ops, band):
    """Turn ops into raw orders, aiming cancels/modifies at live orders (as agents do).

    The reference book is stepped one order at a time to know what is live; both engines then
    get the same raw order array.
    """
    probe = ReferenceBook(band_ticks=band)
    rows = []
    for kind, side, tif, owner, price, qty, pick, how in ops:
        target = -1
        live = probe.resting()
        if kind in (CANCEL, MODIFY) and len(live) and how != "raw":
            _, tprice, target, towner, _ = live[pick % len(live)].tolist()
            owner = towner
            if how == "same_price":
                price = tprice
        elif kind in (CANCEL, MODIFY):
            target = pick % 50 - 1
        row = (kind, side, tif, owner, price, qty, target)
        probe.submit_many(make_orders([row]))
        rows.append(row)
    return rows


def _check_same(ops, band, capacity):
    rows = _resolve(ops, band)
    orders = make_orders(rows)
    fast = OrderBook(band_ticks=band, capacity=capacity, base_tick=90)
    ref = ReferenceBook(band_ticks=band)
    # two batches: state must carry across submit_many calls
    half = len(rows) // 2
    ev_fast = np.concatenate([fast.submit_many(orders[:half]), fast.submit_many(orders[half:])])
    ev_ref = np.concatenate([ref.submit_many(orders[:half]), ref.submit_many(orders[half:])])
    assert ev_fast.shape == ev_ref.shape
    assert np.array_equal(ev_fast, ev_ref)
    assert np.array_equal(fast.resting(), ref.resting())
    assert fast.next_id == ref.next_id
    for side in (BUY, SELL):
        px, qty = fast.depth(side, 50)
        levels = ref.levels[side]
        want = sorted(levels, reverse=side == BUY)
        assert px.tolist() == want
        assert qty.tolist() == [sum(e[2] for e in levels[p]) for p in want]


@settings(max_examples=300, deadline=None)
@given(st.lists(_op, max_size=80))
def test_compiled_book_matches_reference(rows):
    _check_same(rows, band=1 << 10, capacity=2)  # tiny pool: exercises growth + rehash


@settings(max_examples=150, deadline=None)
@given(st.lists(_op, max_size=80))
def test_compiled_book_matches_reference_with_narrow_band(rows):
    _check_same(rows, band=6, capacity=8)  # band narrower than the price range: recentring


def test_market_order_into_empty_side_is_rejected_with_reason():
    book = OrderBook()
    ev = book.submit(MARKET, BUY, qty=3, owner=1)
    assert ev["kind"].tolist() == [REJECTED]
    assert ev["reason"].tolist() == [R_EMPTY_SIDE]


def test_price_time_priority_and_modify_priority_rules():
    book = OrderBook(base_tick=0)
    a = book.submit(LIMIT, SELL, 100, 2, owner=1)[0]["order_id"]
    b = book.submit(LIMIT, SELL, 100, 2, owner=2)[0]["order_id"]
    # size decrease keeps a first in the queue
    assert book.submit(MODIFY, price=100, qty=1, owner=1, order_id=a)[0]["kind"] == MODIFIED
    ev = book.submit(MARKET, BUY, qty=1, owner=3)
    assert ev[0]["kind"] == TRADE and ev[0]["maker_id"] == a
    # size increase of b sends it behind a new order c
    c = book.submit(LIMIT, SELL, 100, 1, owner=4)[0]["order_id"]
    book.submit(MODIFY, price=100, qty=3, owner=2, order_id=b)
    ev = book.submit(MARKET, BUY, qty=1, owner=3)
    assert ev[0]["maker_id"] == c
    # cancel by a non-owner is refused, by the owner works
    assert book.submit(CANCEL, owner=9, order_id=b)[0]["kind"] == REJECTED
    ev = book.submit(CANCEL, owner=2, order_id=b)[0]
    assert ev["kind"] == CANCELED and ev["qty"] == 3
    assert book.best_ask == -1


def test_time_in_force_and_self_trade_prevention():
    book = OrderBook()
    book.submit(LIMIT, SELL, 101, 2, owner=1)
    book.submit(LIMIT, SELL, 102, 2, owner=2)
    ev = book.submit(LIMIT, BUY, 101, 1, owner=3, tif=POST_ONLY)
    assert (ev[0]["kind"], ev[0]["reason"]) == (REJECTED, R_POST_ONLY_CROSS)
    ev = book.submit(LIMIT, BUY, 102, 5, owner=3, tif=FOK)
    assert (ev[0]["kind"], ev[0]["reason"]) == (REJECTED, R_FOK_UNFILLABLE)
    ev = book.submit(LIMIT, BUY, 101, 5, owner=3, tif=IOC)
    assert ev["kind"].tolist() == [TRADE, EXPIRED] and ev[1]["qty"] == 3
    # owner 2 buying into its own ask: the aggressor remainder is cancelled, nothing trades
    ev = book.submit(LIMIT, BUY, 102, 1, owner=2)
    assert (ev[0]["kind"], ev[0]["reason"]) == (STP_CANCELED, R_SELF_TRADE)
    assert book.best_ask == 102 and book.best_bid == -1
    ev = book.submit(LIMIT, BUY, 102, 2, owner=3, tif=FOK)
    assert ev["kind"].tolist() == [TRADE, FILLED]


def test_band_recentres_and_rejects_what_cannot_fit():
    book = OrderBook(band_ticks=10, base_tick=0)
    assert book.submit(LIMIT, BUY, 1000, 1)[0]["kind"] == RESTED  # empty book: recentres
    assert book.submit(LIMIT, SELL, 1008, 1)[0]["kind"] == RESTED
    ev = book.submit(LIMIT, SELL, 1010, 1)[0]
    assert (ev["kind"], ev["reason"]) == (REJECTED, R_OUT_OF_BAND)
    assert book.depth(BUY, 3)[0].tolist() == [1000]
    assert book.depth(SELL, 3)[0].tolist() == [1008]
