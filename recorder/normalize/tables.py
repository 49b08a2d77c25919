"""The normalised tables: their columns, their types and the version of the code that made them.

Every table carries the raw event's identity (`recv_ts_ns`, `source`, `stream`, `seq`, `conn`)
so a row can always be traced back to the bytes it came from, and sorted into the log's total
order. Bumping a table's version makes `normalize` rebuild exactly that table everywhere.
"""

from __future__ import annotations

import polars as pl

# One version per table: a parser fix re-derives only the table it touches.
TABLE_VERSIONS: dict[str, int] = {"depth": 1, "trades": 1, "bbo": 1, "posts": 1, "klines": 1}

TABLES: tuple[str, ...] = tuple(TABLE_VERSIONS)

_EVENT = {
    "recv_ts_ns": pl.Int64,
    "event_ts_ns": pl.Int64,
    "source": pl.String,
    "stream": pl.String,
    "seq": pl.Int64,
    "conn": pl.String,
}
_MARKET = {**_EVENT, "symbol": pl.String, "market": pl.String}

SCHEMAS: dict[str, pl.Schema] = {
    # One row per price level as received (bids first, then asks; `level` is the position
    # inside the message). A message without levels keeps one row with side -1, NaN px/qty,
    # so the book stage sees every update id.
    "depth": pl.Schema({
        **_MARKET,
        "transact_ts_ns": pl.Int64,
        "first_id": pl.Int64,
        "last_id": pl.Int64,
        "prev_id": pl.Int64,
        "is_snapshot": pl.Boolean,
        "level": pl.Int32,
        "side": pl.Int8,
        "price": pl.Float64,
        "qty": pl.Float64,
    }),
    "trades": pl.Schema({
        **_MARKET,
        "kind": pl.String,
        "trade_id": pl.Int64,
        "first_trade_id": pl.Int64,
        "last_trade_id": pl.Int64,
        "price": pl.Float64,
        "qty": pl.Float64,
        "is_buyer_maker": pl.Boolean,
        "trade_ts_ns": pl.Int64,
    }),
    "bbo": pl.Schema({
        **_MARKET,
        "transact_ts_ns": pl.Int64,
        "update_id": pl.Int64,
        "bid_px": pl.Float64,
        "bid_qty": pl.Float64,
        "ask_px": pl.Float64,
        "ask_qty": pl.Float64,
    }),
    "klines": pl.Schema({
        **_MARKET,
        "interval": pl.String,
        "open_ts_ns": pl.Int64,
        "close_ts_ns": pl.Int64,
        "open": pl.Float64,
        "high": pl.Float64,
        "low": pl.Float64,
        "close": pl.Float64,
        "volume": pl.Float64,
        "quote_volume": pl.Float64,
        "n_trades": pl.Int64,
        "taker_buy_volume": pl.Float64,
        "taker_buy_quote_volume": pl.Float64,
        "is_closed": pl.Boolean,
    }),
    # One row per version seen; `read_table` keeps the latest version of each id (log order),
    # with `first_recv_ts_ns` = when the id was first seen; recv_ts_ns/seq/conn are the kept one's.
    "posts": pl.Schema({
        "id": pl.String,
        "kind": pl.String,
        "subreddit": pl.String,
        "author": pl.String,
        "created_ts_ns": pl.Int64,
        "recv_ts_ns": pl.Int64,
        "first_recv_ts_ns": pl.Int64,
        "title": pl.String,
        "body": pl.String,
        "parent_id": pl.String,
        "post_id": pl.String,
        "score": pl.Int64,
        "source": pl.String,
        "stream": pl.String,
        "conn": pl.String,
        "seq": pl.Int64,
    }),
}

LOG_ORDER: list[str] = ["recv_ts_ns", "source", "stream", "seq"]


def order_keys(table: str) -> list[str]:
    """Sort keys giving the log's total order; depth adds the level position inside a message."""
    return [*LOG_ORDER, "level"] if table == "depth" else list(LOG_ORDER)


def empty(table: str) -> pl.DataFrame:
    return pl.DataFrame(schema=SCHEMAS[table])


def conform(table: str, df: pl.DataFrame) -> pl.DataFrame:
    """Columns in schema order and types (row order is the caller's business)."""
    return df.select([pl.col(c).cast(t) for c, t in SCHEMAS[table].items()])
