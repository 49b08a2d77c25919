"""Plain-Python reference matching engine: the specification the compiled book is tested against.

Deliberately naive (a dict of price -> list of [id, owner, qty] per side, linear scans) so each
rule can be read off the code. Same rules and event stream as ``sim.book`` (see its docstring),
including the band rule: an order that would rest is rejected (OUT_OF_BAND) when the resting
book's prices plus its own would span ``band_ticks`` ticks or more.
"""

from __future__ import annotations

import numpy as np

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
    STP_CANCELED,
    TRADE,
)


class ReferenceBook:
    """Naive engine with the same rules as ``sim.book.OrderBook``."""

    def __init__(self, band_ticks: int = 1 << 16):
        self.band = band_ticks
        self.levels: dict[int, dict[int, list[list[int]]]] = {BUY: {}, -BUY: {}}
        self.where: dict[int, tuple[int, int]] = {}  # id -> (side, price)
        self.next_id = 1

    # queries ---------------------------------------------------------------------------
    def best(self, side: int) -> int | None:
        lv = self.levels[side]
        if not lv:
            return None
        return max(lv) if side == BUY else min(lv)

    def resting(self) -> np.ndarray:
        rows = []
        for side in (BUY, -BUY):
            for price in sorted(self.levels[side], reverse=side == BUY):
                for oid, owner, qty in self.levels[side][price]:
                    rows.append((side, price, oid, owner, qty))
        return np.array(rows, dtype=np.int64).reshape(-1, 5)

    # internals -------------------------------------------------------------------------
    def _in_band(self, price: int) -> bool:
        prices = [p for side in self.levels.values() for p in side] + [price]
        return max(prices) - min(prices) < self.band

    def _takeable(self, side: int, price: int | None) -> list[tuple[int, list[int]]]:
        """Opposite resting orders an aggressor may hit, in priority order."""
        opp = -side
        out = []
        for p in sorted(self.levels[opp], reverse=opp == BUY):
            if price is not None and (p > price if side == BUY else p < price):
                break
            out.extend((p, entry) for entry in self.levels[opp][p])
        return out

    def _remove(self, oid: int) -> None:
        side, price = self.where.pop(oid)
        level = self.levels[side][price]
        level[:] = [e for e in level if e[0] != oid]
        if not level:
            del self.levels[side][price]

    def _match(self, ev, src, oid, owner, side, price, qty):
        rem = qty
        for p, entry in self._takeable(side, price):
            if rem == 0:
                break
            if entry[1] == owner:
                return rem, True
            tq = min(rem, entry[2])
            rem -= tq
            entry[2] -= tq
            ev.append((TRADE, R_NONE, src, oid, owner, side, p, tq, entry[0], entry[1], entry[2]))
            if entry[2] == 0:
                self._remove(entry[0])
        return rem, False

    def _fillable(self, side, owner, price, want) -> bool:
        got = 0
        for _, entry in self._takeable(side, price):
            if entry[1] == owner:
                break
            got += entry[2]
        return got >= want

    def _limit(self, ev, src, oid, owner, side, price, qty, tif):
        rem, stp = self._match(ev, src, oid, owner, side, price, qty)
        if rem == 0:
            ev.append((FILLED, R_NONE, src, oid, owner, side, price, 0))
        elif stp:
            ev.append((STP_CANCELED, R_SELF_TRADE, src, oid, owner, side, price, rem))
        elif tif in (IOC, FOK):
            ev.append((EXPIRED, R_NONE, src, oid, owner, side, price, rem))
        else:
            self.levels[side].setdefault(price, []).append([oid, owner, rem])
            self.where[oid] = (side, price)
            ev.append((RESTED, R_NONE, src, oid, owner, side, price, rem))

    def _one(self, ev, src, kind, side, tif, owner, price, qty, target):
        if kind in (LIMIT, MARKET):
            oid = self.next_id
            self.next_id += 1
            rej = None
            if side not in (BUY, -BUY):
                rej = R_BAD_SIDE
            elif qty < 1:
                rej = R_BAD_QTY
            elif tif not in (GTC, IOC, FOK, POST_ONLY) or (kind == MARKET and tif == POST_ONLY):
                rej = R_BAD_TIF
            if rej is not None:
                ev.append((REJECTED, rej, src, oid, owner, side, price, qty))
                return
            if kind == MARKET:
                if not self.levels[-side]:
                    ev.append((REJECTED, R_EMPTY_SIDE, src, oid, owner, side, 0, qty))
                    return
                if tif == FOK and not self._fillable(side, owner, None, qty):
                    ev.append((REJECTED, R_FOK_UNFILLABLE, src, oid, owner, side, 0, qty))
                    return
                rem, stp = self._match(ev, src, oid, owner, side, None, qty)
                if rem == 0:
                    ev.append((FILLED, R_NONE, src, oid, owner, side, 0, 0))
                elif stp:
                    ev.append((STP_CANCELED, R_SELF_TRADE, src, oid, owner, side, 0, rem))
                else:
                    ev.append((EXPIRED, R_NO_LIQUIDITY, src, oid, owner, side, 0, rem))
                return
            best_opp = self.best(-side)
            if price < 1:
                rej = R_BAD_PRICE
            elif tif == POST_ONLY and best_opp is not None and (
                best_opp <= price if side == BUY else best_opp >= price
            ):
                rej = R_POST_ONLY_CROSS
            elif tif == FOK and not self._fillable(side, owner, price, qty):
                rej = R_FOK_UNFILLABLE
            elif tif in (GTC, POST_ONLY) and not self._in_band(price):
                rej = R_OUT_OF_BAND
            if rej is not None:
                ev.append((REJECTED, rej, src, oid, owner, side, price, qty))
                return
            self._limit(ev, src, oid, owner, side, price, qty, tif)
            return
        if kind in (CANCEL, MODIFY):
            if target not in self.where:
                ev.append((REJECTED, R_UNKNOWN_ORDER, src, target, owner, side, price, qty))
                return
            oside, oprice = self.where[target]
            entry = next(e for e in self.levels[oside][oprice] if e[0] == target)
            if entry[1] != owner:
                ev.append((REJECTED, R_NOT_OWNER, src, target, owner, side, price, qty))
                return
            if kind == CANCEL:
                self._remove(target)
                ev.append((CANCELED, R_NONE, src, target, owner, oside, oprice, entry[2]))
                return
            if qty < 1 or price < 1:
                reason = R_BAD_QTY if qty < 1 else R_BAD_PRICE
                ev.append((REJECTED, reason, src, target, owner, oside, price, qty))
                return
            if price == oprice and qty <= entry[2]:
                entry[2] = qty
                ev.append((MODIFIED, R_NONE, src, target, owner, oside, price, qty))
                return
            if not self._in_band(price):
                ev.append((REJECTED, R_OUT_OF_BAND, src, target, owner, oside, price, qty))
                return
            self._remove(target)
            self._limit(ev, src, target, owner, oside, price, qty, GTC)
            return
        ev.append((REJECTED, R_BAD_KIND, src, -1, owner, side, price, qty))

    def submit_many(self, orders: np.ndarray) -> np.ndarray:
        """Apply an ORDER_DTYPE array in order; return its events as EVENT_DTYPE."""
        if orders.dtype != ORDER_DTYPE:
            raise TypeError(f"orders must have dtype sim.orders.ORDER_DTYPE, got {orders.dtype}")
        ev: list[tuple] = []
        for i, o in enumerate(orders.tolist()):
            kind, side, tif, owner, price, qty, target = o
            self._one(ev, i, kind, side, tif, owner, price, qty, target)
        out = np.zeros(len(ev), dtype=EVENT_DTYPE)
        for j, e in enumerate(ev):
            row = tuple(e) + (-1, -1, 0) if len(e) == 8 else tuple(e)
            out[j] = row
        return out
