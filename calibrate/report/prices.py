"""Read a price series from a CSV or Parquet file: find (or take) the time and price columns,
convert times to UTC epoch ns, and say exactly which file and column is wrong when one is.

Times may be ISO-8601 strings (naive = UTC), dates, datetimes, or epoch numbers whose unit is
told by magnitude (s < 1e11 <= ms < 1e14 <= µs < 1e17 <= ns, as in replay.timeparse).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl

TIME_NAMES = ("t_ns", "timestamp", "time", "datetime", "date", "open_time", "ts", "unix",
              "recv_ts_ns", "event_ts_ns", "created_utc")
PRICE_NAMES = ("close", "price_close", "adj close", "adj_close", "last_price", "price", "mid",
               "last", "vwap")
VOLUME_NAMES = ("volume", "qty", "quantity", "amount")
SIDE_NAMES = ("side", "taker_side", "aggressor_side", "is_buyer_maker", "buyer_maker")
BUY_WORDS, SELL_WORDS = ("buy", "b", "bid"), ("sell", "s", "ask")


class PriceFileError(ValueError):
    """A one-line message naming the file and, where it applies, the column."""


@dataclass(frozen=True)
class PriceSeries:
    t_ns: np.ndarray
    price: np.ndarray
    volume: np.ndarray | None
    time_col: str
    price_col: str
    volume_col: str | None
    dropped: int          # rows without a price or time
    side: np.ndarray | None = None     # per-trade aggressor sign (+1 buy, -1 sell, 0 unknown)
    side_col: str | None = None


def read_table(path: Path) -> pl.DataFrame:
    name = path.name.lower()
    try:
        if name.endswith((".parquet", ".pq")):
            return pl.read_parquet(path)
        if name.endswith((".csv", ".csv.gz", ".txt", ".tsv")):
            return pl.read_csv(path, infer_schema_length=10_000,
                               separator="\t" if name.endswith(".tsv") else ",")
    except (OSError, pl.exceptions.PolarsError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise PriceFileError(f"{path}: cannot read: {first}") from None
    raise PriceFileError(f"{path}: expected a .csv or .parquet file")


def _pick(df: pl.DataFrame, path: Path, wanted: str | None, names: tuple[str, ...], what: str,
          option: str) -> str | None:
    if wanted is not None:
        if wanted not in df.columns:
            raise PriceFileError(f"{path}: column {wanted!r} not found "
                                 f"(columns: {', '.join(df.columns)})")
        return wanted
    lower = {c.lower(): c for c in df.columns}
    for n in names:
        if n in lower:
            return lower[n]
    if what == "time":
        for c in df.columns:
            if df.schema[c].is_temporal():
                return c
    if option:
        raise PriceFileError(f"{path}: no {what} column found (columns: {', '.join(df.columns)}); "
                             f"name one with {option}")
    return None


def epoch_ns(values: np.ndarray) -> np.ndarray:
    """Epoch numbers in s/ms/µs/ns (by the magnitude of the median) to int64 ns."""
    v = np.asarray(values, dtype=np.float64)
    mag = float(np.nanmedian(np.abs(v))) if len(v) else 0.0
    scale = 1e9 if mag < 1e11 else 1e6 if mag < 1e14 else 1e3 if mag < 1e17 else 1.0
    if scale == 1.0 and np.issubdtype(np.asarray(values).dtype, np.integer):
        return np.asarray(values, dtype=np.int64)
    return np.round(v * scale).astype(np.int64)


def to_ns(col: pl.Series, path: Path) -> np.ndarray:
    """A time column to int64 UTC ns; nulls become INT64_MIN (dropped later)."""
    name = col.name
    null = np.iinfo(np.int64).min
    dt = col.dtype
    if dt == pl.Date:
        col = col.cast(pl.Datetime("ns"))
        dt = col.dtype
    if isinstance(dt, pl.Datetime):
        if dt.time_zone is not None:
            col = col.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        return col.cast(pl.Datetime("ns")).dt.epoch("ns").fill_null(null).to_numpy()
    if dt.is_numeric():
        v = col.cast(pl.Float64).to_numpy()
        out = np.full(len(v), null, dtype=np.int64)
        ok = np.isfinite(v)
        out[ok] = epoch_ns(col.filter(pl.Series(ok)).to_numpy())
        return out
    if dt == pl.String:
        s = col.str.strip_chars()
        numeric = s.str.contains(r"^[0-9]+(\.[0-9]+)?$").fill_null(False)
        if len(s) and bool(numeric.filter(s.is_not_null()).all()):
            return to_ns(s.cast(pl.Float64) if s.str.contains(r"\.").any() else s.cast(pl.Int64),
                         path)
        ser = pd.Series(s.to_list(), dtype=object)
        try:
            parsed = pd.to_datetime(ser, utc=True, format="ISO8601")
        except (ValueError, TypeError):
            parsed = pd.to_datetime(ser, utc=True, format="ISO8601", errors="coerce")
            bad = ser[parsed.isna() & ser.notna()]
            raise PriceFileError(f"{path}: column {name!r}: cannot parse time {bad.iloc[0]!r} "
                                 f"(data row {int(bad.index[0]) + 1}); expected ISO-8601 or "
                                 "epoch numbers") from None
        return np.where(parsed.isna(), null,
                        parsed.dt.tz_localize(None).astype("datetime64[ns]").astype(np.int64))
    raise PriceFileError(f"{path}: column {name!r}: type {dt} is not a time")


def trade_side(col: pl.Series, path: Path) -> np.ndarray:
    """+1 buyer-initiated, -1 seller-initiated, 0 unknown. A boolean `*buyer_maker` column is
    Binance's `m` (true = the seller was the aggressor); text columns say buy/sell."""
    if col.dtype == pl.Boolean:
        m = col.to_numpy()
        return np.where(col.is_null().to_numpy(), 0.0, np.where(m, -1.0, 1.0))
    s = col.cast(pl.String).str.strip_chars().str.to_lowercase()
    buy, sell = s.is_in(BUY_WORDS).fill_null(False), s.is_in(SELL_WORDS).fill_null(False)
    other = s.filter(~buy & ~sell & s.is_not_null() & (s != "unknown") & (s != ""))
    if len(other):
        raise PriceFileError(f"{path}: column {col.name!r}: side {other[0]!r} is not buy or sell")
    return np.where(buy.to_numpy(), 1.0, np.where(sell.to_numpy(), -1.0, 0.0))


