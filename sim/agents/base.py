"""What every agent type shares: the Mesa agent face, the compiled-side layouts, order emission.

Design: each agent is a ``mesa.Agent`` (what users see, iterate and inspect) whose state lives in
rows of the model's arrays (inventory, cash, open orders, scratch floats, parameter vector) and
whose decision rule is a numba function in its type's module. The model's kernel activates all
agents in a fresh random order every step (what ``AgentSet.shuffle_do("step")`` would do) and
runs each agent's rule in compiled code, so 200 agents x 864,000 steps fit in seconds.
"""

from __future__ import annotations

import dataclasses

import mesa
import numpy as np
from numba import njit

# Agent type codes (column order of per-type outputs); INITIAL owns the seeded book.
MARKET_MAKER = 0
INFORMED = 1
NOISE = 2
ARBITRAGEUR = 3
INITIAL = 4
TYPE_NAMES = ("market_maker", "informed", "noise", "arbitrageur", "initial_book")

MAX_OPEN = 8  # open orders tracked per agent: rows (id, side, price, qty), id -1 = empty
N_PARAMS = 16  # parameter vector length per agent
N_SCRATCH = 4  # float scratch per agent (e.g. a market maker's fair value)

# Market view handed to a rule (float64 vector).
V_BID = 0  # best bid tick, -1 if none
V_ASK = 1  # best ask tick, -1 if none
V_MID = 2  # mid in ticks, NaN unless two-sided
V_LAST = 3  # last trade tick (initial mid before any trade)
V_BIDQ = 4
V_ASKQ = 5
N_VIEW = 6

# Exogenous inputs of one step as the rules see them (float64 vector; prices in ticks).
X_SENTIMENT = 0
X_EPISTEMIC = 1
X_ALEATORIC = 2
X_MOOD = 3
X_VOLATILITY = 4
X_LIQUIDITY = 5
X_REGIME = 6
X_REF_MID = 7
X_FUNDAMENTAL = 8
N_X = 9


def param_vector(params: object, fields: tuple[str, ...]) -> np.ndarray:
    """Pack a params dataclass into the fixed-length float vector the rules index."""
    vec = np.zeros(N_PARAMS, dtype=np.float64)
    flat: list[float] = []
    for name in fields:
        v = getattr(params, name)
        flat.extend(float(x) for x in (v if isinstance(v, tuple | list) else (v,)))
    vec[: len(flat)] = flat
    return vec


def params_from_dict(cls: type, values: dict | None, where: str):
    """Build a params dataclass from a plain dict, naming unknown keys in the error."""
    values = dict(values or {})
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown setting(s) {where}.{', '.join(unknown)}; known: {sorted(known)}")
    for k, v in values.items():
        if isinstance(v, list):
            values[k] = tuple(v)
    return cls(**values)


@njit(cache=True, inline="always")
def emit(out, no, kind, side, tif, owner, price, qty, order_id):
    o = out[no]
    o.kind = kind
    o.side = side
    o.tif = tif
    o.owner = owner
    o.price = price
    o.qty = qty
    o.order_id = order_id
    return no + 1


class TraderAgent(mesa.Agent):
    """A trading agent: a Mesa agent whose book-keeping lives in the model's arrays."""

    type_code = -1

    def __init__(self, model: mesa.Model, index: int, params: object,
                 generator: np.random.Generator):
        super().__init__(model)
        self.index = index  # row in the model's arrays and owner id in the book
        self.params = params
        # The agent's own stream (Agent.rng is the model's); compiled rules draw from it.
        self.generator = generator

    @property
    def inventory(self) -> int:
        """Position in lots."""
        return int(self.model.accounts.inventory[self.index])

    @property
    def cash(self) -> float:
        """Cash in quote currency, fees already paid."""
        return float(self.model.accounts.cash[self.index]) * self.model.quote_per_tick_lot

    @property
    def fees(self) -> float:
        return float(self.model.accounts.fees[self.index]) * self.model.quote_per_tick_lot

    @property
    def open_orders(self) -> np.ndarray:
        """Rows (order id, side, price tick, size lots) of this agent's live orders."""
        rows = self.model.accounts.open[self.index]
        return rows[rows[:, 0] >= 0].copy()

    def pnl(self, mark_price: float) -> float:
        """Mark-to-market PnL in quote currency at mark_price."""
        return self.cash + self.inventory * mark_price * self.model.engine.lot_size
