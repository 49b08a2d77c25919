"""Noise trader: zero-intelligence order flow whose buy probability tilts with sentiment.

Rule, every step:
    arrivals ~ Poisson(rate_per_step), at most max_arrivals
    each arrival is a limit (p_limit), market (p_market) or cancel (p_cancel) order
    (probabilities normalised to sum to one)
    side: buy with probability clip(0.5 + sentiment_tilt * sentiment, 0.05, 0.95)
    size: 1 + floor(Exp(size_mean_lots - 1)) lots
    limit price: the same-side touch improved by one tick minus Exp(price_offset_mean_ticks)
                 ticks (so most orders rest at or behind the touch, some inside the spread, and
                 with a one-tick spread some cross); with an empty side the other touch, else the
                 last trade, is the anchor
    cancel: one of its live orders chosen uniformly
It keeps at most max_open_orders live orders: a new limit order first cancels its oldest one.
"""

from __future__ import annotations

from dataclasses import dataclass

from numba import njit

from sim.accounts import O_ID, clear_open
from sim.agents.base import (
    MAX_OPEN,
    NOISE,
    V_ASK,
    V_BID,
    V_LAST,
    X_SENTIMENT,
    TraderAgent,
    emit,
)
from sim.orders import BUY, CANCEL, GTC, LIMIT, MARKET, SELL
from sim.streams import exponential, poisson, uniform


@dataclass(frozen=True)
class NoiseParams:
    count: int = 165
    rate_per_step: float = 0.1
    p_limit: float = 0.6
    p_market: float = 0.15
    p_cancel: float = 0.25
    sentiment_tilt: float = 0.2
    price_offset_mean_ticks: float = 3.0
    size_mean_lots: float = 2.0
    max_open_orders: int = 6
    max_arrivals: int = 3

    def __post_init__(self):
        if self.rate_per_step < 0:
            raise ValueError("sim.agents.noise.rate_per_step must be >= 0")
        probs = (self.p_limit, self.p_market, self.p_cancel)
        if min(probs) < 0 or sum(probs) <= 0:
            raise ValueError("sim.agents.noise.p_limit/p_market/p_cancel must be >= 0, sum > 0")
        if not 1 <= self.max_open_orders <= MAX_OPEN:
            raise ValueError(f"sim.agents.noise.max_open_orders must be in [1, {MAX_OPEN}]")
        if not 1 <= self.max_arrivals <= 4:
            raise ValueError("sim.agents.noise.max_arrivals must be in [1, 4]")
        if self.size_mean_lots < 1:
            raise ValueError("sim.agents.noise.size_mean_lots must be >= 1")


FIELDS = ("rate_per_step", "p_limit", "p_market", "p_cancel", "sentiment_tilt",
          "price_offset_mean_ticks", "size_mean_lots", "max_open_orders", "max_arrivals")


class NoiseTrader(TraderAgent):
    __doc__ = __doc__
    type_code = NOISE


@njit(cache=True, inline="always")
def act(i, p, view, x, inv, open_, scratch, fn, st, out, no):
    k = poisson(fn, st, p[i, 0], int(p[i, 8]))
    if k == 0:
        return no
    total = p[i, 1] + p[i, 2] + p[i, 3]
    p_buy = min(max(0.5 + p[i, 4] * x[X_SENTIMENT], 0.05), 0.95)
    pending = 0
    for _ in range(k):
        r = uniform(fn, st) * total
        side = BUY if uniform(fn, st) < p_buy else SELL
        size = 1 + int(exponential(fn, st, p[i, 6] - 1.0))
        live = 0
        oldest = -1
        for s in range(MAX_OPEN):
            if open_[i, s, O_ID] >= 0:
                live += 1
                if oldest < 0 or open_[i, s, O_ID] < open_[i, oldest, O_ID]:
                    oldest = s
        if r < p[i, 1]:
            offset = int(exponential(fn, st, p[i, 5]))
            same = view[V_BID] if side == BUY else view[V_ASK]
            other = view[V_ASK] if side == BUY else view[V_BID]
            if same >= 0:
                anchor = int(same) + side
            elif other >= 0:
                anchor = int(other) - side
            else:
                anchor = int(view[V_LAST])
            if anchor < 1:
                continue  # no price reference at all yet
            px = max(anchor - side * offset, 1)
            if live + pending >= p[i, 7] and oldest >= 0:
                no = emit(out, no, CANCEL, 0, 0, i, 0, 0, open_[i, oldest, O_ID])
                clear_open(open_, i, oldest)
            no = emit(out, no, LIMIT, side, GTC, i, px, size, -1)
            pending += 1
        elif r < p[i, 1] + p[i, 2]:
            no = emit(out, no, MARKET, side, GTC, i, 0, size, -1)
        elif live > 0:
            pick = int(uniform(fn, st) * live)
            for s in range(MAX_OPEN):
                if open_[i, s, O_ID] >= 0:
                    if pick == 0:
                        no = emit(out, no, CANCEL, 0, 0, i, 0, 0, open_[i, s, O_ID])
                        clear_open(open_, i, s)
                        break
                    pick -= 1
    return no
