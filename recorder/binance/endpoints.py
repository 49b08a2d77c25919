"""Binance markets: default endpoints and the limits a recorder must respect.

Figures are Binance's published limits (spot: 1024 streams per connection, 6000 request weight
per minute, depth limit 1000 = weight 50; USD-M and COIN-M: 200 streams per connection, 2400
weight per minute, depth limit 1000 = weight 20; every connection is cut after 24 h).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Market:
    """One Binance market: its source name, endpoints and limits."""

    name: str
    source: str
    ws_url: str
    rest_url: str
    max_streams_per_conn: int
    weight_per_min: int
    futures: bool

    def depth_weight(self, limit: int) -> int:
        """Request weight of one REST depth snapshot of `limit` levels."""
        if self.futures:
            return 2 if limit <= 50 else 5 if limit <= 100 else 10 if limit <= 500 else 20
        return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250


MARKETS: dict[str, Market] = {
    "spot": Market("spot", "binance.spot", "wss://stream.binance.com:9443/stream",
                   "https://api.binance.com/api/v3/depth", 1024, 6000, False),
    "usdm": Market("usdm", "binance.usdm", "wss://fstream.binance.com/stream",
                   "https://fapi.binance.com/fapi/v1/depth", 200, 2400, True),
    "coinm": Market("coinm", "binance.coinm", "wss://dstream.binance.com/stream",
                    "https://dapi.binance.com/dapi/v1/depth", 200, 2400, True),
    "us": Market("us", "binance.us", "wss://stream.binance.us:9443/stream",
                 "https://api.binance.us/api/v3/depth", 1024, 6000, False),
}


def market(name: str, ws_url: str | None = None, rest_url: str | None = None) -> Market:
    """The market `name` with optional endpoint overrides (tests point them at 127.0.0.1)."""
    if name not in MARKETS:
        raise ValueError(f"record.binance.markets: unknown market {name!r} "
                         f"(expected one of {', '.join(MARKETS)})")
    m = MARKETS[name]
    return Market(m.name, m.source, ws_url or m.ws_url, rest_url or m.rest_url,
                  m.max_streams_per_conn, m.weight_per_min, m.futures)


def stream_names(symbols: list[str], kinds: list[str]) -> list[str]:
    """Combined-stream names `<symbol lower>@<kind>`, symbol-major, in config order."""
    out = []
    for s in symbols:
        for k in kinds:
            name = f"{s.lower()}@{k}"
            if name not in out:
                out.append(name)
    return out
