"""Vectorised views of headered CSV lines (Tardis, data.binance.vision): text, fields, header.

These files hold millions of unquoted numeric records, so lines are split and typed with
polars in one pass per block; only a block that fails UTF-8 validation is walked line by line,
to name the bad lines.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

from recorder.importers.blocks import Block, binary_ranges


def utf8_series(lines: pa.BinaryArray) -> tuple[pl.Series, np.ndarray]:
    """Lines as a polars String series, and the indices of lines that are not UTF-8 (as '')."""
    try:
        return pl.from_arrow(lines.cast(pa.string())), np.zeros(0, np.int64)
    except pa.ArrowInvalid:
        text, bad = [], []
        for i, b in enumerate(lines.to_pylist()):
            try:
                text.append(b.decode("utf-8"))
            except UnicodeDecodeError:
                text.append("")
                bad.append(i)
        return pl.Series(text, dtype=pl.String), np.array(bad, np.int64)


def block_lines(block: Block) -> tuple[pa.BinaryArray, np.ndarray]:
    """A block's non-blank lines (terminators removed) and their line numbers."""
    starts, ends, linenos = block.lines()
    return binary_ranges(block.arr, starts, ends), linenos


def split_fields(text: pl.Series, n_fields: int) -> pl.DataFrame:
    """The first `n_fields` comma-separated fields (strings) and each line's comma count."""
    df = pl.DataFrame({"l": text})
    return df.select(
        pl.col("l").str.splitn(",", n_fields + 1).struct.unnest(),
        pl.col("l").str.count_matches(",", literal=True).alias("commas"),
    )
