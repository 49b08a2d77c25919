"""Order and event records shared by the compiled book, the reference book and the agents.

Prices are integer ticks and sizes integer lots (the venue's tick and lot size convert them);
integer arithmetic is what makes the compiled and the reference engine agree exactly.
"""

from __future__ import annotations

import numpy as np

# Order kinds (ORDER_DTYPE.kind).
LIMIT = 0
MARKET = 1
CANCEL = 2
MODIFY = 3

# Sides: +1 buys, -1 sells.
BUY = 1
SELL = -1

# Time in force (ORDER_DTYPE.tif).
GTC = 0
IOC = 1
FOK = 2
POST_ONLY = 3

# Event kinds (EVENT_DTYPE.kind). Each input order yields zero or more TRADE events followed by
# exactly one outcome event (every kind below except TRADE).
TRADE = 0
RESTED = 1  # the (remaining) order rests in the book; qty = resting size
FILLED = 2  # completely filled by the trades just before
EXPIRED = 3  # IOC / market remainder cancelled (reason NO_LIQUIDITY or NONE)
STP_CANCELED = 4  # remainder of the aggressing order cancelled by self-trade prevention
CANCELED = 5  # cancel request done; qty = size removed
MODIFIED = 6  # size decrease at the same price, priority kept; qty = new size
REJECTED = 7  # nothing happened; see reason

EVENT_NAMES = (
    "TRADE", "RESTED", "FILLED", "EXPIRED", "STP_CANCELED", "CANCELED", "MODIFIED", "REJECTED",
)

# Reasons (EVENT_DTYPE.reason).
R_NONE = 0
R_EMPTY_SIDE = 1  # market order into a side with no resting orders
R_POST_ONLY_CROSS = 2
R_FOK_UNFILLABLE = 3
R_UNKNOWN_ORDER = 4
R_NOT_OWNER = 5
R_BAD_QTY = 6
R_BAD_PRICE = 7
R_BAD_SIDE = 8
R_BAD_TIF = 9
R_OUT_OF_BAND = 10  # resting book would span more than band_ticks
R_NO_LIQUIDITY = 11  # market order swept the whole side and has size left
R_BAD_KIND = 12
R_SELF_TRADE = 13

REASON_NAMES = (
    "NONE", "EMPTY_SIDE", "POST_ONLY_CROSS", "FOK_UNFILLABLE", "UNKNOWN_ORDER", "NOT_OWNER",
    "BAD_QTY", "BAD_PRICE", "BAD_SIDE", "BAD_TIF", "OUT_OF_BAND", "NO_LIQUIDITY", "BAD_KIND",
    "SELF_TRADE",
)

ORDER_DTYPE = np.dtype(
    [
        ("kind", np.int64),
        ("side", np.int64),
        ("tif", np.int64),
        ("owner", np.int64),
        ("price", np.int64),  # ticks; ignored for MARKET and CANCEL
        ("qty", np.int64),  # lots; new size for MODIFY
        ("order_id", np.int64),  # target of CANCEL / MODIFY
    ]
)

EVENT_DTYPE = np.dtype(
    [
        ("kind", np.int64),
        ("reason", np.int64),
        ("src", np.int64),  # index of the input order in its batch
        ("order_id", np.int64),  # the input's order (the aggressor for a TRADE)
        ("owner", np.int64),
        ("side", np.int64),  # side of order_id (aggressor side for a TRADE)
        ("price", np.int64),
        ("qty", np.int64),
        ("maker_id", np.int64),  # TRADE only: the resting order hit
        ("maker_owner", np.int64),
        ("maker_leaves", np.int64),  # TRADE only: size the maker has left after it
    ]
)


def make_orders(rows: list[tuple[int, ...]] | None = None, n: int = 0) -> np.ndarray:
    """Build an ORDER_DTYPE array from (kind, side, tif, owner, price, qty, order_id) tuples."""
    if rows is None:
        return np.zeros(n, dtype=ORDER_DTYPE)
    return np.array([tuple(r) for r in rows], dtype=ORDER_DTYPE)
