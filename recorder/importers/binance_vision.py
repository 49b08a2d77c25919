"""data.binance.vision CSVs: klines, trades, aggTrades, bookDepth (csv, csv.gz or the zip).

The symbol and data type come from Binance's file names (`BTCUSDT-1m-2021-11-27.csv`,
`BTCUSDT-trades-2024-01-01.zip`, `BTCUSDT-aggTrades-...`, `BTCUSDT-bookDepth-...`) unless
`symbol=` / `data_type=` are given; the market (spot, usdm, coinm) is not in the name and comes
from `market=` (default spot). Older files have no header, newer futures files have one: a
first line that does not start with a digit is the header. Times are ms, except spot files
from 2025 on, which are µs: the unit is read per file from the magnitude.

These files have no local clock: recv_ts is the record's own close time (klines) or trade time,
so a window of them replays as if each record had been received the moment it was final.
event_ts is the open time (klines) or trade time.
"""

from __future__ import annotations

import re

import numpy as np
import polars as pl

from recorder.importers.blocks import inner_name
from recorder.importers.csvlines import block_lines, split_fields, utf8_series
from recorder.importers.fileimport import FileImport
from recorder.importers.timestamps import NS_PER, unit_name, units_of

MARKETS = ("spot", "usdm", "coinm")
_NAME = re.compile(r"^(?P<symbol>[A-Z0-9]+)-(?P<kind>[A-Za-z0-9]+)-\d{4}-\d{2}(?:-\d{2})?"
                   r"\.(?:csv|zip)(?:\.gz)?$")
_INTERVAL = re.compile(r"^\d+(?:s|m|h|d|w|mo)$")
# data type -> (accepted field counts, event-time field, receive-time field)
_LAYOUTS = {
    "klines": ((12,), 0, 6),
    "trades": ((6, 7), 4, 4),
    "aggTrades": ((7, 8), 5, 5),
    "bookDepth": ((4,), 0, 0),
}


def _layout_key(dtype: str) -> str:
    return "klines" if dtype.startswith("klines_") else dtype


def parse_name(name: str) -> tuple[str, str] | None:
    """(symbol, data type) from a data.binance.vision file name, e.g. ('btcusdt', 'klines_1m')."""
    m = _NAME.match(name)
    if m is None:
        return None
    kind = m.group("kind")
    if _INTERVAL.match(kind):
        return m.group("symbol").lower(), f"klines_{kind}"
    if kind in _LAYOUTS:
        return m.group("symbol").lower(), kind
    return None


def read(fi: FileImport) -> None:
    o = fi.options
    market = o.market or "spot"
    if market not in MARKETS:
        raise ValueError(f"import.market={market!r}: expected one of {', '.join(MARKETS)}")
    parsed = parse_name(inner_name(fi.path))
    symbol = o.symbol.lower() if o.symbol else (parsed[0] if parsed else None)
    dtype = o.data_type or (parsed[1] if parsed else None)
    if symbol is None or dtype is None:
        raise fi.fail(None, "cannot tell symbol and data type from the file name (expected "
                      "e.g. BTCUSDT-1m-2021-11-27.csv or BTCUSDT-trades-2024-01-01.zip): "
                      "give symbol= and data_type=")
    if _layout_key(dtype) not in _LAYOUTS:
        raise ValueError(f"import.data_type={dtype!r}: expected klines_<interval>, "
                         f"{', '.join(k for k in _LAYOUTS if k != 'klines')}")
    fi.report.note(f"{symbol} {dtype} market {market}"
                   + (" (market given)" if o.market else " (market defaulted: give market=)"))
    source, stream = f"binance.vision.{market}", f"{symbol}.{dtype}"
    state: dict = {"first": True, "unit": None}
    for block in fi.blocks():
        lines, linenos = block_lines(block)
        if state["first"] and len(lines):
            state["first"] = False
            head = lines[0].as_py()
            header = head if not head[:1].isdigit() else b""
            fi.connection(fi.conn, header)
            if header:
                fi.report.note("the file has a header line")
                lines, linenos = lines.slice(1), linenos[1:]
        _add(fi, lines, linenos, source, stream, _layout_key(dtype), state)


def _add(fi: FileImport, lines, linenos: np.ndarray, source: str, stream: str, layout: str,
         state: dict) -> None:
    if len(lines) == 0:
        return
    counts, ev_i, recv_i = _LAYOUTS[layout]
    text, not_utf8 = utf8_series(lines)
    f = split_fields(text, max(ev_i, recv_i) + 1)
    ev_col, recv_col = pl.col(f"field_{ev_i}"), pl.col(f"field_{recv_i}")
    if layout == "bookDepth":  # '2023-01-01 00:00:08' UTC
        t = ev_col.str.to_datetime("%Y-%m-%d %H:%M:%S", time_zone="UTC", time_unit="ns",
                                   strict=False).cast(pl.Int64)
        df = f.select(ev=t, recv=t, commas=pl.col("commas"))
        unit_ok = np.ones(len(df), np.bool_)
        scale = 1
    else:
        df = f.select(ev=ev_col.cast(pl.Int64, strict=False),
                      recv=recv_col.cast(pl.Int64, strict=False), commas=pl.col("commas"))
        ev = df["ev"].fill_null(0).to_numpy()
        units = units_of(ev)
        ok_rows = np.flatnonzero(df["ev"].is_not_null().to_numpy() & (units >= 0))
        if state["unit"] is None and len(ok_rows):
            state["unit"] = int(units[ok_rows[0]])
            fi.report.unit = unit_name(state["unit"])
            fi.report.note(f"times are {fi.report.unit} (from their magnitude)")
        unit_ok = units == state["unit"]
        scale = NS_PER[unit_name(state["unit"])] if state["unit"] is not None else 1
    reasons = np.full(len(df), "", dtype=object)
    reasons[~unit_ok] = f"time is not in {fi.report.unit} like the file's first record"
    reasons[df["ev"].is_null().to_numpy() | df["recv"].is_null().to_numpy()] = (
        "time field is not a timestamp")
    reasons[~df["commas"].is_in([c - 1 for c in counts]).to_numpy()] = (
        f"expected {' or '.join(map(str, counts))} fields for {layout}")
    reasons[not_utf8] = "not UTF-8 text"
    bad = np.flatnonzero(reasons != "")
    fi.reject(linenos[bad], reasons[bad].tolist())
    keep = reasons == ""
    good = df.filter(pl.Series(keep))
    fi.add(source=source, stream=[stream] * good.height,
           recv_ns=good["recv"].to_numpy() * scale,
           event_ns=(good["ev"] * scale).to_arrow(), payload=lines.filter(keep))
