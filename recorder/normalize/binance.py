"""Binance websocket events and REST depth snapshots (JSON) to typed rows, vectorised.

Two decoders give the same fields: the compiled scanner (binance_scan.py, used when every
payload of the batch is plain enough for it) and polars' JSON decoder with an explicit Struct
schema (the fallback, and the reference: tests check both agree on whole recordings). The
polars schema holds both the combined-stream envelope (`{"stream":..,"data":{..}}`) and the
bare event's fields, and a field is `coalesce(data.f, f)`, so both shapes give identical
rows. Fields missing from a payload are null. Decimal strings become correctly rounded
float64, so "61837.63000000" and "61837.63" are the same float. Quantities are as Binance
sends them: base asset on spot and USD-M, contracts on COIN-M.

Input frames hold raw log columns plus `market`, `stream_symbol` and `data_type` (routes.py),
in log order; rows come out in the same order. Every parser returns `(rows, skipped)`:
messages lacking the table's key field (a subscription reply, an error body) yield no row
and are counted.
"""

from __future__ import annotations

import polars as pl

from recorder.normalize import binance_scan
from recorder.normalize.tables import conform

_LEVELS = pl.List(pl.List(pl.String))
_MS = 1_000_000
_RAW = ["recv_ts_ns", "event_ts_ns", "source", "stream", "seq", "conn", "kind", "market",
        "stream_symbol", "data_type"]


def _polars_fields(ev: pl.DataFrame, fields: dict[str, pl.DataType]) -> pl.DataFrame:
    """The payload decoded by polars, one column per field (envelope's `data` first)."""
    dtype = pl.Struct({"data": pl.Struct(fields), **fields})
    j = pl.col("_j")
    return (ev.select(_j=pl.col("payload").cast(pl.String).str.json_decode(dtype))
            .select([pl.coalesce(j.struct.field("data").struct.field(f), j.struct.field(f))
                     .alias(f) for f in fields]))


def _with_fields(ev: pl.DataFrame, fields: pl.DataFrame | dict) -> pl.DataFrame:
    if isinstance(fields, dict):
        fields = pl.DataFrame([pl.from_arrow(a).alias(k) for k, a in fields.items()])
    return pl.concat([ev.select(_RAW), fields], how="horizontal")


def _ns(name: str) -> pl.Expr:
    return pl.col(name) * _MS


def _event_ts() -> pl.Expr:
    """Binance `E` (else `T`) in ms; the raw event time when the payload has neither."""
    return pl.coalesce(_ns("E"), _ns("T"), pl.col("event_ts_ns"))


def _symbol() -> pl.Expr:
    return pl.coalesce(pl.col("s"), pl.col("stream_symbol"))


def _keyed(df: pl.DataFrame, key: str) -> tuple[pl.DataFrame, int]:
    kept = df.filter(pl.col(key).is_not_null())
    return kept, df.height - kept.height


_ID = ["recv_ts_ns", "source", "stream", "seq", "conn", "market"]
_DEPTH_FIELDS = {"E": pl.Int64, "T": pl.Int64, "s": pl.String, "symbol": pl.String,
                 "U": pl.Int64, "u": pl.Int64, "pu": pl.Int64, "b": _LEVELS, "a": _LEVELS,
                 "lastUpdateId": pl.Int64, "bids": _LEVELS, "asks": _LEVELS}


def _polars_levels(fields: pl.DataFrame, keep: pl.Series) -> pl.DataFrame:
    """Level rows of the kept messages by exploding the decoded lists (fallback path)."""
    none = pl.lit([], dtype=_LEVELS)
    bids = pl.coalesce(pl.col("b"), pl.col("bids"), none)
    asks = pl.coalesce(pl.col("a"), pl.col("asks"), none)
    lv = pl.col("lv")
    return (fields.select(nb=bids.list.len().cast(pl.Int32), lv=pl.concat_list(bids, asks))
            .with_row_index("msg").filter(keep)
            .with_columns(level=pl.int_ranges(0, lv.list.len(), dtype=pl.Int32))
            .explode(["lv", "level"], empty_as_null=True)
            .select(pl.col("msg").cast(pl.Int64),
                    level=pl.col("level").fill_null(0),
                    side=pl.when(lv.is_null()).then(-1)
                    .when(pl.col("level") < pl.col("nb")).then(0).otherwise(1).cast(pl.Int8),
                    price=lv.list.get(0).cast(pl.Float64).fill_null(float("nan")),
                    qty=lv.list.get(1).cast(pl.Float64).fill_null(float("nan"))))


def depth(ev: pl.DataFrame, scan: bool = True) -> tuple[pl.DataFrame, int]:
    """Depth diffs and REST snapshots to one row per level; level-less messages keep one row.

    A snapshot (`kind=snapshot`, body `{"lastUpdateId", "bids", "asks"}`) has
    first_id = last_id = lastUpdateId and is_snapshot true. Futures diffs carry `pu` (prev_id)
    and `T` (transact_ts_ns); spot leaves both null. Levels are bids then asks, as received.
    """
    scanned = binance_scan.scan_depth(ev["payload"].to_arrow()) if scan else None
    if scanned is not None:
        fields, levels = scanned
    else:
        fields = _polars_fields(ev, _DEPTH_FIELDS).with_columns(
            s=pl.coalesce(pl.col("s"), pl.col("symbol")))
    lid = pl.col("lastUpdateId")
    msgs = _with_fields(ev, fields).select(
        *_ID,
        event_ts_ns=_event_ts(),
        symbol=_symbol(),
        transact_ts_ns=_ns("T"),
        first_id=pl.coalesce(pl.col("U"), lid),
        last_id=pl.coalesce(pl.col("u"), lid),
        prev_id=pl.col("pu"),
        is_snapshot=(pl.col("kind") == "snapshot") | lid.is_not_null(),
    )
    keep = msgs["last_id"].is_not_null()
    if scanned is not None:
        msg, level, side, price, qty = binance_scan.assemble_levels(levels, keep.to_numpy())
        lv = pl.DataFrame({"msg": msg, "level": level, "side": side, "price": price, "qty": qty})
    else:
        lv = _polars_levels(fields, keep)
    rows = pl.concat([msgs[lv["msg"].to_numpy()], lv.drop("msg")], how="horizontal")
    return conform("depth", rows), int((~keep).sum())


