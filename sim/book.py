"""Compiled price-time-priority matching engine over preallocated integer arrays.

Why arrays and numba: a simulated day is tens of millions of orders; a dict per order in Python
costs microseconds each, a compiled kernel over pooled arrays costs tens of nanoseconds.

Layout (all int64):
- ``lev[side, i, HEAD|TAIL|QTY]``: one price level per tick of a band of ``band_ticks`` ticks
  starting at tick ``meta[BASE]`` (side 0 bids, 1 asks); HEAD/TAIL index the order pool, -1 empty.
  The band recentres when an order outside it must rest and the whole resting book plus that
  price spans fewer than ``band_ticks`` ticks; otherwise the order is rejected (OUT_OF_BAND).
- ``pool[slot, ID|OWNER|SIDE|PRICE|QTY|PREV|NEXT]``: resting orders, a doubly linked FIFO per
  level; free slots form a list through NEXT.
- ``htab[b, KEY|VAL]``: open-addressing hash (linear probing, backward-shift deletion) from order
  id to pool slot, holding live orders only, so ids can come from a plain counter.

Rules: price-time priority; trades print at the resting price; self-trade prevention is
cancel-newest (the aggressor's remaining size is cancelled, STP_CANCELED, trades already done
stand); a modify that only lowers the size keeps priority, any other modify is cancel + re-enter
as a GTC limit with the same id (it may trade); a market order into an empty side is REJECTED with
reason EMPTY_SIDE. Every LIMIT/MARKET input takes the next id from the counter, even if rejected.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from sim.orders import (
    BUY,
    CANCEL,
    CANCELED,
    EVENT_DTYPE,
    EXPIRED,
    FILLED,
    FOK,
    GTC,
    IOC,
    LIMIT,
    MARKET,
    MODIFIED,
    MODIFY,
    ORDER_DTYPE,
    POST_ONLY,
    R_BAD_KIND,
    R_BAD_PRICE,
    R_BAD_QTY,
    R_BAD_SIDE,
    R_BAD_TIF,
    R_EMPTY_SIDE,
    R_FOK_UNFILLABLE,
    R_NO_LIQUIDITY,
    R_NONE,
    R_NOT_OWNER,
    R_OUT_OF_BAND,
    R_POST_ONLY_CROSS,
    R_SELF_TRADE,
    R_UNKNOWN_ORDER,
    REJECTED,
    RESTED,
    SELL,
    STP_CANCELED,
    TRADE,
)

# meta slots
BASE = 0
NLEV = 1
BEST_BID = 2  # level index of the best bid, -1 if no bids
BEST_ASK = 3
NEXT_ID = 4
FREE_HEAD = 5
N_LIVE = 6
N_BIDS = 7
N_ASKS = 8
HMASK = 9
POOL_CAP = 10
BID_TOTAL = 11  # resting size summed over all bid levels
ASK_TOTAL = 12
META_SIZE = 13

# lev fields
HEAD = 0
TAIL = 1
QTY = 2

# pool fields
P_ID = 0
P_OWNER = 1
P_SIDE = 2
P_PRICE = 3
P_QTY = 4
P_PREV = 5
P_NEXT = 6

# hash fields
H_KEY = 0
H_VAL = 1


def new_state(band_ticks: int, capacity: int, base_tick: int = 0):
    """Allocate an empty book: (meta, lev, pool, htab)."""
    if band_ticks < 2:
        raise ValueError(f"band_ticks must be >= 2, got {band_ticks}")
    if capacity < 1:
        raise ValueError(f"capacity must be >= 1, got {capacity}")
    meta = np.zeros(META_SIZE, dtype=np.int64)
    meta[BASE] = base_tick
    meta[NLEV] = band_ticks
    meta[BEST_BID] = -1
    meta[BEST_ASK] = -1
    meta[NEXT_ID] = 1
    lev = np.empty((2, band_ticks, 3), dtype=np.int64)
    lev[:, :, HEAD] = -1
    lev[:, :, TAIL] = -1
    lev[:, :, QTY] = 0
    pool, htab = _alloc_pool(capacity)
    meta[FREE_HEAD] = 0
    meta[POOL_CAP] = capacity
    meta[HMASK] = htab.shape[0] - 1
    return meta, lev, pool, htab


def _alloc_pool(capacity: int):
    pool = np.zeros((capacity, 7), dtype=np.int64)
    pool[:, P_NEXT] = np.arange(1, capacity + 1)
    pool[-1, P_NEXT] = -1
    hcap = 1
    while hcap < 2 * capacity:
        hcap *= 2
    htab = np.full((hcap, 2), -1, dtype=np.int64)
    return pool, htab


def grow(meta: np.ndarray, pool: np.ndarray, htab: np.ndarray):
    """Double the order pool and rebuild the id hash; returns (pool, htab)."""
    old = pool.shape[0]
    new_pool, new_htab = _alloc_pool(2 * old)
    new_pool[:old] = pool
    # old free list already ends in -1; chain the new slots in front of it
    new_pool[old:, P_NEXT] = np.arange(old + 1, 2 * old + 1)
    new_pool[-1, P_NEXT] = meta[FREE_HEAD]
    meta[FREE_HEAD] = old
    meta[POOL_CAP] = 2 * old
    meta[HMASK] = new_htab.shape[0] - 1
    _rehash(meta, new_pool, htab, new_htab)
    return new_pool, new_htab


@njit(cache=True)
def _rehash(meta, pool, old_htab, new_htab):
    for b in range(old_htab.shape[0]):
        if old_htab[b, H_KEY] >= 0:
            _h_insert(new_htab, meta[HMASK], old_htab[b, H_KEY], old_htab[b, H_VAL])


@njit(cache=True, inline="always")
def _hash(key, mask):
    return (key * 0x9E3779B1) & mask


@njit(cache=True)
def _h_find(htab, mask, key):
    b = _hash(key, mask)
    while True:
        k = htab[b, H_KEY]
        if k == key:
            return htab[b, H_VAL]
        if k < 0:
            return -1
        b = (b + 1) & mask


@njit(cache=True)
def _h_insert(htab, mask, key, val):
    b = _hash(key, mask)
    while htab[b, H_KEY] >= 0:
        b = (b + 1) & mask
    htab[b, H_KEY] = key
    htab[b, H_VAL] = val


@njit(cache=True)
def _h_delete(htab, mask, key):
    b = _hash(key, mask)
    while htab[b, H_KEY] != key:
        b = (b + 1) & mask
    # backward-shift deletion keeps every probe chain unbroken without tombstones
    j = b
    while True:
        htab[b, H_KEY] = -1
        while True:
            j = (j + 1) & mask
            k = htab[j, H_KEY]
            if k < 0:
                return
            home = _hash(k, mask)
            # move k into the hole b unless its home lies cyclically in (b, j]
            if b <= j:
                if b < home <= j:
                    continue
            elif home <= j or home > b:
                continue
            break
        htab[b, H_KEY] = htab[j, H_KEY]
        htab[b, H_VAL] = htab[j, H_VAL]
        b = j


@njit(cache=True, inline="always")
def _sidx(side):
    return 0 if side == BUY else 1


@njit(cache=True)
def _scan_best(meta, lev, si, start):
    """Next non-empty level from start going away from the spread; -1 if none."""
    n = meta[NLEV]
    if si == 0:
        if meta[N_BIDS] == 0:
            return -1
        i = start
        while i >= 0:
            if lev[0, i, HEAD] >= 0:
                return i
            i -= 1
        return -1
    if meta[N_ASKS] == 0:
        return -1
    i = start
    while i < n:
        if lev[1, i, HEAD] >= 0:
            return i
        i += 1
    return -1


@njit(cache=True)
def _unlink(meta, lev, pool, slot):
    """Remove a resting order from its level (pool slot and hash untouched)."""
    si = _sidx(pool[slot, P_SIDE])
    li = pool[slot, P_PRICE] - meta[BASE]
    prv = pool[slot, P_PREV]
    nxt = pool[slot, P_NEXT]
    if prv >= 0:
        pool[prv, P_NEXT] = nxt
    else:
        lev[si, li, HEAD] = nxt
    if nxt >= 0:
        pool[nxt, P_PREV] = prv
    else:
        lev[si, li, TAIL] = prv
    lev[si, li, QTY] -= pool[slot, P_QTY]
    meta[BID_TOTAL + si] -= pool[slot, P_QTY]
    if si == 0:
        meta[N_BIDS] -= 1
        if lev[0, li, HEAD] < 0 and meta[BEST_BID] == li:
            meta[BEST_BID] = _scan_best(meta, lev, 0, li - 1)
    else:
        meta[N_ASKS] -= 1
        if lev[1, li, HEAD] < 0 and meta[BEST_ASK] == li:
            meta[BEST_ASK] = _scan_best(meta, lev, 1, li + 1)


@njit(cache=True)
def _append(meta, lev, pool, slot):
    """Put a pool slot (fields set) at the tail of its price level."""
    si = _sidx(pool[slot, P_SIDE])
    li = pool[slot, P_PRICE] - meta[BASE]
    tail = lev[si, li, TAIL]
    pool[slot, P_PREV] = tail
    pool[slot, P_NEXT] = -1
    if tail >= 0:
        pool[tail, P_NEXT] = slot
    else:
        lev[si, li, HEAD] = slot
    lev[si, li, TAIL] = slot
    lev[si, li, QTY] += pool[slot, P_QTY]
    meta[BID_TOTAL + si] += pool[slot, P_QTY]
    if si == 0:
        meta[N_BIDS] += 1
        if meta[BEST_BID] < li:
            meta[BEST_BID] = li
    else:
        meta[N_ASKS] += 1
        if meta[BEST_ASK] < 0 or li < meta[BEST_ASK]:
            meta[BEST_ASK] = li


@njit(cache=True)
def _free(meta, pool, htab, slot):
    _h_delete(htab, meta[HMASK], pool[slot, P_ID])
    pool[slot, P_NEXT] = meta[FREE_HEAD]
    meta[FREE_HEAD] = slot
    meta[N_LIVE] -= 1


@njit(cache=True)
def _fits_band(meta, lev, price):
    """True if price has a level in the band, recentring the band when the book allows it."""
    n = meta[NLEV]
    li = price - meta[BASE]
    if 0 <= li < n:
        return True
    lo = price
    hi = price
    if meta[N_BIDS] > 0:
        i = 0
        while lev[0, i, HEAD] < 0:
            i += 1
        lo = min(lo, meta[BASE] + i)
        hi = max(hi, meta[BASE] + meta[BEST_BID])
    if meta[N_ASKS] > 0:
        i = n - 1
        while lev[1, i, HEAD] < 0:
            i -= 1
        hi = max(hi, meta[BASE] + i)
        lo = min(lo, meta[BASE] + meta[BEST_ASK])
    if hi - lo >= n:
        return False
    new_base = (lo + hi) // 2 - n // 2
    new_base = max(min(new_base, lo), hi - n + 1)
    new_base = max(new_base, 0)
    d = new_base - meta[BASE]
    if meta[N_BIDS] + meta[N_ASKS] > 0:
        old = lev.copy()
        lev[:, :, HEAD] = -1
        lev[:, :, TAIL] = -1
        lev[:, :, QTY] = 0
        for j in range(n):
            k = j + d
            if 0 <= k < n:
                lev[:, j, :] = old[:, k, :]
    meta[BASE] = new_base
    if meta[BEST_BID] >= 0:
        meta[BEST_BID] -= d
    if meta[BEST_ASK] >= 0:
        meta[BEST_ASK] -= d
    return True


@njit(cache=True)
def _emit(ev, ne, kind, reason, src, oid, owner, side, price, qty):
    e = ev[ne]
    e.kind = kind
    e.reason = reason
    e.src = src
    e.order_id = oid
    e.owner = owner
    e.side = side
    e.price = price
    e.qty = qty
    e.maker_id = -1
    e.maker_owner = -1
    e.maker_leaves = 0
    return ne + 1


@njit(cache=True)
def _fillable(meta, lev, pool, side, owner, limit, is_market, want):
    """Size an aggressor could take before hitting its limit or its own order (for FOK)."""
    osi = 1 - _sidx(side)
    got = 0
    li = meta[BEST_ASK] if osi == 1 else meta[BEST_BID]
    n = meta[NLEV]
    while 0 <= li < n and got < want:
        px = meta[BASE] + li
        if not is_market and ((side == BUY and px > limit) or (side == SELL and px < limit)):
            break
        slot = lev[osi, li, HEAD]
        while slot >= 0:
            if pool[slot, P_OWNER] == owner:
                return got
            got += pool[slot, P_QTY]
            if got >= want:
                return got
            slot = pool[slot, P_NEXT]
        li = li + 1 if osi == 1 else li - 1
    return got


@njit(cache=True)
def _match(meta, lev, pool, htab, ev, ne, src, oid, owner, side, limit, is_market, qty):
    """Take liquidity; returns (remaining, ne, stp_hit)."""
    osi = 1 - _sidx(side)
    rem = qty
    while rem > 0:
        li = meta[BEST_ASK] if osi == 1 else meta[BEST_BID]
        if li < 0:
            break
        px = meta[BASE] + li
        if not is_market and ((side == BUY and px > limit) or (side == SELL and px < limit)):
            break
        slot = lev[osi, li, HEAD]
        if pool[slot, P_OWNER] == owner:
            return rem, ne, True
        mq = pool[slot, P_QTY]
        tq = min(rem, mq)
        rem -= tq
        e = ev[ne]
        e.kind = TRADE
        e.reason = R_NONE
        e.src = src
        e.order_id = oid
        e.owner = owner
        e.side = side
        e.price = px
        e.qty = tq
        e.maker_id = pool[slot, P_ID]
        e.maker_owner = pool[slot, P_OWNER]
        e.maker_leaves = mq - tq
        ne += 1
        if tq == mq:
            _unlink(meta, lev, pool, slot)
            _free(meta, pool, htab, slot)
        else:
            pool[slot, P_QTY] = mq - tq
            lev[osi, li, QTY] -= tq
            meta[BID_TOTAL + osi] -= tq
    return rem, ne, False


@njit(cache=True)
def _enter_limit(meta, lev, pool, htab, ev, ne, src, oid, owner, side, price, qty, tif):
    """Match a limit order then rest, expire or STP-cancel its remainder (outcome emitted)."""
    rem, ne, stp = _match(meta, lev, pool, htab, ev, ne, src, oid, owner, side, price, False, qty)
    if rem == 0:
        return _emit(ev, ne, FILLED, R_NONE, src, oid, owner, side, price, 0)
    if stp:
        return _emit(ev, ne, STP_CANCELED, R_SELF_TRADE, src, oid, owner, side, price, rem)
    if tif in (IOC, FOK):
        return _emit(ev, ne, EXPIRED, R_NONE, src, oid, owner, side, price, rem)
    slot = meta[FREE_HEAD]
    meta[FREE_HEAD] = pool[slot, P_NEXT]
    meta[N_LIVE] += 1
    pool[slot, P_ID] = oid
    pool[slot, P_OWNER] = owner
    pool[slot, P_SIDE] = side
    pool[slot, P_PRICE] = price
    pool[slot, P_QTY] = rem
    _h_insert(htab, meta[HMASK], oid, slot)
    _append(meta, lev, pool, slot)
    return _emit(ev, ne, RESTED, R_NONE, src, oid, owner, side, price, rem)


@njit(cache=True)
def _crosses(meta, side, price):
    if side == BUY:
        return meta[BEST_ASK] >= 0 and meta[BASE] + meta[BEST_ASK] <= price
    return meta[BEST_BID] >= 0 and meta[BASE] + meta[BEST_BID] >= price


@njit(cache=True)
def process_one(meta, lev, pool, htab, o, src, ev, ne):
    """Apply one order record; append its events at ev[ne:]; return the new event count.

    The caller guarantees room: one free pool slot and N_LIVE + 2 free event rows.
    """
    kind = o.kind
    side = o.side
    owner = o.owner
    price = o.price
    qty = o.qty
    tif = o.tif
    if kind in (LIMIT, MARKET):
        oid = meta[NEXT_ID]
        meta[NEXT_ID] += 1
        if side != BUY and side != SELL:
            return _emit(ev, ne, REJECTED, R_BAD_SIDE, src, oid, owner, side, price, qty)
        if qty < 1:
            return _emit(ev, ne, REJECTED, R_BAD_QTY, src, oid, owner, side, price, qty)
        if tif < GTC or tif > POST_ONLY:
            return _emit(ev, ne, REJECTED, R_BAD_TIF, src, oid, owner, side, price, qty)
        if kind == MARKET:
            if tif == POST_ONLY:
                return _emit(ev, ne, REJECTED, R_BAD_TIF, src, oid, owner, side, price, qty)
            if (side == BUY and meta[N_ASKS] == 0) or (side == SELL and meta[N_BIDS] == 0):
                return _emit(ev, ne, REJECTED, R_EMPTY_SIDE, src, oid, owner, side, 0, qty)
            if tif == FOK and _fillable(meta, lev, pool, side, owner, 0, True, qty) < qty:
                return _emit(ev, ne, REJECTED, R_FOK_UNFILLABLE, src, oid, owner, side, 0, qty)
            rem, ne, stp = _match(meta, lev, pool, htab, ev, ne, src, oid, owner, side, 0, True,
                                  qty)
            if rem == 0:
                return _emit(ev, ne, FILLED, R_NONE, src, oid, owner, side, 0, 0)
            if stp:
                return _emit(ev, ne, STP_CANCELED, R_SELF_TRADE, src, oid, owner, side, 0, rem)
            return _emit(ev, ne, EXPIRED, R_NO_LIQUIDITY, src, oid, owner, side, 0, rem)
        if price < 1:
            return _emit(ev, ne, REJECTED, R_BAD_PRICE, src, oid, owner, side, price, qty)
        if tif == POST_ONLY and _crosses(meta, side, price):
            return _emit(ev, ne, REJECTED, R_POST_ONLY_CROSS, src, oid, owner, side, price, qty)
        if tif == FOK:
            if _fillable(meta, lev, pool, side, owner, price, False, qty) < qty:
                return _emit(ev, ne, REJECTED, R_FOK_UNFILLABLE, src, oid, owner, side, price,
                             qty)
        elif tif != IOC and not _fits_band(meta, lev, price):
            return _emit(ev, ne, REJECTED, R_OUT_OF_BAND, src, oid, owner, side, price, qty)
        return _enter_limit(meta, lev, pool, htab, ev, ne, src, oid, owner, side, price, qty, tif)
    if kind in (CANCEL, MODIFY):
        oid = o.order_id
        slot = _h_find(htab, meta[HMASK], oid) if oid >= 0 else -1
        if slot < 0:
            return _emit(ev, ne, REJECTED, R_UNKNOWN_ORDER, src, oid, owner, side, price, qty)
        if pool[slot, P_OWNER] != owner:
            return _emit(ev, ne, REJECTED, R_NOT_OWNER, src, oid, owner, side, price, qty)
        oside = pool[slot, P_SIDE]
        oprice = pool[slot, P_PRICE]
        oqty = pool[slot, P_QTY]
        if kind == CANCEL:
            _unlink(meta, lev, pool, slot)
            _free(meta, pool, htab, slot)
            return _emit(ev, ne, CANCELED, R_NONE, src, oid, owner, oside, oprice, oqty)
        if qty < 1:
            return _emit(ev, ne, REJECTED, R_BAD_QTY, src, oid, owner, oside, price, qty)
        if price < 1:
            return _emit(ev, ne, REJECTED, R_BAD_PRICE, src, oid, owner, oside, price, qty)
        if price == oprice and qty <= oqty:
            pool[slot, P_QTY] = qty
            lev[_sidx(oside), oprice - meta[BASE], QTY] -= oqty - qty
            meta[BID_TOTAL + _sidx(oside)] -= oqty - qty
            return _emit(ev, ne, MODIFIED, R_NONE, src, oid, owner, oside, price, qty)
        if not _fits_band(meta, lev, price):
            return _emit(ev, ne, REJECTED, R_OUT_OF_BAND, src, oid, owner, oside, price, qty)
        _unlink(meta, lev, pool, slot)
        _free(meta, pool, htab, slot)
        return _enter_limit(meta, lev, pool, htab, ev, ne, src, oid, owner, oside, price, qty,
                            GTC)
    return _emit(ev, ne, REJECTED, R_BAD_KIND, src, -1, owner, side, price, qty)


@njit(cache=True)
def process_batch(meta, lev, pool, htab, orders, i0, ev, ne):
    """Apply orders[i0:] until done or out of room; returns (next input index, event count)."""
    n = orders.shape[0]
    cap = ev.shape[0]
    i = i0
    while i < n:
        if meta[FREE_HEAD] < 0 or cap - ne < meta[N_LIVE] + 2:
            return i, ne
        ne = process_one(meta, lev, pool, htab, orders[i], i, ev, ne)
        i += 1
    return i, ne


@njit(cache=True)
def depth_levels(meta, lev, side, n_levels, px_out, qty_out):
    """Best n_levels (price tick, size) of a side into the outputs; returns levels found."""
    si = _sidx(side)
    li = meta[BEST_BID] if si == 0 else meta[BEST_ASK]
    k = 0
    left = meta[BID_TOTAL + si]  # stop once every resting lot is seen: no scan of empty band
    while left > 0 and k < n_levels:
        if lev[si, li, HEAD] >= 0:
            px_out[k] = meta[BASE] + li
            qty_out[k] = lev[si, li, QTY]
            left -= lev[si, li, QTY]
            k += 1
        li = li - 1 if si == 0 else li + 1
    return k


@njit(cache=True)
def resting_orders(meta, lev, pool):
    """All resting orders in priority order: rows (side, price, id, owner, qty), bids first."""
    out = np.empty((meta[N_LIVE], 5), dtype=np.int64)
    k = 0
    for si in range(2):
        li = meta[BEST_BID] if si == 0 else meta[BEST_ASK]
        left = meta[N_BIDS + si]
        while left > 0:
            slot = lev[si, li, HEAD]
            while slot >= 0:
                out[k, 0] = pool[slot, P_SIDE]
                out[k, 1] = pool[slot, P_PRICE]
                out[k, 2] = pool[slot, P_ID]
                out[k, 3] = pool[slot, P_OWNER]
                out[k, 4] = pool[slot, P_QTY]
                k += 1
                left -= 1
                slot = pool[slot, P_NEXT]
            li = li - 1 if si == 0 else li + 1
    return out


class OrderBook:
    """A matching engine instance: batch and single-order entry over the compiled kernel.

    ``band_ticks`` is the width of the price window held as a level array; ``capacity`` the
    initial order pool (it doubles on demand).
    """

    def __init__(self, band_ticks: int = 1 << 16, capacity: int = 4096, base_tick: int = 0):
        self.meta, self.lev, self.pool, self.htab = new_state(band_ticks, capacity, base_tick)
        self._ev = np.zeros(capacity + 64, dtype=EVENT_DTYPE)

    def submit_many(self, orders: np.ndarray) -> np.ndarray:
        """Apply an ORDER_DTYPE array in order; return all events (EVENT_DTYPE), src = row."""
        if orders.dtype != ORDER_DTYPE:
            raise TypeError(f"orders must have dtype sim.orders.ORDER_DTYPE, got {orders.dtype}")
        chunks = []
        i = 0
        n = orders.shape[0]
        while True:
            i, ne = process_batch(self.meta, self.lev, self.pool, self.htab, orders, i, self._ev, 0)
            chunks.append(self._ev[:ne].copy())
            if i >= n:
                break
            if self.meta[FREE_HEAD] < 0:
                self.pool, self.htab = grow(self.meta, self.pool, self.htab)
            if self._ev.shape[0] < self.meta[N_LIVE] + 64:
                self._ev = np.zeros(2 * (self.meta[N_LIVE] + 64), dtype=EVENT_DTYPE)
        return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)

    def submit(self, kind: int, side: int = BUY, price: int = 0, qty: int = 0, *,
               owner: int = 0, tif: int = GTC, order_id: int = -1) -> np.ndarray:
        """Apply one order; return its events."""
        o = np.zeros(1, dtype=ORDER_DTYPE)
        o[0] = (kind, side, tif, owner, price, qty, order_id)
        return self.submit_many(o)

    @property
    def best_bid(self) -> int:
        """Best bid tick, or -1 when there are no bids."""
        b = self.meta[BEST_BID]
        return int(self.meta[BASE] + b) if b >= 0 else -1

    @property
    def best_ask(self) -> int:
        """Best ask tick, or -1 when there are no asks."""
        a = self.meta[BEST_ASK]
        return int(self.meta[BASE] + a) if a >= 0 else -1

    @property
    def next_id(self) -> int:
        return int(self.meta[NEXT_ID])

    def depth(self, side: int, n_levels: int) -> tuple[np.ndarray, np.ndarray]:
        """(price ticks, sizes) of the best n_levels of a side."""
        px = np.zeros(n_levels, dtype=np.int64)
        qt = np.zeros(n_levels, dtype=np.int64)
        k = depth_levels(self.meta, self.lev, side, n_levels, px, qt)
        return px[:k], qt[:k]

    def resting(self) -> np.ndarray:
        """Resting orders in priority order, rows (side, price, id, owner, qty), bids first."""
        return resting_orders(self.meta, self.lev, self.pool)
