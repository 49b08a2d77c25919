"""CSV records stored one per raw event, turned back into named string columns.

A CSV import writes each record verbatim and, per stream, a `connect` marker whose payload is
the file's header record (docs/concepts/log.md). The records of one conn are joined with
newlines under that header and parsed by polars' CSV reader in one call, so quoting (commas or
newlines inside a Reddit body) is handled by a real CSV parser and no Python runs per row.
Headerless binance.vision files (empty header) get the format's documented column order.
"""

from __future__ import annotations

import io
from collections.abc import Mapping

import polars as pl

HeaderKey = tuple[str, str, str]  # (source, stream, conn)

# data.binance.vision column order for files without a header line (spot files never had one;
# futures files gained one in 2022). Keyed by (market family, data type).
_SPOT_TRADES = "id,price,qty,quote_qty,time,is_buyer_maker,is_best_match"
_FUT_TRADES = "id,price,qty,quote_qty,time,is_buyer_maker"
_SPOT_AGG = ("agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,"
             "is_buyer_maker,is_best_match")
_FUT_AGG = "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker"
_KLINES = ("open_time,open,high,low,close,volume,close_time,quote_volume,count,"
           "taker_buy_volume,taker_buy_quote_volume,ignore")
_BOOK_TICKER = ("update_id,best_bid_price,best_bid_qty,best_ask_price,best_ask_qty,"
                "transaction_time,event_time")
VISION_DEFAULT_HEADERS: dict[tuple[str, str], str] = {
    ("spot", "trades"): _SPOT_TRADES,
    ("futures", "trades"): _FUT_TRADES,
    ("spot", "aggtrades"): _SPOT_AGG,
    ("futures", "aggtrades"): _FUT_AGG,
    ("spot", "klines"): _KLINES,
    ("futures", "klines"): _KLINES,
    ("futures", "bookticker"): _BOOK_TICKER,
}


class MissingHeaderError(ValueError):
    """A CSV stream's conn has no usable header; the message names the stream and conn."""


def headers_from_markers(raw: pl.DataFrame) -> dict[HeaderKey, str]:
    """Header record per (source, stream, conn) from the `connect` markers in `raw`."""
    marks = raw.filter(pl.col("kind") == "connect").select(
        "source", "stream", "conn", pl.col("payload").cast(pl.String))
    return {(s, st, c): p for s, st, c, p in marks.iter_rows()}


def default_header(family: str, market: str | None, data_type: str) -> str | None:
    """The binance.vision column order for a headerless file, or None where there is none."""
    if family != "vision":
        return None
    kind = "spot" if market == "spot" else "futures"
    base = "klines" if data_type.startswith("klines") else data_type
    return VISION_DEFAULT_HEADERS.get((kind, base))


def decode(ev: pl.DataFrame, header: str, what: str) -> pl.DataFrame:
    """String columns of `ev`'s CSV payloads under `header`, row-aligned with `ev`."""
    text = header.lstrip("\ufeff") + "\n" + ev.select(
        pl.col("payload").cast(pl.String).str.join("\n")).item()
    cols = pl.read_csv(io.BytesIO(text.encode()), infer_schema=False, has_header=True)
    if cols.height != ev.height:
        raise ValueError(f"{what}: {ev.height} CSV records parsed into {cols.height} rows "
                         "(a record with an unbalanced quote?)")
    return cols


def decode_groups(ev: pl.DataFrame, headers: Mapping[HeaderKey, str], family: str,
                  market: str | None, data_type: str) -> list[tuple[pl.DataFrame, pl.DataFrame]]:
    """(raw rows, decoded columns) per conn of one stream, in first-seen order."""
    out = []
    for (source, stream, conn), part in ev.group_by(["source", "stream", "conn"],
                                                    maintain_order=True):
        header = headers.get((source, stream, conn)) or default_header(family, market, data_type)
        if not header:
            raise MissingHeaderError(
                f"stream {source}:{stream} conn {conn!r}: no CSV header (its connect marker is "
                "missing or empty, and the format has no default column order)")
        out.append((part, decode(part, header, f"stream {source}:{stream} conn {conn!r}")))
    return out
