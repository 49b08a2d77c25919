"""Binance websocket events and REST depth snapshots (JSON) to typed rows, vectorised.

Each payload is decoded once by polars with an explicit Struct schema that holds both the
combined-stream envelope (`{"stream":..,"data":{..}}`) and the bare event's fields; a field is
`coalesce(data.f, f)`, so both shapes give identical rows. Fields missing from a payload are null.
Decimal strings are cast to Float64 by a correctly rounded parser, so "61837.63000000" and
"61837.63" are the same float. Quantities are as Binance sends them: base asset on spot and
USD-M, contracts on COIN-M.

Input frames hold raw log columns plus `market`, `stream_symbol` and `data_type` (routes.py).
Every parser returns `(rows, skipped)`: messages lacking the table's key field (a subscription
reply, an error body) yield no row and are counted.
"""

from __future__ import annotations

import polars as pl

from recorder.normalize.tables import conform

_LEVELS = pl.List(pl.List(pl.String))
_MS = 1_000_000


def _decoded(ev: pl.DataFrame, fields: dict[str, pl.DataType]):
    """`ev` with the payload decoded once into `_j`, and a getter for fields of the event.

    The getter reads the envelope's `data` first, then the bare event's top level.
    """
    dtype = pl.Struct({"data": pl.Struct(fields), **fields})
    out = ev.with_columns(_j=pl.col("payload").cast(pl.String).str.json_decode(dtype))
    j = pl.col("_j")

    def field(name: str) -> pl.Expr:
        return pl.coalesce(j.struct.field("data").struct.field(name), j.struct.field(name))

    return out, field


def _ms_to_ns(e: pl.Expr) -> pl.Expr:
    return e * _MS


def _px(e: pl.Expr) -> pl.Expr:
    return e.cast(pl.Float64)


def _event_ts(f) -> pl.Expr:
    """Binance `E` (else `T`) in ms; the raw event time when the payload has neither."""
    return pl.coalesce(_ms_to_ns(f("E")), _ms_to_ns(f("T")), pl.col("event_ts_ns"))


def _keyed(df: pl.DataFrame, key: str) -> tuple[pl.DataFrame, int]:
    kept = df.filter(pl.col(key).is_not_null())
    return kept, df.height - kept.height