def load_prices(path: str | Path, time_col: str | None = None,
                price_col: str | None = None) -> PriceSeries:
    """The file's (time, price[, volume]) sorted by time (stable), rows missing either dropped."""
    path = Path(path)
    if not path.is_file():
        raise PriceFileError(f"{path}: no such file")
    df = read_table(path)
    tc = _pick(df, path, time_col, TIME_NAMES, "time", "--time-col")
    pc = _pick(df, path, price_col, PRICE_NAMES, "price", "--price-col")
    if tc == pc:
        raise PriceFileError(f"{path}: column {tc!r} cannot be both time and price")
    vc = _pick(df, path, None, VOLUME_NAMES, "volume", "")
    if not df.schema[pc].is_numeric():
        try:
            df = df.with_columns(pl.col(pc).cast(pl.Float64, strict=True))
        except pl.exceptions.PolarsError:
            raise PriceFileError(f"{path}: column {pc!r}: prices are not numbers "
                                 f"(type {df.schema[pc]})") from None
    t = to_ns(df[tc], path)
    price = df[pc].cast(pl.Float64).fill_null(np.nan).to_numpy()
    ok = (t != np.iinfo(np.int64).min) & np.isfinite(price)
    if not ok.any():
        raise PriceFileError(f"{path}: column {pc!r}: no rows with both a time and a price")
    bad = np.flatnonzero(ok & (price <= 0))
    if len(bad):
        raise PriceFileError(f"{path}: column {pc!r}: {len(bad)} non-positive prices "
                             f"(first at data row {int(bad[0]) + 1}: {float(price[bad[0]])!r})")
    volume = None
    if vc is not None and vc not in (tc, pc) and df.schema[vc].is_numeric():
        volume = df[vc].cast(pl.Float64).fill_null(np.nan).to_numpy()[ok]
    sc = _pick(df, path, None, SIDE_NAMES, "side", "")
    side = None if sc is None else trade_side(df[sc], path)[ok]
    t, price = t[ok], price[ok]
    order = np.argsort(t, kind="stable")
    return PriceSeries(t[order], price[order], None if volume is None else volume[order],
                       tc, pc, vc if volume is not None else None, int((~ok).sum()),
                       None if side is None else side[order], sc)