_TRADE_FIELDS = {"e": pl.String, "E": pl.Int64, "T": pl.Int64, "s": pl.String, "t": pl.Int64,
                 "a": pl.Int64, "f": pl.Int64, "l": pl.Int64, "p": pl.String, "q": pl.String,
                 "m": pl.Boolean}


def trades(ev: pl.DataFrame, scan: bool = True) -> tuple[pl.DataFrame, int]:
    """`trade` (id `t`) and `aggTrade` (id `a`, first/last trade ids `f`/`l`) events.

    The kind comes from the payload's `e`, else from the stream name. In spot `trade` events
    `a` is the seller's order id, so the id field is chosen by kind, never coalesced.
    """
    fields = binance_scan.scan_flat(ev["payload"].to_arrow(), trade=True) if scan else None
    if fields is None:
        fields = _polars_fields(ev, _TRADE_FIELDS).select(
            pl.exclude("e", "p", "q"), p=pl.col("p").cast(pl.Float64),
            q=pl.col("q").cast(pl.Float64), is_agg=pl.col("e") == "aggTrade")
    is_agg = pl.coalesce(pl.col("is_agg"), pl.col("data_type") == "aggtrade")
    rows = _with_fields(ev, fields).select(
        *_ID,
        event_ts_ns=_event_ts(),
        symbol=_symbol(),
        kind=pl.when(is_agg).then(pl.lit("aggTrade")).otherwise(pl.lit("trade")),
        trade_id=pl.when(is_agg).then(pl.col("a")).otherwise(pl.col("t")),
        first_trade_id=pl.when(is_agg).then(pl.col("f")),
        last_trade_id=pl.when(is_agg).then(pl.col("l")),
        price=pl.col("p"),
        qty=pl.col("q"),
        is_buyer_maker=pl.col("m"),
        trade_ts_ns=_ns("T"),
    )
    rows, skipped = _keyed(rows, "trade_id")
    return conform("trades", rows), skipped


_BBO_FIELDS = {"E": pl.Int64, "T": pl.Int64, "s": pl.String, "u": pl.Int64, "b": pl.String,
               "B": pl.String, "a": pl.String, "A": pl.String}


def bbo(ev: pl.DataFrame, scan: bool = True) -> tuple[pl.DataFrame, int]:
    """`bookTicker` events: best bid/ask with their update id (`u`)."""
    fields = binance_scan.scan_flat(ev["payload"].to_arrow(), trade=False) if scan else None
    if fields is None:
        fields = _polars_fields(ev, _BBO_FIELDS).with_columns(
            [pl.col(c).cast(pl.Float64) for c in "bBaA"])
    rows = _with_fields(ev, fields).select(
        *_ID,
        event_ts_ns=_event_ts(),
        symbol=_symbol(),
        transact_ts_ns=_ns("T"),
        update_id=pl.col("u"),
        bid_px=pl.col("b"),
        bid_qty=pl.col("B"),
        ask_px=pl.col("a"),
        ask_qty=pl.col("A"),
    )
    rows, skipped = _keyed(rows, "update_id")
    return conform("bbo", rows), skipped


_KLINE = pl.Struct({"t": pl.Int64, "T": pl.Int64, "i": pl.String, "o": pl.String,
                    "h": pl.String, "l": pl.String, "c": pl.String, "v": pl.String,
                    "q": pl.String, "n": pl.Int64, "V": pl.String, "Q": pl.String,
                    "x": pl.Boolean})


def klines(ev: pl.DataFrame, scan: bool = True) -> tuple[pl.DataFrame, int]:
    """`kline_<interval>` events (polars decoder only: a few per minute per symbol)."""
    del scan
    fields = _polars_fields(ev, {"E": pl.Int64, "T": pl.Int64, "s": pl.String, "k": _KLINE})

    def k(name: str) -> pl.Expr:
        return pl.col("k").struct.field(name)

    def px(name: str) -> pl.Expr:
        return k(name).cast(pl.Float64)

    rows = _with_fields(ev, fields).select(
        *_ID,
        event_ts_ns=_event_ts(),
        symbol=_symbol(),
        interval=k("i"),
        open_ts_ns=k("t") * _MS,
        close_ts_ns=k("T") * _MS,
        open=px("o"), high=px("h"), low=px("l"), close=px("c"),
        volume=px("v"), quote_volume=px("q"), n_trades=k("n"),
        taker_buy_volume=px("V"), taker_buy_quote_volume=px("Q"),
        is_closed=k("x"),
    )
    rows, skipped = _keyed(rows, "open_ts_ns")
    return conform("klines", rows), skipped
