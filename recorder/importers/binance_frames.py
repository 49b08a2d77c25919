"""What every Binance importer reads from a frame: its stream, its event time, its market.

hftbacktest and cryptofeed recorded the same websocket frames and REST bodies, so both
importers share these few rules rather than each growing its own idea of a Binance frame.
"""

from __future__ import annotations

SOURCES = {"spot": "binance.spot", "usdm": "binance.usdm", "coinm": "binance.coinm",
           "us": "binance.us"}


def source_for(market: str, allowed: tuple[str, ...] = ("spot", "usdm", "coinm", "us")) -> str:
    """`binance.<market>`; a market the format cannot hold is a one-line config error."""
    if market not in allowed:
        raise ValueError(f"import.market={market!r}: expected one of {', '.join(allowed)}")
    return SOURCES[market]


def event_ms(obj: dict) -> int | None:
    """Binance event time `E`, else the transaction/trade time `T`, in ms; None if neither."""
    for key in ("E", "T"):
        v = obj.get(key)
        if type(v) is int:
            return v
    return None


def snapshot_stream(symbol: str) -> str:
    """REST depth snapshots live on `<symbol>@snapshot` (log.md)."""
    return f"{symbol.lower()}@snapshot"
