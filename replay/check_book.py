"""`smabm check-book`: rebuild every Binance book in the log and check it against bookTicker.

A bookTicker event carries the update id (`u`) of the book state it shows. Where that id is
the final id of a depth message, the rebuilt book right after that message must show the same
best bid and ask, price and size: an independent end-to-end check of the normaliser, the sync
rules and the book kernel. Only states where the book is valid (synced) are compared.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl

from replay.book import MARKET_RULES, MARKET_SOURCES, BookStage

MAX_MISMATCHES = 5
_BINANCE_SOURCES = sorted(MARKET_SOURCES.values())


def check_book(root: str | Path, window: tuple[int | None, int | None] | None = None,
               symbols: Sequence[str] | None = None) -> dict:
    """Replay the depth of `window` and compare with bookTicker; returns a JSON-able summary.

    Keys: compared, matched, match_pct (None when nothing was comparable), crossed, gaps,
    mismatches (the first few), books (one entry per source/symbol), notes.
    """
    from recorder.normalize.read import read_table

    depth_lf = read_table(root, "depth", window, symbols).filter(
        pl.col("source").is_in(_BINANCE_SOURCES))
    bbo_lf = read_table(root, "bbo", window, symbols).filter(
        pl.col("source").is_in(_BINANCE_SOURCES))
    groups = (depth_lf.select("source", "market", "symbol").unique()
              .sort("source", "market", "symbol").collect())
    books, mismatches, notes = [], [], []
    for source, market, symbol in groups.iter_rows():
        if market not in MARKET_RULES:
            notes.append(f"{source} {symbol}: market {market!r} has no book rules; skipped")
            continue
        sel = (pl.col("source") == source) & (pl.col("symbol") == symbol)
        depth = depth_lf.filter(sel).collect()
        bbo = bbo_lf.filter(sel).select("update_id", "bid_px", "bid_qty", "ask_px",
                                        "ask_qty").collect()
        book = _check_one(depth, bbo, source, market, symbol, mismatches)
        books.append(book)
        if book["note"]:
            notes.append(f"{source} {symbol}: {book['note']}")
    compared = sum(b["compared"] for b in books)
    matched = sum(b["matched"] for b in books)
    if not books:
        notes.append("no Binance depth in the log for this window")
    return {
        "compared": compared,
        "matched": matched,
        "match_pct": round(100.0 * matched / compared, 4) if compared else None,
        "crossed": sum(b["crossed"] for b in books),
        "gaps": sum(b["gaps"] for b in books),
        "mismatches": mismatches[:MAX_MISMATCHES],
        "books": books,
        "notes": notes,
    }


def _check_one(depth: pl.DataFrame, bbo: pl.DataFrame, source: str, market: str, symbol: str,
               mismatches: list[dict]) -> dict:
    stage = BookStage(symbol, market, source=source)
    states = stage.replay_messages(depth)
    counters = stage.counters()
    snapshots = int(depth.filter(pl.col("is_snapshot"))
                    .select(pl.struct("stream", "seq").n_unique()).item())
    note = ""
    if snapshots == 0:
        note = "no snapshot in the log: the book never becomes valid, nothing to compare"
    elif bbo.height == 0:
        note = "no bookTicker in the log: nothing to compare"
    msgs = pl.DataFrame({k: states[k] for k in ("last_id", "valid", "bid_px", "bid_qty", "ask_px",
                                                "ask_qty")})
    msgs = msgs.filter(pl.col("valid")).unique("last_id", keep="first", maintain_order=True)
    joined = bbo.join(msgs, left_on="update_id", right_on="last_id", how="inner",
                      suffix="_book", maintain_order="left")
    ok = np.ones(joined.height, bool)
    for col in ("bid_px", "bid_qty", "ask_px", "ask_qty"):
        ok &= joined[col].to_numpy() == joined[f"{col}_book"].to_numpy()
    if len(mismatches) < MAX_MISMATCHES:
        for row in joined.filter(pl.Series(~ok)).head(MAX_MISMATCHES - len(mismatches)).iter_rows(
                named=True):
            mismatches.append({"source": source, "symbol": symbol, **row})
    return {"source": source, "market": market, "symbol": symbol,
            "messages": counters["messages"], "snapshots": snapshots,
            "compared": int(joined.height), "matched": int(ok.sum()),
            "crossed": counters["crossed"], "gaps": counters["gaps"],
            "price_decimals": stage.price_decimals, "qty_decimals": stage.qty_decimals,
            "note": note}
