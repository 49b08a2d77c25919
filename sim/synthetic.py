"""The synthetic-mode step kernel: agents act in random order and trade on the compiled book.

One call runs a block of steps entirely in compiled code; ``MarketModel.step`` runs a block of
one, so stepping one by one or in blocks gives identical results. The book changes only through
agents' orders: prices are emergent, nothing resets them to the real price.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from sim.accounts import apply_events
from sim.agents import arbitrageur, informed, market_maker, noise
from sim.agents.base import (
    ARBITRAGEUR,
    INFORMED,
    MARKET_MAKER,
    NOISE,
    V_ASK,
    V_ASKQ,
    V_BID,
    V_BIDQ,
    V_LAST,
    V_MID,
)
from sim.book import (
    BASE,
    BEST_ASK,
    BEST_BID,
    FREE_HEAD,
    N_LIVE,
    POOL_CAP,
    QTY,
    depth_levels,
    process_one,
)
from sim.orders import BUY, SELL
from sim.streams import uniform

MAX_ORDERS_PER_AGENT = 8


@njit(cache=True, inline="always")
def agent_orders(i, typ, p, view, x, inv, open_, scratch, fn, st, out):
    """Run agent i's rule; its orders land in out[:n]; returns n."""
    if typ == MARKET_MAKER:
        return market_maker.act(i, p, view, x, inv, open_, scratch, fn, st, out, 0)
    if typ == INFORMED:
        return informed.act(i, p, view, x, inv, open_, scratch, fn, st, out, 0)
    if typ == NOISE:
        return noise.act(i, p, view, x, inv, open_, scratch, fn, st, out, 0)
    if typ == ARBITRAGEUR:
        return arbitrageur.act(i, p, view, x, inv, open_, scratch, fn, st, out, 0)
    return 0


@njit(cache=True, inline="always")
def book_view(meta, lev, last_px, view):
    """Fill the market view vector from the book."""
    b = meta[BEST_BID]
    a = meta[BEST_ASK]
    view[V_BID] = meta[BASE] + b if b >= 0 else -1.0
    view[V_ASK] = meta[BASE] + a if a >= 0 else -1.0
    view[V_BIDQ] = lev[0, b, QTY] if b >= 0 else 0.0
    view[V_ASKQ] = lev[1, a, QTY] if a >= 0 else 0.0
    view[V_MID] = 0.5 * (view[V_BID] + view[V_ASK]) if (a >= 0 and b >= 0) else np.nan
    view[V_LAST] = last_px


@njit(cache=True)
def mark_by_type(a_type, inv, cash, mark, n_types, inv_out, pnl_out):
    for k in range(n_types):
        inv_out[k] = 0
        pnl_out[k] = 0.0
    for i in range(a_type.shape[0]):
        inv_out[a_type[i]] += inv[i]
        pnl_out[a_type[i]] += cash[i] + inv[i] * mark


@njit(cache=True)
def run_steps(t0, xs, step0, meta, lev, pool, htab, ev, obuf, a_type, a_param, a_scratch, fn,
              states, sched, inv, cash, fees, open_, maker_rate, taker_rate, trades, nt, last_px,
              n_agents, perm, depth_n, o_bid, o_ask, o_bdep, o_adep, o_last, o_inv, o_pnl):
    """Run steps t0.. of the block xs; returns (next step, trade count, last trade tick).

    Returns early, before a step, when the pool, event or trade buffers might not hold the
    step's worst case; the caller grows them and calls again from the returned step.
    """
    view = np.empty(6, dtype=np.float64)
    dpx = np.empty(depth_n, dtype=np.int64)
    dq = np.empty(depth_n, dtype=np.int64)
    n_types = o_inv.shape[1]
    worst_orders = MAX_ORDERS_PER_AGENT * n_agents
    for t in range(t0, xs.shape[0]):
        room = pool.shape[0] - meta[N_LIVE]
        if (meta[FREE_HEAD] < 0 or room < worst_orders + 1
                or ev.shape[0] < meta[POOL_CAP] + 2
                or trades.shape[0] - nt < meta[N_LIVE] + 2 * worst_orders + 2):
            return t, nt, last_px
        x = xs[t]
        for k in range(n_agents - 1, 0, -1):  # Fisher-Yates: a fresh activation order
            j = int(uniform(fn, sched) * (k + 1))
            tmp = perm[k]
            perm[k] = perm[j]
            perm[j] = tmp
        for k in range(n_agents):
            i = perm[k]
            book_view(meta, lev, last_px, view)
            no = agent_orders(i, a_type[i], a_param, view, x, inv[i], open_, a_scratch, fn,
                              states[i], obuf)
            for j in range(no):
                ne = process_one(meta, lev, pool, htab, obuf[j], j, ev, 0)
                nt0 = nt
                nt = apply_events(ev, ne, inv, cash, fees, open_, maker_rate, taker_rate,
                                  trades, nt, step0 + t)
                if nt > nt0:
                    last_px = trades[nt - 1, 1]
        book_view(meta, lev, last_px, view)
        o_bid[t] = int(view[V_BID])
        o_ask[t] = int(view[V_ASK])
        bd = depth_levels(meta, lev, BUY, depth_n, dpx, dq)
        bd = dq[:bd].sum()
        ad = depth_levels(meta, lev, SELL, depth_n, dpx, dq)
        ad = dq[:ad].sum()
        o_bdep[t] = bd
        o_adep[t] = ad
        o_last[t] = last_px
        mark = view[V_MID] if view[V_MID] == view[V_MID] else float(last_px)
        mark_by_type(a_type, inv, cash, mark, n_types, o_inv[t], o_pnl[t])
    return xs.shape[0], nt, last_px
