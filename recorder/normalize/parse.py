"""Raw events (any mix of sources) to the normalised tables, in memory.

This is the one parser of the project: the live path, importers and the cache all feed raw
events through it (cryptofeed's habit: no second parser for historical data). Only `message`
and `snapshot` events are parsed; `connect` markers supply CSV headers; `disconnect`, `gap`
and `error` markers stay in raw, where the book stage reads them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import polars as pl
import pyarrow as pa

from recorder.normalize import binance, csv_sources, reddit
from recorder.normalize.csv_records import HeaderKey, decode_groups, headers_from_markers
from recorder.normalize.routes import Route, route, stream_key
from recorder.normalize.tables import LOG_ORDER, TABLES, conform, empty, order_keys

_BINANCE = {"depth": binance.depth, "trades": binance.trades, "bbo": binance.bbo,
            "klines": binance.klines}


@dataclass
class Parsed:
    """Tables derived from a batch of raw events, and how many messages yielded no row."""

    tables: dict[str, pl.DataFrame]
    skipped: dict[str, int] = field(default_factory=dict)


def check_tables(tables: Iterable[str] | None) -> tuple[str, ...]:
    if tables is None:
        return TABLES
    tables = tuple(tables)
    bad = [t for t in tables if t not in TABLES]
    if bad:
        raise ValueError(f"normalize.tables: unknown table(s) {bad}; known: {list(TABLES)}")
    return tables


def routes_of(raw: pl.DataFrame) -> dict[tuple[str, str], Route]:
    pairs = raw.select("source", "stream").unique(maintain_order=True).iter_rows()
    return {p: r for p in pairs if (r := route(*p)) is not None}


def needs_outside_headers(raw: pl.DataFrame) -> bool:
    """True when a CSV conn in `raw` has no connect marker in `raw` itself."""
    csv_streams = {k for k, r in routes_of(raw).items() if r.family != "binance"}
    if not csv_streams:
        return False
    known = headers_from_markers(raw)
    conns = (raw.filter(pl.col("kind").is_in(["message", "snapshot"]))
             .select("source", "stream", "conn").unique().iter_rows())
    return any((s, st) in csv_streams and (s, st, c) not in known for s, st, c in conns)


def _is_json(ev: pl.DataFrame) -> pl.Series:
    """Reddit payloads are JSON objects (PRAW dumps) or CSV records (exports)."""
    return ev.select(pl.col("payload").bin.starts_with(b"{")).to_series()


def parse_events(raw: pl.DataFrame | pa.Table, tables: Iterable[str] | None = None,
                 headers: Mapping[HeaderKey, str] | None = None, scan: bool = True) -> Parsed:
    """Normalise `raw` (log schema) into each requested table, sorted in log order.

    `headers` adds CSV headers of conns whose connect marker lies outside `raw` (an earlier
    segment of the same import). `scan=False` decodes Binance JSON with polars only (the
    reference path; the compiled scanner must give the same rows).
    """
    tables = check_tables(tables)
    if isinstance(raw, pa.Table):
        raw = pl.from_arrow(raw)
    raw = raw.sort(LOG_ORDER)  # segments and replay chunks arrive sorted: then this is cheap
    routes = routes_of(raw)
    all_headers = {**(headers or {}), **headers_from_markers(raw)}
    out = Parsed({t: empty(t) for t in tables}, {t: 0 for t in tables})
    for table in tables:
        mine = [(k, r) for k, r in routes.items() if r.table == table]
        if not mine:
            continue
        parts: list[pl.DataFrame] = []
        by_family: dict[str, list[tuple[tuple[str, str], Route]]] = {}
        for k, r in mine:
            by_family.setdefault(r.family, []).append((k, r))
        for family, items in by_family.items():
            parts += _parse_family(table, family, items, raw, all_headers, out, scan)
        parts = [p for p in parts if p.height]
        if len(parts) == 1:
            out.tables[table] = conform(table, parts[0])
        elif parts:
            rows = pl.concat([conform(table, p) for p in parts], how="vertical")
            out.tables[table] = rows.sort(order_keys(table), maintain_order=True)
    return out


def _parse_family(table: str, family: str, items: list[tuple[tuple[str, str], Route]],
                  raw: pl.DataFrame, headers: Mapping[HeaderKey, str], out: Parsed,
                  scan: bool) -> list[pl.DataFrame]:
    keys = ["\x00".join(k) for k, _ in items]
    # one filter (one copy of the payloads) per family: data events of the routed streams
    ev = raw.filter(pl.col("kind").is_in(["message", "snapshot"]) & stream_key().is_in(keys))
    if ev.height == 0:
        return []
    if family == "binance":
        key = stream_key()
        ev = ev.with_columns(
            market=key.replace_strict(keys, [r.market for _, r in items], return_dtype=pl.String),
            stream_symbol=key.replace_strict(keys, [r.symbol for _, r in items],
                                             return_dtype=pl.String),
            data_type=key.replace_strict(keys, [r.data_type for _, r in items],
                                         return_dtype=pl.String))
        try:
            rows, skipped = _BINANCE[table](ev, scan)
        except pl.exceptions.PolarsError as exc:
            names = ", ".join(sorted(f"{a}:{b}" for (a, b), _ in items))
            raise ValueError(f"normalize {table} from {names}: {str(exc).splitlines()[0]} "
                             "(a payload that is not the expected Binance JSON)") from exc
        out.skipped[table] += skipped
        return [rows]
    parts = []
    for (source, stream), r in items:
        one = ev.filter((pl.col("source") == source) & (pl.col("stream") == stream))
        if one.height == 0:
            continue
        if family == "reddit":
            is_json = _is_json(one)
            if is_json.any():
                parts.append(reddit.from_json(one.filter(is_json), r.data_type))
            one = one.filter(~is_json)
            if one.height == 0:
                continue
        for part, cols in decode_groups(one, headers, family, r.market, r.data_type):
            if family == "reddit":
                parts.append(reddit.from_csv(part, cols, r.data_type))
            else:
                parts.append(csv_sources.parse(part, cols, r))
    return parts
