"""Market maker: two-sided passive quotes around its fair value, skewed by inventory.

Rule, every step:
    fair  <- fair + alpha * (mid - fair),  alpha = 1 - 0.5 ** (1 / fair_value_halflife_steps)
    half  =  half_spread_ticks * jitter * regime_widening[regime] * (1 + epistemic_widening * epistemic)
    r     =  fair - inventory_skew_ticks * inventory
    bid   =  floor(r - half),  ask = ceil(r + half)   (kept passive: never at or through the touch)
    sizes =  quote_size_lots, cut so that |inventory| never exceeds max_inventory_lots
A quote whose price changed is cancelled/replaced (a modify that loses priority); an unchanged
quote keeps its place; a side whose size is cut to zero is cancelled. New quotes are post-only.
``jitter`` is drawn once per agent from its own generator, uniform in 1 +- spread_jitter, so
market makers do not all quote the same ticks. ``regime`` is the volatility regime label
(0 calm, 1 normal, 2 stressed); fair value starts at the initial mid and follows only the
simulated mid (never the real price).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from numba import njit

from sim.accounts import O_ID, O_PRICE, O_SIDE, clear_open
from sim.agents.base import (
    MARKET_MAKER,
    MAX_OPEN,
    V_ASK,
    V_BID,
    V_MID,
    X_EPISTEMIC,
    X_REGIME,
    TraderAgent,
    emit,
)
from sim.orders import BUY, CANCEL, LIMIT, MODIFY, POST_ONLY, SELL


@dataclass(frozen=True)
class MarketMakerParams:
    count: int = 10
    half_spread_ticks: float = 2.0
    epistemic_widening: float = 4.0
    regime_widening: tuple[float, float, float] = (1.0, 1.6, 2.5)
    inventory_skew_ticks: float = 0.05
    quote_size_lots: int = 5
    max_inventory_lots: int = 200
    fair_value_halflife_steps: float = 20.0
    spread_jitter: float = 0.2

    def __post_init__(self):
        if self.half_spread_ticks <= 0:
            raise ValueError("sim.agents.market_maker.half_spread_ticks must be > 0")
        if self.fair_value_halflife_steps <= 0:
            raise ValueError("sim.agents.market_maker.fair_value_halflife_steps must be > 0")
        if len(self.regime_widening) != 3:
            raise ValueError("sim.agents.market_maker.regime_widening needs 3 values")
        if not 0 <= self.spread_jitter < 1:
            raise ValueError("sim.agents.market_maker.spread_jitter must be in [0, 1)")


FIELDS = ("half_spread_ticks", "epistemic_widening", "regime_widening", "inventory_skew_ticks",
          "quote_size_lots", "max_inventory_lots", "fair_value_halflife_steps")


class MarketMaker(TraderAgent):
    __doc__ = __doc__
    type_code = MARKET_MAKER


@njit(cache=True)
def half_spread(p, i, jitter, x):
    """Half-spread in ticks for agent i (params p[i]) under exogenous state x."""
    reg = min(max(int(x[X_REGIME]), 0), 2)
    return p[i, 0] * jitter * p[i, 2 + reg] * (1.0 + p[i, 1] * max(x[X_EPISTEMIC], 0.0))


@njit(cache=True)
def _quote(i, side, px, sz, open_, out, no):
    for k in range(MAX_OPEN):
        if open_[i, k, O_ID] >= 0 and open_[i, k, O_SIDE] == side:
            oid = open_[i, k, O_ID]
            if sz <= 0:
                no = emit(out, no, CANCEL, side, 0, i, 0, 0, oid)
                clear_open(open_, i, k)
            elif open_[i, k, O_PRICE] != px:
                no = emit(out, no, MODIFY, side, 0, i, px, sz, oid)
            return no
    if sz > 0:
        no = emit(out, no, LIMIT, side, POST_ONLY, i, px, sz, -1)
    return no


@njit(cache=True, inline="always")
def act(i, p, view, x, inv, open_, scratch, fn, st, out, no):
    fair = scratch[i, 0]
    mid = view[V_MID]
    if mid == mid:
        fair = mid if fair != fair else fair + (1.0 - 0.5 ** (1.0 / p[i, 8])) * (mid - fair)
        scratch[i, 0] = fair
    if fair != fair:
        return no  # no two-sided market seen yet: nothing to quote around
    half = half_spread(p, i, scratch[i, 1], x)
    r = fair - p[i, 5] * inv
    bid = int(math.floor(r - half))
    ask = int(math.ceil(r + half))
    if ask <= bid:
        ask = bid + 1
    if view[V_ASK] >= 0 and bid >= view[V_ASK]:
        bid = int(view[V_ASK]) - 1
    if view[V_BID] >= 0 and ask <= view[V_BID]:
        ask = int(view[V_BID]) + 1
    bid = max(bid, 1)
    bsz = int(min(p[i, 6], p[i, 7] - inv))
    asz = int(min(p[i, 6], p[i, 7] + inv))
    no = _quote(i, BUY, bid, bsz, open_, out, no)
    return _quote(i, SELL, ask, asz, open_, out, no)
