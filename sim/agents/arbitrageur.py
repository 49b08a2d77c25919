"""Arbitrageur: takes the simulated venue's touch when it is away from the reference price.

Rule, each step with probability act_prob, with ref = the reference (real) mid handed in:
    band = ref * (fee_bps + threshold_bps) / 10_000
    best ask < ref - band  -> buy  min(size_lots, room) at the best ask, immediate-or-cancel
    best bid > ref + band  -> sell min(size_lots, room) at the best bid, immediate-or-cancel
    otherwise nothing
where room keeps |inventory| <= max_inventory_lots. Its hedge on the reference venue is outside
the simulation: inventory and PnL are those of the simulated venue only.
"""

from __future__ import annotations

from dataclasses import dataclass

from numba import njit

from sim.agents.base import ARBITRAGEUR, V_ASK, V_BID, X_REF_MID, TraderAgent, emit
from sim.orders import BUY, IOC, LIMIT, SELL
from sim.streams import uniform


@dataclass(frozen=True)
class ArbitrageurParams:
    count: int = 5
    fee_bps: float = 1.0
    threshold_bps: float = 1.0
    size_lots: int = 5
    max_inventory_lots: int = 50
    act_prob: float = 0.5

    def __post_init__(self):
        if not 0 <= self.act_prob <= 1:
            raise ValueError("sim.agents.arbitrageur.act_prob must be in [0, 1]")
        if self.size_lots < 1:
            raise ValueError("sim.agents.arbitrageur.size_lots must be >= 1")


FIELDS = ("fee_bps", "threshold_bps", "size_lots", "max_inventory_lots", "act_prob")


class Arbitrageur(TraderAgent):
    __doc__ = __doc__
    type_code = ARBITRAGEUR


@njit(cache=True, inline="always")
def act(i, p, view, x, inv, open_, scratch, fn, st, out, no):
    if uniform(fn, st) >= p[i, 4]:
        return no
    ref = x[X_REF_MID]
    if ref != ref:
        return no
    band = ref * (p[i, 0] + p[i, 1]) / 10_000.0
    ask = view[V_ASK]
    bid = view[V_BID]
    if ask >= 0 and ask < ref - band:
        size = int(min(p[i, 2], p[i, 3] - inv))
        if size > 0:
            return emit(out, no, LIMIT, BUY, IOC, i, int(ask), size, -1)
    elif bid >= 0 and bid > ref + band:
        size = int(min(p[i, 2], p[i, 3] + inv))
        if size > 0:
            return emit(out, no, LIMIT, SELL, IOC, i, int(bid), size, -1)
    return no
