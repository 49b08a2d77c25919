"""The tape stage: trades become exact per-step bars.

Each trade belongs to exactly one step (by the replay's time key), so no trade is lost or
counted twice at step or chunk boundaries. Realised variance is the sum of squared log returns
between consecutive trades whose later trade falls in the step; the first trade of a step is
measured against the last trade before it (carried across chunks), so bars are the same however
the window is chunked.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from recorder.normalize.parse import parse_events
from replay.stage import Chunk

BAR_COLUMNS = ("open", "high", "low", "close", "vwap", "volume", "buy_volume", "sell_volume",
               "signed_volume", "trade_count", "realized_var", "last_price")


def bars(price: np.ndarray, qty: np.ndarray, buyer_maker: np.ndarray, step: np.ndarray, n_steps: int,
         prev_price: float = np.nan) -> dict[str, np.ndarray]:
    """Per-step OHLC, VWAP, volumes and realised variance from trades sorted by step.

    `buyer_maker` true means the seller was the aggressor (Binance `m`), so signed volume is
    buy-initiated minus sell-initiated quantity. Empty steps have NaN prices and zero volume;
    `last_price` carries the latest trade price forward (NaN before the first trade).
    """
    step = step.astype(np.int64)
    count = np.bincount(step, minlength=n_steps)
    volume = np.bincount(step, weights=qty, minlength=n_steps)
    notional = np.bincount(step, weights=price * qty, minlength=n_steps)
    buy = np.bincount(step, weights=np.where(buyer_maker, 0.0, qty), minlength=n_steps)
    full = count > 0
    first = np.searchsorted(step, np.arange(n_steps), side="left")
    last = np.searchsorted(step, np.arange(n_steps), side="right") - 1
    nan = np.full(n_steps, np.nan)
    open_, close, high, low = nan.copy(), nan.copy(), nan.copy(), nan.copy()
    open_[full] = price[first[full]]
    close[full] = price[last[full]]
    if len(price):
        starts = first[full]
        high[full] = np.maximum.reduceat(price, starts)
        low[full] = np.minimum.reduceat(price, starts)
    with np.errstate(divide="ignore", invalid="ignore"):
        vwap = np.where(full, notional / np.where(volume > 0, volume, 1.0), np.nan)
        logp = np.log(price)
        prev = np.concatenate(([np.log(prev_price)], logp[:-1])) if len(price) else logp
        r2 = np.nan_to_num((logp - prev) ** 2, nan=0.0)
    rv = np.bincount(step, weights=r2, minlength=n_steps)
    # last price carried forward: index of the latest non-empty step so far
    idx = np.where(full, np.arange(n_steps), -1)
    np.maximum.accumulate(idx, out=idx)
    last_price = np.where(idx >= 0, close[np.maximum(idx, 0)], prev_price)
    return {"open": open_, "high": high, "low": low, "close": close, "vwap": vwap,
            "volume": volume, "buy_volume": buy, "sell_volume": volume - buy,
            "signed_volume": 2 * buy - volume, "trade_count": count.astype(np.int64),
            "realized_var": rv, "last_price": last_price}


class TapeStage:
    """Bars for the trades of one instrument (`streams`, e.g. `binance.spot:btcusdt@trade`)."""

    name = "tape"
    needs: Sequence[str] = ()

    def __init__(self, streams: Sequence[str], time: str = "recv") -> None:
        self.streams = tuple(streams)
        self.time = time
        self._prev_price = np.nan

    def process(self, chunk: Chunk) -> dict[str, np.ndarray]:
        trades = parse_events(chunk.events, tables=("trades",)).tables["trades"]
        if self.time == "event":
            t = trades["event_ts_ns"].fill_null(trades["recv_ts_ns"]).to_numpy()
        else:
            t = trades["recv_ts_ns"].to_numpy()
        # the normaliser returns log (recv) order; bars need the replay's time order
        order = np.argsort(t, kind="stable")
        t = t[order]
        step = np.clip(np.searchsorted(chunk.starts_ns, t, side="right") - 1, 0, chunk.n_steps - 1)
        price = trades["price"].to_numpy()[order]
        out = bars(price, trades["qty"].to_numpy()[order], trades["is_buyer_maker"].to_numpy()[order], step,
                   chunk.n_steps, self._prev_price)
        if len(price):
            self._prev_price = float(price[-1])
        return out

    def tables(self) -> dict[str, pa.Table]:
        return {}
