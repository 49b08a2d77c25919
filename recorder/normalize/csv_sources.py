"""Tardis and data.binance.vision CSV records to the market tables.

Columns are looked up by name (the header of the record's conn, see csv_records.py), so column
order and extra columns do not matter. Tardis times are µs; binance.vision times are ms, or µs
in spot files from 2025 on: a value above 1e14 is taken as µs (ms values stay below that until
the year 5138). Tardis `side` is the taker's side, so `is_buyer_maker` is `side == "sell"`.
"""

from __future__ import annotations

import re

import polars as pl

from recorder.normalize.routes import Route
from recorder.normalize.tables import conform

_ID_COLS = ["recv_ts_ns", "source", "stream", "seq", "conn"]


def _pick(cols: pl.DataFrame, *names: str) -> pl.Expr:
    """The first of `names` the header has (case-insensitive), else a null column."""
    lower = {c.lower(): c for c in cols.columns}
    for n in names:
        if n.lower() in lower:
            return pl.col(lower[n.lower()])
    return pl.lit(None, dtype=pl.String)


def _f64(e: pl.Expr) -> pl.Expr:
    return e.cast(pl.Float64)


def _i64(e: pl.Expr) -> pl.Expr:
    return e.cast(pl.Int64)


def _bool(e: pl.Expr) -> pl.Expr:
    return e.str.to_lowercase() == "true"


def _us_to_ns(e: pl.Expr) -> pl.Expr:
    return _i64(e) * 1000


def _vision_ts(e: pl.Expr) -> pl.Expr:
    v = _i64(e)
    return pl.when(v >= 10**14).then(v * 1000).otherwise(v * 1_000_000)


def _frame(part: pl.DataFrame, cols: pl.DataFrame, route: Route, **exprs: pl.Expr
           ) -> pl.DataFrame:
    """Raw identity columns beside the expressions evaluated on the decoded columns."""
    base = part.select(_ID_COLS, market=pl.lit(route.market, dtype=pl.String))
    return pl.concat([base, cols.select(**exprs)], how="horizontal")


def _symbol(cols: pl.DataFrame, route: Route) -> pl.Expr:
    return pl.coalesce(_pick(cols, "symbol").str.to_uppercase(), pl.lit(route.symbol))


def tardis(part: pl.DataFrame, cols: pl.DataFrame, route: Route) -> pl.DataFrame:
    """Tardis `trades`, `quotes`, `incremental_book_L2` and `book_snapshot_N` records."""
    ts = _us_to_ns(_pick(cols, "timestamp"))
    common = {"event_ts_ns": ts, "symbol": _symbol(cols, route)}
    if route.table == "trades":
        return _frame(part, cols, route, **common, kind=pl.lit("trade"),
                      trade_id=_i64(_pick(cols, "id")),
                      first_trade_id=pl.lit(None, pl.Int64), last_trade_id=pl.lit(None, pl.Int64),
                      price=_f64(_pick(cols, "price")), qty=_f64(_pick(cols, "amount")),
                      is_buyer_maker=_pick(cols, "side") == "sell", trade_ts_ns=ts)
    if route.table == "bbo":
        return _frame(part, cols, route, **common, transact_ts_ns=pl.lit(None, pl.Int64),
                      update_id=pl.lit(None, pl.Int64),
                      bid_px=_f64(_pick(cols, "bid_price")), bid_qty=_f64(_pick(cols, "bid_amount")),
                      ask_px=_f64(_pick(cols, "ask_price")), ask_qty=_f64(_pick(cols, "ask_amount")))
    no_id = pl.lit(None, pl.Int64)
    depth_common = {**common, "transact_ts_ns": no_id, "first_id": no_id, "last_id": no_id,
                    "prev_id": no_id}
    if route.data_type == "incremental_book_l2":
        return _frame(part, cols, route, **depth_common,
                      is_snapshot=_bool(_pick(cols, "is_snapshot")), level=pl.lit(0, pl.Int32),
                      side=pl.when(_pick(cols, "side") == "bid").then(0).otherwise(1)
                      .cast(pl.Int8),
                      price=_f64(_pick(cols, "price")), qty=_f64(_pick(cols, "amount")))
    return _wide_snapshot(part, cols, route, depth_common)


_WIDE = re.compile(r"^(bids|asks)\[(\d+)\]\.(price|amount)$")


