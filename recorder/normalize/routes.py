"""Which parser reads which stream: decided once per distinct (source, stream), never per row.

Sources and stream names follow docs/concepts/log.md. A stream no parser knows (a Binance
`markPrice` stream, binance.vision `bookDepth` percentage buckets, ...) is left in raw only.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

BINANCE_MARKETS = {"binance.spot": "spot", "binance.usdm": "usdm", "binance.coinm": "coinm",
                   "binance.us": "us"}
# Tardis exchange ids of the Binance venues; other exchanges keep market null.
TARDIS_MARKETS = {"binance": "spot", "binance-futures": "usdm", "binance-delivery": "coinm",
                  "binance-us": "us"}
VISION_PREFIX = "binance.vision."


@dataclass(frozen=True)
class Route:
    """Where one stream goes: `family` picks the parser, `data_type` the variant inside it."""

    table: str
    family: str  # binance | vision | tardis | reddit
    data_type: str  # lower case: depth, snapshot, trade, aggtrade, bookticker, kline_1m, ...
    market: str | None
    symbol: str | None  # from the stream name, upper case; None for reddit


def _binance_table(data_type: str) -> str | None:
    if data_type.startswith("depth") or data_type == "snapshot":
        return "depth"
    if data_type in ("trade", "aggtrade"):
        return "trades"
    if data_type == "bookticker":
        return "bbo"
    if data_type.startswith("kline_"):
        return "klines"
    return None


def _csv_table(family: str, data_type: str) -> str | None:
    if data_type in ("trades", "aggtrades"):
        return "trades"
    if family == "vision":
        if data_type == "bookticker":
            return "bbo"
        if data_type.startswith("klines"):
            return "klines"
        return None
    if data_type == "quotes":
        return "bbo"
    if data_type == "incremental_book_l2" or data_type.startswith("book_snapshot_"):
        return "depth"
    return None


def route(source: str, stream: str) -> Route | None:
    """The route of one stream, or None when no table is derived from it."""
    if source in BINANCE_MARKETS:
        sym, _, rest = stream.partition("@")
        data_type = rest.split("@", 1)[0].lower()
        table = _binance_table(data_type)
        return table and Route(table, "binance", data_type, BINANCE_MARKETS[source], sym.upper())
    if source.startswith(VISION_PREFIX) or source.startswith("tardis."):
        family = "vision" if source.startswith(VISION_PREFIX) else "tardis"
        sym, _, data_type = stream.partition(".")
        data_type = data_type.lower()
        table = _csv_table(family, data_type)
        if family == "vision":
            market = source[len(VISION_PREFIX):]
        else:
            market = TARDIS_MARKETS.get(source[len("tardis."):])
        return table and Route(table, family, data_type, market, sym.upper())
    if source == "reddit":
        data_type = stream.rsplit("/", 1)[-1].lower()
        if data_type in ("submissions", "comments"):
            return Route("posts", "reddit", data_type, None, None)
    return None


def stream_key() -> pl.Expr:
    """One string per (source, stream), for `is_in` filters on routed streams."""
    return pl.concat_str([pl.col("source"), pl.col("stream")], separator="\x00")