def depth(ev: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """Depth diffs and REST snapshots to one row per level; level-less messages keep one row.

    A snapshot (`kind=snapshot`, body `{"lastUpdateId", "bids", "asks"}`) has
    first_id = last_id = lastUpdateId and is_snapshot true. Futures diffs carry `pu` (prev_id)
    and `T` (transact_ts_ns); spot leaves both null.
    """
    ev, f = _decoded(ev, {"E": pl.Int64, "T": pl.Int64, "s": pl.String, "symbol": pl.String,
                  "U": pl.Int64, "u": pl.Int64, "pu": pl.Int64, "b": _LEVELS, "a": _LEVELS,
                  "lastUpdateId": pl.Int64, "bids": _LEVELS, "asks": _LEVELS})
    no_levels = pl.lit([], dtype=_LEVELS)
    bids = pl.coalesce(f("b"), f("bids"), no_levels)
    asks = pl.coalesce(f("a"), f("asks"), no_levels)
    lid = f("lastUpdateId")
    msgs = ev.select(
        "recv_ts_ns", "source", "stream", "seq", "conn", "market",
        event_ts_ns=_event_ts(f),
        symbol=pl.coalesce(f("s"), f("symbol"), pl.col("stream_symbol")),
        transact_ts_ns=_ms_to_ns(f("T")),
        first_id=pl.coalesce(f("U"), lid),
        last_id=pl.coalesce(f("u"), lid),
        prev_id=f("pu"),
        is_snapshot=(pl.col("kind") == "snapshot") | lid.is_not_null(),
        nb=bids.list.len().cast(pl.Int32),
        lv=pl.concat_list(bids, asks),
    )
    msgs, skipped = _keyed(msgs, "last_id")
    rows = (
        msgs.with_columns(level=pl.int_ranges(0, pl.col("lv").list.len(), dtype=pl.Int32))
        .explode(["lv", "level"], empty_as_null=True)
        .with_columns(
            side=pl.when(pl.col("lv").is_null()).then(-1)
            .when(pl.col("level") < pl.col("nb")).then(0).otherwise(1).cast(pl.Int8),
            level=pl.col("level").fill_null(0),
            price=_px(pl.col("lv").list.get(0)).fill_null(float("nan")),
            qty=_px(pl.col("lv").list.get(1)).fill_null(float("nan")),
        )
    )
    return conform("depth", rows), skipped


def trades(ev: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """`trade` (id `t`) and `aggTrade` (id `a`, first/last trade ids `f`/`l`) events.

    The kind comes from the payload's `e`, else from the stream name. In spot `trade` events
    `a` is the seller's order id, so the id field is chosen by kind, never coalesced.
    """
    ev, f = _decoded(ev, {"e": pl.String, "E": pl.Int64, "T": pl.Int64, "s": pl.String, "t": pl.Int64,
                  "a": pl.Int64, "f": pl.Int64, "l": pl.Int64, "p": pl.String, "q": pl.String,
                  "m": pl.Boolean})
    is_agg = pl.coalesce(f("e") == "aggTrade", pl.col("data_type") == "aggtrade")
    rows = ev.select(
        "recv_ts_ns", "source", "stream", "seq", "conn", "market",
        event_ts_ns=_event_ts(f),
        symbol=pl.coalesce(f("s"), pl.col("stream_symbol")),
        kind=pl.when(is_agg).then(pl.lit("aggTrade")).otherwise(pl.lit("trade")),
        trade_id=pl.when(is_agg).then(f("a")).otherwise(f("t")),
        first_trade_id=pl.when(is_agg).then(f("f")),
        last_trade_id=pl.when(is_agg).then(f("l")),
        price=_px(f("p")),
        qty=_px(f("q")),
        is_buyer_maker=f("m"),
        trade_ts_ns=_ms_to_ns(f("T")),
    )
    rows, skipped = _keyed(rows, "trade_id")
    return conform("trades", rows), skipped


def bbo(ev: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """`bookTicker` events: best bid/ask with their update id (`u`)."""
    ev, f = _decoded(ev, {"E": pl.Int64, "T": pl.Int64, "s": pl.String, "u": pl.Int64, "b": pl.String,
                  "B": pl.String, "a": pl.String, "A": pl.String})
    rows = ev.select(
        "recv_ts_ns", "source", "stream", "seq", "conn", "market",
        event_ts_ns=_event_ts(f),
        symbol=pl.coalesce(f("s"), pl.col("stream_symbol")),
        transact_ts_ns=_ms_to_ns(f("T")),
        update_id=f("u"),
        bid_px=_px(f("b")),
        bid_qty=_px(f("B")),
        ask_px=_px(f("a")),
        ask_qty=_px(f("A")),
    )
    rows, skipped = _keyed(rows, "update_id")
    return conform("bbo", rows), skipped


_KLINE = pl.Struct({"t": pl.Int64, "T": pl.Int64, "i": pl.String, "o": pl.String,
                    "h": pl.String, "l": pl.String, "c": pl.String, "v": pl.String,
                    "q": pl.String, "n": pl.Int64, "V": pl.String, "Q": pl.String,
                    "x": pl.Boolean})


def klines(ev: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """`kline_<interval>` events; `is_closed` is Binance's `x` (the bar is final)."""
    ev, f = _decoded(ev, {"E": pl.Int64, "T": pl.Int64, "s": pl.String, "k": _KLINE})

    def k(name: str) -> pl.Expr:
        return f("k").struct.field(name)

    rows = ev.select(
        "recv_ts_ns", "source", "stream", "seq", "conn", "market",
        event_ts_ns=_event_ts(f),
        symbol=pl.coalesce(f("s"), pl.col("stream_symbol")),
        interval=k("i"),
        open_ts_ns=_ms_to_ns(k("t")),
        close_ts_ns=_ms_to_ns(k("T")),
        open=_px(k("o")), high=_px(k("h")), low=_px(k("l")), close=_px(k("c")),
        volume=_px(k("v")), quote_volume=_px(k("q")), n_trades=k("n"),
        taker_buy_volume=_px(k("V")), taker_buy_quote_volume=_px(k("Q")),
        is_closed=k("x"),
    )
    rows, skipped = _keyed(rows, "open_ts_ns")
    return conform("klines", rows), skipped
