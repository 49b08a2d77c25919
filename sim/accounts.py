"""Per-agent accounts (inventory, cash, fees, open orders) updated from book events.

Units: inventory in lots, cash and fees in tick*lot units (multiply by tick_size * lot_size for
quote currency); floats because fees are fractional. Owners outside [0, n) (the real market in a
backtest) have no account and are skipped.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from sim.agents.base import MAX_OPEN
from sim.orders import CANCELED, EXPIRED, FILLED, MODIFIED, RESTED, STP_CANCELED, TRADE

# open-order row fields
O_ID = 0
O_SIDE = 1
O_PRICE = 2
O_QTY = 3

# trade row fields (int64 table written by the kernels)
T_STEP = 0
T_PRICE = 1
T_QTY = 2
T_SIDE = 3  # aggressor side
T_TAKER = 4
T_MAKER = 5
N_TRADE_FIELDS = 6


class Accounts:
    """Arrays for n owners; row index = owner id in the book."""

    def __init__(self, n: int):
        self.inventory = np.zeros(n, dtype=np.int64)
        self.cash = np.zeros(n, dtype=np.float64)
        self.fees = np.zeros(n, dtype=np.float64)
        self.open = np.full((n, MAX_OPEN, 4), -1, dtype=np.int64)


@njit(cache=True)
def find_open(open_, owner, oid):
    for k in range(MAX_OPEN):
        if open_[owner, k, O_ID] == oid:
            return k
    return -1


@njit(cache=True)
def _set_open(open_, owner, oid, side, price, qty):
    k = find_open(open_, owner, oid)
    if k < 0:
        k = find_open(open_, owner, -1)
    if k >= 0:  # agents keep a free row before placing (see each rule)
        open_[owner, k, O_ID] = oid
        open_[owner, k, O_SIDE] = side
        open_[owner, k, O_PRICE] = price
        open_[owner, k, O_QTY] = qty


@njit(cache=True)
def clear_open(open_, owner, k):
    open_[owner, k, O_ID] = -1
    open_[owner, k, O_SIDE] = 0
    open_[owner, k, O_PRICE] = -1
    open_[owner, k, O_QTY] = 0


@njit(cache=True)
def _drop_open(open_, owner, oid):
    k = find_open(open_, owner, oid)
    if k >= 0:
        clear_open(open_, owner, k)


@njit(cache=True)
def apply_events(ev, ne, inv, cash, fees, open_, maker_rate, taker_rate, trades, nt, step):
    """Book events -> accounts and open orders; trades appended to trades[nt:]; returns nt."""
    n = inv.shape[0]
    for j in range(ne):
        e = ev[j]
        kind = e.kind
        o = e.owner
        mine = 0 <= o < n
        if kind == TRADE:
            m = e.maker_owner
            notional = float(e.price) * float(e.qty)
            if mine:
                inv[o] += e.side * e.qty
                cash[o] -= e.side * notional + taker_rate * notional
                fees[o] += taker_rate * notional
            if 0 <= m < n:
                inv[m] -= e.side * e.qty
                cash[m] += e.side * notional - maker_rate * notional
                fees[m] += maker_rate * notional
                if e.maker_leaves == 0:
                    _drop_open(open_, m, e.maker_id)
                else:
                    k = find_open(open_, m, e.maker_id)
                    if k >= 0:
                        open_[m, k, O_QTY] = e.maker_leaves
            trades[nt, 0] = step
            trades[nt, 1] = e.price
            trades[nt, 2] = e.qty
            trades[nt, 3] = e.side
            trades[nt, 4] = o
            trades[nt, 5] = m
            nt += 1
        elif not mine:
            continue
        elif kind == RESTED:
            _set_open(open_, o, e.order_id, e.side, e.price, e.qty)
        elif kind == MODIFIED:
            k = find_open(open_, o, e.order_id)
            if k >= 0:
                open_[o, k, O_QTY] = e.qty
        elif kind in (CANCELED, FILLED, EXPIRED, STP_CANCELED):
            _drop_open(open_, o, e.order_id)
    return nt
