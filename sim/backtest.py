"""Backtest mode: agents' orders rest in and trade against the replayed real book.

Each step the replay hands in the real book (levels best first, integer ticks/lots) and the real
trades since the last step:

    {"bid_px", "bid_qty", "ask_px", "ask_qty"}  and optionally  {"trade_px", "trade_qty",
    "trade_side"}  (trade_side = aggressor side, +1 buy / -1 sell)

Order of work in a step: (1) resting agent orders are updated from the real market's change --
real trades at their price consume the queue ahead first and then fill them, trades through
their price or a real touch crossing it fill them, shrinking levels move them forward as the
queue model says; (2) agents decide on the real book, in random order; (3) orders whose latency
has elapsed reach the venue: a marketable part takes displayed real liquidity (each displayed
lot at most once per step), the rest rests behind the displayed size at its price.

Limit: the real market does not react to agents (their trades do not remove real liquidity in
later steps, their quotes attract no flow); results are only as good as that assumption is for
the sizes traded. The counterparty of every agent fill is owner REAL_MARKET (-2).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from sim.accounts import _drop_open, _set_open, apply_events, find_open
from sim.agents.base import N_VIEW, TYPE_NAMES, V_ASK, V_ASKQ, V_BID, V_BIDQ, V_LAST, V_MID
from sim.latency import ConstantLatency
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
    R_BAD_QTY,
    R_EMPTY_SIDE,
    R_FOK_UNFILLABLE,
    R_NO_LIQUIDITY,
    R_NONE,
    R_NOT_OWNER,
    R_POST_ONLY_CROSS,
    R_UNKNOWN_ORDER,
    REJECTED,
    RESTED,
    TRADE,
)
from sim.queue_models import RiskAverseQueue
from sim.streams import uniform
from sim.synthetic import MAX_ORDERS_PER_AGENT, agent_orders, mark_by_type

REAL_MARKET = -2


@njit(cache=True)
def decide_all(x, view, a_type, a_param, a_scratch, fn, states, sched, inv, open_, perm,
               n_agents, obuf, out):
    """All agents act once on the same view, in a fresh random order; orders into out."""
    for k in range(n_agents - 1, 0, -1):
        j = int(uniform(fn, sched) * (k + 1))
        tmp = perm[k]
        perm[k] = perm[j]
        perm[j] = tmp
    no = 0
    for k in range(n_agents):
        i = perm[k]
        n = agent_orders(i, a_type[i], a_param, view, x, inv[i], open_, a_scratch, fn,
                         states[i], obuf)
        for j in range(n):
            o = out[no]
            src = obuf[j]
            o.kind = src.kind
            o.side = src.side
            o.tif = src.tif
            o.owner = src.owner
            o.price = src.price
            o.qty = src.qty
            o.order_id = src.order_id
            no += 1
    return no


def _levels(book: dict, key: str) -> np.ndarray:
    return np.asarray(book.get(key, ()), dtype=np.int64)


def _depth_at(px_levels, qty_levels, prices, side):
    """Displayed size at each price (0 if inside the shown range but absent, inf if beyond)."""
    out = np.zeros(prices.shape, dtype=np.float64)
    if px_levels.size == 0:
        return out
    match = px_levels[None, :] == prices[:, None]
    out[:] = (match * qty_levels[None, :]).sum(axis=1)
    beyond = prices < px_levels[-1] if side == BUY else prices > px_levels[-1]
    out[beyond & ~match.any(axis=1)] = np.inf
    return out


class BacktestVenue:
    """The real venue as seen by agents: queue position, latency, fills, fees."""

    def __init__(self, queue_model=None, latency=None):
        self.queue_model = queue_model if queue_model is not None else RiskAverseQueue()
        self.latency = latency if latency is not None else ConstantLatency(0)

    def bind(self, model) -> None:
        """Attach to the model whose agents trade here (called by MarketModel)."""
        self.model = model
        self.next_id = 1
        self.maker_rate = model.engine.maker_fee_bps / 1e4
        self.taker_rate = model.engine.taker_fee_bps / 1e4
        # resting agent orders, columns
        self.r_id = np.zeros(0, np.int64)
        self.r_owner = np.zeros(0, np.int64)
        self.r_side = np.zeros(0, np.int64)
        self.r_price = np.zeros(0, np.int64)
        self.r_qty = np.zeros(0, np.int64)
        self.r_ahead = np.zeros(0, np.float64)
        self.pending: list[tuple] = []  # (arrival_ts, seq, kind, side, tif, owner, px, qty, id)
        self._seq = 0
        self._prev: dict | None = None
        self._obuf = np.zeros(MAX_ORDERS_PER_AGENT, dtype=ORDER_DTYPE)
        self._out = np.zeros(MAX_ORDERS_PER_AGENT * max(model.n_agents, 1), dtype=ORDER_DTYPE)

    # (1) real market moves ------------------------------------------------------------------
    def _queue_update(self, book: dict, ev: list) -> None:
        if self.r_id.size == 0:
            return
        side, price = self.r_side, self.r_price
        tpx, tq, ts = (_levels(book, k) for k in ("trade_px", "trade_qty", "trade_side"))
        buy = side == BUY
        # trades hitting our side: sell aggressors for our bids, buy aggressors for our asks
        hits = (ts[None, :] == -side[:, None])
        at_px = (tpx[None, :] == price[:, None]) & hits
        traded_at = (at_px * tq[None, :]).sum(axis=1).astype(np.float64)
        through = np.where(buy, ((tpx[None, :] < price[:, None]) & hits).any(axis=1),
                           ((tpx[None, :] > price[:, None]) & hits).any(axis=1))
        bpx, apx = _levels(book, "bid_px"), _levels(book, "ask_px")
        if apx.size:
            through |= buy & (apx[0] <= price)
        if bpx.size:
            through |= ~buy & (bpx[0] >= price)
        ahead = self.r_ahead - traded_at
        fill = np.where(through, self.r_qty, np.clip(-ahead, 0, self.r_qty)).astype(np.int64)
        ahead = np.maximum(ahead, 0.0)
        prev = self._prev
        if prev is not None:
            new_d = np.where(buy, _depth_at(bpx, _levels(book, "bid_qty"), price, BUY),
                             _depth_at(apx, _levels(book, "ask_qty"), price, -BUY))
            old_d = np.where(buy, _depth_at(_levels(prev, "bid_px"), _levels(prev, "bid_qty"),
                                            price, BUY),
                             _depth_at(_levels(prev, "ask_px"), _levels(prev, "ask_qty"),
                                       price, -BUY))
            known = np.isfinite(new_d) & np.isfinite(old_d)
            left = np.where(known, old_d - traded_at, 0.0)
            cancelled = np.where(known, np.maximum(left - new_d, 0.0), 0.0)
            behind = np.maximum(left - ahead, 0.0)
            moved = self.queue_model.after_cancels(ahead, behind, cancelled, new_d)
            ahead = np.where(known, moved, ahead)
        self.r_ahead = ahead
        for k in np.flatnonzero(fill > 0):
            q = int(fill[k])
            leaves = int(self.r_qty[k]) - q
            ev.append((TRADE, R_NONE, 0, -1, REAL_MARKET, -int(side[k]), int(price[k]), q,
                       int(self.r_id[k]), int(self.r_owner[k]), leaves))
        self.r_qty = self.r_qty - fill
        self._keep(self.r_qty > 0)

    def _keep(self, mask) -> None:
        for name in ("r_id", "r_owner", "r_side", "r_price", "r_qty", "r_ahead"):
            setattr(self, name, getattr(self, name)[mask])

    # (3) orders reach the venue -------------------------------------------------------------
    def _take(self, book, taken, side, limit, qty, oid, owner, ev):
        """Take displayed liquidity up to limit (None: market); returns size left."""
        key = "ask" if side == BUY else "bid"
        px, qt = _levels(book, key + "_px"), _levels(book, key + "_qty")
        rem = qty
        for j in range(px.size):
            if rem == 0 or (limit is not None and (px[j] > limit if side == BUY
                                                   else px[j] < limit)):
                break
            avail = int(qt[j]) - taken[key][j]
            tq = min(rem, avail)
            if tq > 0:
                taken[key][j] += tq
                rem -= tq
                ev.append((TRADE, R_NONE, 0, oid, owner, side, int(px[j]), tq, -1,
                           REAL_MARKET, 0))
        return rem

    def _available(self, book, taken, side, limit):
        key = "ask" if side == BUY else "bid"
        px, qt = _levels(book, key + "_px"), _levels(book, key + "_qty")
        ok = px <= limit if side == BUY else px >= limit
        return int((qt[ok] - taken[key][: px.size][ok]).sum())

    def _rest(self, book, oid, owner, side, price, qty, ev) -> None:
        key = "bid" if side == BUY else "ask"
        px, qt = _levels(book, key + "_px"), _levels(book, key + "_qty")
        ahead = float(qt[px == price].sum())
        self.r_id = np.append(self.r_id, oid)
        self.r_owner = np.append(self.r_owner, owner)
        self.r_side = np.append(self.r_side, side)
        self.r_price = np.append(self.r_price, price)
        self.r_qty = np.append(self.r_qty, qty)
        self.r_ahead = np.append(self.r_ahead, ahead)
        ev.append((RESTED, R_NONE, 0, oid, owner, side, price, qty))

    def _limit(self, book, taken, oid, owner, side, price, qty, tif, ev) -> None:
        rem = self._take(book, taken, side, price, qty, oid, owner, ev)
        if rem == 0:
            ev.append((FILLED, R_NONE, 0, oid, owner, side, price, 0))
        elif tif in (IOC, FOK):
            ev.append((EXPIRED, R_NONE, 0, oid, owner, side, price, rem))
        else:
            self._rest(book, oid, owner, side, price, rem, ev)

    def _arrive(self, book, taken, order, ev) -> None:
        kind, side, tif, owner, price, qty, oid = order
        if kind in (LIMIT, MARKET):
            opp = _levels(book, ("ask" if side == BUY else "bid") + "_px")
            reason = None
            if qty < 1:
                reason = R_BAD_QTY
            elif kind == MARKET and opp.size == 0:
                reason = R_EMPTY_SIDE
            elif kind == LIMIT and tif == POST_ONLY and opp.size and (
                    opp[0] <= price if side == BUY else opp[0] >= price):
                reason = R_POST_ONLY_CROSS
            elif tif == FOK and self._available(
                    book, taken, side, price if kind == LIMIT else
                    (np.iinfo(np.int64).max if side == BUY else 0)) < qty:
                reason = R_FOK_UNFILLABLE
            if reason is not None:
                ev.append((REJECTED, reason, 0, oid, owner, side, price, qty))
                _drop_open(self.model.accounts.open, owner, oid)
                return
            if kind == MARKET:
                rem = self._take(book, taken, side, None, qty, oid, owner, ev)
                if rem == 0:
                    ev.append((FILLED, R_NONE, 0, oid, owner, side, 0, 0))
                else:
                    ev.append((EXPIRED, R_NO_LIQUIDITY, 0, oid, owner, side, 0, rem))
                return
            self._limit(book, taken, oid, owner, side, price, qty, tif, ev)
            return
        k = np.flatnonzero(self.r_id == oid)
        if k.size == 0:
            ev.append((REJECTED, R_UNKNOWN_ORDER, 0, oid, owner, side, price, qty))
            return
        k = int(k[0])
        if self.r_owner[k] != owner:
            ev.append((REJECTED, R_NOT_OWNER, 0, oid, owner, side, price, qty))
            return
        oside, oprice, oqty = int(self.r_side[k]), int(self.r_price[k]), int(self.r_qty[k])
        if kind == CANCEL:
            self._keep(self.r_id != oid)
            ev.append((CANCELED, R_NONE, 0, oid, owner, oside, oprice, oqty))
            return
        if kind != MODIFY or qty < 1 or price < 1:
            ev.append((REJECTED, R_BAD_QTY, 0, oid, owner, oside, price, qty))
            return
        if price == oprice and qty <= oqty:
            self.r_qty[k] = qty  # queue position kept
            ev.append((MODIFIED, R_NONE, 0, oid, owner, oside, price, qty))
            return
        self._keep(self.r_id != oid)
        self._limit(book, taken, oid, owner, oside, price, qty, GTC, ev)

    # step loop -----------------------------------------------------------------------------
    def submit(self, orders: np.ndarray, ts: int) -> None:
        """Send orders (ORDER_DTYPE) at time ts: new ones get ids, all wait out the latency.

        Agents send through here; a scripted strategy may too (owner = an agent index).
        """
        if orders.size == 0:
            return
        arrival = ts + self.latency.delay_ns(np.full(orders.size, ts, dtype=np.int64))
        open_ = self.model.accounts.open
        for o, at in zip(orders.tolist(), arrival.tolist(), strict=True):
            kind, side, tif, owner, price, qty, oid = o
            if kind in (LIMIT, MARKET):
                oid = self.next_id
                self.next_id += 1
                if kind == LIMIT and tif in (GTC, POST_ONLY):
                    _set_open(open_, owner, oid, side, price, qty)
            elif kind == MODIFY:
                k = find_open(open_, owner, oid)
                if k >= 0:
                    open_[owner, k, 2] = price
                    open_[owner, k, 3] = qty
            self.pending.append((at, self._seq, kind, side, tif, owner, price, qty, oid))
            self._seq += 1

    def run(self, xs: np.ndarray, ts: np.ndarray, books: list[dict], first: int):
        m = self.model
        acc = m.accounts
        k = xs.shape[0]
        n_types = len(TYPE_NAMES)
        out = {
            "bid": np.full(k, -1, np.int64), "ask": np.full(k, -1, np.int64),
            "bid_depth": np.zeros(k, np.int64), "ask_depth": np.zeros(k, np.int64),
            "last": np.zeros(k, np.int64), "inv": np.zeros((k, n_types), np.int64),
            "pnl": np.zeros((k, n_types), np.float64),
        }
        view = np.empty(N_VIEW, dtype=np.float64)
        nd = m.engine.depth_levels
        for t in range(k):
            book = books[t]
            bpx, bq = _levels(book, "bid_px"), _levels(book, "bid_qty")
            apx, aq = _levels(book, "ask_px"), _levels(book, "ask_qty")
            if bpx.shape != bq.shape or apx.shape != aq.shape:
                raise ValueError(f"backtest book at step {first + t}: price/size lengths differ")
            ev: list[tuple] = []
            self._queue_update(book, ev)
            tpx = _levels(book, "trade_px")
            if tpx.size:
                m._last_px = int(tpx[-1])
            elif m._last_px < 0 and bpx.size and apx.size:
                m._last_px = (int(bpx[0]) + int(apx[0])) // 2
            view[V_BID] = bpx[0] if bpx.size else -1.0
            view[V_ASK] = apx[0] if apx.size else -1.0
            view[V_BIDQ] = bq[0] if bq.size else 0.0
            view[V_ASKQ] = aq[0] if aq.size else 0.0
            view[V_MID] = 0.5 * (bpx[0] + apx[0]) if bpx.size and apx.size else np.nan
            view[V_LAST] = m._last_px
            no = decide_all(xs[t], view, m.a_type, m.a_param, m.a_scratch, m._fn, m._states,
                            m._sched, acc.inventory, acc.open, m._perm, m.n_agents, self._obuf,
                            self._out)
            self.submit(self._out[:no], int(ts[t]))
            taken = {"bid": np.zeros(bpx.size, np.int64), "ask": np.zeros(apx.size, np.int64)}
            due = sorted(p for p in self.pending if p[0] <= ts[t])
            self.pending = [p for p in self.pending if p[0] > ts[t]]
            for p in due:
                self._arrive(book, taken, p[2:], ev)
            self._apply(ev, first + t)
            self._prev = book
            out["bid"][t] = view[V_BID]
            out["ask"][t] = view[V_ASK]
            out["bid_depth"][t] = bq[:nd].sum()
            out["ask_depth"][t] = aq[:nd].sum()
            out["last"][t] = m._last_px
            mark = view[V_MID] if np.isfinite(view[V_MID]) else float(m._last_px)
            mark_by_type(m.a_type, acc.inventory, acc.cash, mark, n_types, out["inv"][t],
                         out["pnl"][t])
        return out

    def _apply(self, ev: list, step: int) -> None:
        if not ev:
            return
        m = self.model
        arr = np.zeros(len(ev), dtype=EVENT_DTYPE)
        for j, e in enumerate(ev):
            arr[j] = e if len(e) == 11 else tuple(e) + (-1, -1, 0)
        need = m._nt + len(ev)
        if m._trades.shape[0] < need:
            bigger = np.zeros((2 * need, 6), dtype=np.int64)
            bigger[: m._nt] = m._trades[: m._nt]
            m._trades = bigger
        acc = m.accounts
        m._nt = apply_events(arr, arr.shape[0], acc.inventory, acc.cash, acc.fees, acc.open,
                             self.maker_rate, self.taker_rate, m._trades, m._nt, step)
