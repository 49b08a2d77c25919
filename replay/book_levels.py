"""The real book's resting levels at one instant, from the log (vectorised, no book loop).

Used once per run to seed the simulated book: the levels at time t are the last snapshot before
t overlaid with every later diff that extends it (update id above the snapshot's), keeping the
last quantity set at each (side, price) and dropping zeros.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

from recorder.normalize.parse import parse_events
from recorder.reader import LogReader

LOOKBACK_NS = 60_000_000_000  # diffs may be logged before the snapshot they straddle


def depth_rows_before(reader: LogReader, streams: list[str], snapshot_stream: str, t_ns: int) -> pl.DataFrame:
    """Normalised depth rows from shortly before the last snapshot received before `t_ns`."""
    last = None
    for batch in reader.read(window=(None, t_ns), streams=[snapshot_stream], columns=["recv_ts_ns"]):
        if batch.num_rows:
            last = batch.column(0)[-1].as_py()
    if last is None:
        return pl.DataFrame()
    raw = list(reader.read(window=(last - LOOKBACK_NS, t_ns), streams=streams))
    if not raw:
        return pl.DataFrame()
    return parse_events(pa.Table.from_batches(raw), tables=("depth",)).tables["depth"]


def levels_at(depth: pl.DataFrame, symbol: str, n_levels: int) -> tuple[np.ndarray, ...]:
    """(bid_px, bid_qty, ask_px, ask_qty), best first, from rows in log order."""
    d = depth.filter(pl.col("symbol") == symbol.upper()).with_row_index("_ord")
    snaps = d.filter(pl.col("is_snapshot"))
    if snaps.height == 0:
        raise ValueError(f"no depth snapshot of {symbol} before the simulation start")
    last_snap = snaps["last_id"][-1]
    snap_at = snaps.filter(pl.col("last_id") == last_snap)["_ord"].min()
    rows = d.filter(
        ((pl.col("is_snapshot")) & (pl.col("last_id") == last_snap) & (pl.col("_ord") >= snap_at))
        | (~pl.col("is_snapshot") & (pl.col("last_id") > last_snap))
    ).filter(pl.col("side") >= 0)
    # the snapshot first, then diffs in log order (a straddling diff is often logged before it)
    rows = rows.sort(pl.col("is_snapshot").not_(), "_ord")
    book = (
        rows.group_by("side", "price", maintain_order=True)
        .agg(pl.col("qty").last())
        .filter(pl.col("qty") > 0)
    )
    bids = book.filter(pl.col("side") == 0).sort("price", descending=True).head(n_levels)
    asks = book.filter(pl.col("side") == 1).sort("price").head(n_levels)
    return (
        bids["price"].to_numpy(),
        bids["qty"].to_numpy(),
        asks["price"].to_numpy(),
        asks["qty"].to_numpy(),
    )