def _wide_snapshot(part: pl.DataFrame, cols: pl.DataFrame, route: Route,
                   depth_common: dict[str, pl.Expr]) -> pl.DataFrame:
    """`book_snapshot_N`: `bids[i].price`, `asks[i].amount`... to rows, bids then asks.

    Levels a shallow book leaves empty are dropped; `level` counts the levels kept.
    """
    found = {}
    for c in cols.columns:
        m = _WIDE.match(c)
        if m:
            found[(m[1], int(m[2]), m[3])] = c
    order = [(side, i) for side in ("bids", "asks")
             for i in sorted({i for s, i, _ in found if s == side})]
    prices = pl.concat_list([_f64(pl.col(found[(s, i, "price")])) for s, i in order])
    amounts = pl.concat_list([_f64(pl.col(found[(s, i, "amount")])) for s, i in order])
    sides = pl.lit([0 if s == "bids" else 1 for s, _ in order], dtype=pl.List(pl.Int8))
    wide = _frame(part, cols, route, **depth_common, is_snapshot=pl.lit(True),
                  _px=prices, _qty=amounts, _side=sides)
    rows = (wide.explode(["_px", "_qty", "_side"])
            .filter(pl.col("_px").is_not_null())
            .with_columns(level=pl.int_range(pl.len(), dtype=pl.Int32)
                          .over(["source", "stream", "seq"]))
            .rename({"_px": "price", "_qty": "qty", "_side": "side"}))
    return rows


def vision(part: pl.DataFrame, cols: pl.DataFrame, route: Route) -> pl.DataFrame:
    """binance.vision `trades`, `aggTrades`, `bookTicker` and `klines_<interval>` records."""
    sym = {"symbol": pl.lit(route.symbol)}
    if route.data_type == "trades":
        ts = _vision_ts(_pick(cols, "time"))
        return _frame(part, cols, route, **sym, event_ts_ns=ts, kind=pl.lit("trade"),
                      trade_id=_i64(_pick(cols, "id")),
                      first_trade_id=pl.lit(None, pl.Int64), last_trade_id=pl.lit(None, pl.Int64),
                      price=_f64(_pick(cols, "price")), qty=_f64(_pick(cols, "qty")),
                      is_buyer_maker=_bool(_pick(cols, "is_buyer_maker")), trade_ts_ns=ts)
    if route.data_type == "aggtrades":
        ts = _vision_ts(_pick(cols, "transact_time"))
        return _frame(part, cols, route, **sym, event_ts_ns=ts, kind=pl.lit("aggTrade"),
                      trade_id=_i64(_pick(cols, "agg_trade_id")),
                      first_trade_id=_i64(_pick(cols, "first_trade_id")),
                      last_trade_id=_i64(_pick(cols, "last_trade_id")),
                      price=_f64(_pick(cols, "price")), qty=_f64(_pick(cols, "quantity")),
                      is_buyer_maker=_bool(_pick(cols, "is_buyer_maker")), trade_ts_ns=ts)
    if route.data_type == "bookticker":
        tt = _vision_ts(_pick(cols, "transaction_time"))
        return _frame(part, cols, route, **sym,
                      event_ts_ns=pl.coalesce(_vision_ts(_pick(cols, "event_time")), tt),
                      transact_ts_ns=tt, update_id=_i64(_pick(cols, "update_id")),
                      bid_px=_f64(_pick(cols, "best_bid_price")),
                      bid_qty=_f64(_pick(cols, "best_bid_qty")),
                      ask_px=_f64(_pick(cols, "best_ask_price")),
                      ask_qty=_f64(_pick(cols, "best_ask_qty")))
    open_ts = _vision_ts(_pick(cols, "open_time"))
    return _frame(part, cols, route, **sym, event_ts_ns=open_ts,
                  interval=pl.lit(route.data_type.partition("_")[2] or None, pl.String),
                  open_ts_ns=open_ts, close_ts_ns=_vision_ts(_pick(cols, "close_time")),
                  open=_f64(_pick(cols, "open")), high=_f64(_pick(cols, "high")),
                  low=_f64(_pick(cols, "low")), close=_f64(_pick(cols, "close")),
                  volume=_f64(_pick(cols, "volume")),
                  quote_volume=_f64(_pick(cols, "quote_volume", "quote_asset_volume")),
                  n_trades=_i64(_pick(cols, "count", "number_of_trades")),
                  taker_buy_volume=_f64(_pick(cols, "taker_buy_volume")),
                  taker_buy_quote_volume=_f64(_pick(cols, "taker_buy_quote_volume")),
                  is_closed=pl.lit(True))


def parse(part: pl.DataFrame, cols: pl.DataFrame, route: Route) -> pl.DataFrame:
    """Rows of `route.table` (not yet conformed) from one conn's decoded records."""
    rows = tardis(part, cols, route) if route.family == "tardis" else vision(part, cols, route)
    return conform(route.table, rows)
