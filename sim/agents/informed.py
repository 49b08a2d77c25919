"""Informed trader: trades on a private noisy signal of the future price and on the mood factor.

Rule, each step with probability act_prob:
    signal = fundamental + signal_noise_ticks * N(0, 1) + mood_weight_ticks * mood
    edge   = signal - mid                       (mid of the venue it trades on)
    if |edge| < threshold_ticks: do nothing
    size   = min(max_size_lots, base_size_lots * ceil(|edge| / conviction_scale_ticks)),
             cut so that |inventory| <= max_inventory_lots
    |edge| >= market_edge_ticks: market order (conviction high: pay the spread)
    otherwise: limit order one tick inside the spread (or joining the touch when the spread is
               one tick), replacing its previous working order; a working order older than
               order_ttl_steps is cancelled.
``fundamental`` is the exogenous input of that name (the replay can hand in the real mid some
steps ahead); when it is missing the reference mid is used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from numba import njit

from sim.accounts import O_ID, clear_open
from sim.agents.base import (
    INFORMED,
    MAX_OPEN,
    V_ASK,
    V_BID,
    V_MID,
    X_FUNDAMENTAL,
    X_MOOD,
    X_REF_MID,
    TraderAgent,
    emit,
)
from sim.orders import BUY, CANCEL, GTC, LIMIT, MARKET, SELL
from sim.streams import normal, uniform


@dataclass(frozen=True)
class InformedParams:
    count: int = 20
    signal_noise_ticks: float = 20.0
    mood_weight_ticks: float = 5.0
    threshold_ticks: float = 5.0
    market_edge_ticks: float = 15.0
    base_size_lots: int = 2
    conviction_scale_ticks: float = 10.0
    max_size_lots: int = 10
    max_inventory_lots: int = 100
    act_prob: float = 0.05
    order_ttl_steps: int = 50

    def __post_init__(self):
        if not 0 <= self.act_prob <= 1:
            raise ValueError("sim.agents.informed.act_prob must be in [0, 1]")
        if self.conviction_scale_ticks <= 0:
            raise ValueError("sim.agents.informed.conviction_scale_ticks must be > 0")
        if self.base_size_lots < 1 or self.max_size_lots < 1:
            raise ValueError("sim.agents.informed sizes must be >= 1 lot")


FIELDS = ("signal_noise_ticks", "mood_weight_ticks", "threshold_ticks", "market_edge_ticks",
          "base_size_lots", "conviction_scale_ticks", "max_size_lots", "max_inventory_lots",
          "act_prob", "order_ttl_steps")


class InformedTrader(TraderAgent):
    __doc__ = __doc__
    type_code = INFORMED


@njit(cache=True, inline="always")
def act(i, p, view, x, inv, open_, scratch, fn, st, out, no):
    working = -1
    for k in range(MAX_OPEN):
        if open_[i, k, O_ID] >= 0:
            working = k
    if working >= 0:
        scratch[i, 0] += 1.0
        if scratch[i, 0] >= p[i, 9]:
            no = emit(out, no, CANCEL, 0, 0, i, 0, 0, open_[i, working, O_ID])
            clear_open(open_, i, working)
            working = -1
    if uniform(fn, st) >= p[i, 8]:
        return no
    fund = x[X_FUNDAMENTAL]
    if fund != fund:
        fund = x[X_REF_MID]
    mid = view[V_MID]
    noise = normal(fn, st)
    if fund != fund or mid != mid:
        return no
    edge = fund + p[i, 0] * noise + p[i, 1] * x[X_MOOD] - mid
    if abs(edge) < p[i, 2]:
        return no
    side = BUY if edge > 0 else SELL
    size = min(p[i, 6], p[i, 4] * math.ceil(abs(edge) / p[i, 5]))
    size = int(min(size, p[i, 7] - side * inv))
    if size <= 0:
        return no
    if working >= 0:
        no = emit(out, no, CANCEL, 0, 0, i, 0, 0, open_[i, working, O_ID])
        clear_open(open_, i, working)
    if abs(edge) >= p[i, 3]:
        return emit(out, no, MARKET, side, GTC, i, 0, size, -1)
    bid = int(view[V_BID])
    ask = int(view[V_ASK])
    inside = 1 if ask - bid > 1 else 0  # step inside a wide spread, else join the touch
    px = bid + inside if side == BUY else ask - inside
    scratch[i, 0] = 0.0
    return emit(out, no, LIMIT, side, GTC, i, px, size, -1)
