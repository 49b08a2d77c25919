"""Tardis.dev normalized CSV files (`tardis-dev` datasets / `datasets.tardis.dev` downloads).

Every Tardis CSV starts `exchange,symbol,timestamp,local_timestamp` (µs since the epoch):
`timestamp` is the exchange's time (event_ts), `local_timestamp` Tardis' receipt time
(recv_ts). The data type is read from the header: quotes, trades, book_snapshot_N (N from the
number of `asks[i].price` columns), incremental_book_L2, derivative_ticker; liquidations share
the trades header, so a file whose name says `liquidations` is read as such. Each record goes
verbatim to source `tardis.<exchange>`, stream `<symbol>.<data type>`; the header record is
the payload of each stream's connect marker, which is where a consumer reads the columns.
"""

from __future__ import annotations

import re

import numpy as np
import polars as pl

from recorder.importers.blocks import inner_name
from recorder.importers.csvlines import block_lines, split_fields, utf8_series
from recorder.importers.fileimport import FileImport

PREFIX = ["exchange", "symbol", "timestamp", "local_timestamp"]
_LAYOUTS = {
    ("ask_amount", "ask_price", "bid_price", "bid_amount"): "quotes",
    ("id", "side", "price", "amount"): "trades",
    ("is_snapshot", "side", "price", "amount"): "incremental_book_L2",
}
_SNAPSHOT_LEVEL = re.compile(r"^asks\[(\d+)\]\.price$")


def data_type(columns: list[str], file_name: str) -> str | None:
    """Tardis data type from the header (and file name for liquidations), None if unknown."""
    rest = tuple(columns[4:])
    if rest in _LAYOUTS:
        kind = _LAYOUTS[rest]
        return "liquidations" if kind == "trades" and "liquidations" in file_name else kind
    levels = [int(m.group(1)) for c in rest if (m := _SNAPSHOT_LEVEL.match(c))]
    if levels and sorted(levels) == list(range(len(levels))) and len(rest) == 4 * len(levels):
        return f"book_snapshot_{len(levels)}"
    if "funding_rate" in rest and "mark_price" in rest:
        return "derivative_ticker"
    return None


def read(fi: FileImport) -> None:
    header: str | None = None
    dtype = fi.options.data_type
    n_commas = 0
    for block in fi.blocks():
        lines, linenos = block_lines(block)
        if header is None:
            if len(lines) == 0:
                continue
            header_bytes = lines[0].as_py()
            header = header_bytes.decode("utf-8", "replace")
            columns = header.split(",")
            if columns[:4] != PREFIX:
                raise fi.fail(int(linenos[0]), f"not a Tardis CSV header (expected it to start "
                              f"{','.join(PREFIX)}): {header[:80]!r}")
            found = data_type(columns, inner_name(fi.path))
            if dtype is None:
                if found is None:
                    raise fi.fail(int(linenos[0]), "unknown Tardis data type for header "
                                  f"{header[:80]!r}: give data_type=")
                dtype = found
            fi.report.note(f"data type {dtype} "
                           + ("(given)" if fi.options.data_type else "(from the header)"))
            fi.report.unit = "us"
            n_commas = len(columns) - 1
            fi.connection(fi.conn, header_bytes)
            lines, linenos = lines.slice(1), linenos[1:]
        _add(fi, lines, linenos, dtype, n_commas)
    if header is None:
        raise fi.fail(None, "empty file: no Tardis CSV header")


def _add(fi: FileImport, lines, linenos: np.ndarray, dtype: str, n_commas: int) -> None:
    if len(lines) == 0:
        return
    text, not_utf8 = utf8_series(lines)
    f = split_fields(text, 4)
    df = f.select(
        source=pl.lit("tardis.") + pl.col("field_0"),
        stream=pl.col("field_1").str.to_lowercase() + pl.lit("." + dtype),
        event=pl.col("field_2").cast(pl.Int64, strict=False) * 1_000,
        recv=pl.col("field_3").cast(pl.Int64, strict=False) * 1_000,
        bad_event=pl.col("field_2").is_not_null() & (pl.col("field_2") != "")
        & pl.col("field_2").cast(pl.Int64, strict=False).is_null(),
        commas=pl.col("commas"),
        empty_key=(pl.col("field_0").fill_null("") == "") | (pl.col("field_1").fill_null("") == ""),
    )
    reasons = np.full(len(df), "", dtype=object)
    reasons[df["bad_event"].to_numpy()] = "timestamp is not an integer (µs)"
    reasons[df["recv"].is_null().to_numpy()] = "local_timestamp is not an integer (µs)"
    reasons[df["empty_key"].to_numpy()] = "empty exchange or symbol"
    reasons[(df["commas"] != n_commas).to_numpy()] = (
        f"expected {n_commas + 1} fields like the header")
    reasons[not_utf8] = "not UTF-8 text"
    bad = np.flatnonzero(reasons != "")
    fi.reject(linenos[bad], reasons[bad].tolist())
    keep = reasons == ""
    good = df.filter(pl.Series(keep))
    fi.add(source=good["source"].to_arrow(), stream=good["stream"].to_arrow(),
           recv_ns=good["recv"].to_numpy(), event_ns=good["event"].to_arrow(),
           payload=lines.filter(keep))
