"""`smabm log info` and `smabm log verify`: what is in the log, and is it whole.

Verify checks every sealed segment's hash against the index, files the index does not know,
per-stream seq continuity, Binance update-id chains (spot `U == prev u + 1`, futures
`pu == prev u`), trade-id continuity, and gap markers written by recorders. Every gap is
reported with its time and size; a clean log has none.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from recorder.index import LogIndex
from recorder.segments import sha256_file

# Id fields per stream kind; decoded separately because names clash (`a` is asks in depth
# updates but the aggregate-trade id in aggTrade events).
_CHAIN_FIELDS = {"@depth": ("U", "u", "pu"), "@trade": ("t",), "@aggTrade": ("a",)}


def _decode_ids(payload: pl.Series, fields: tuple[str, ...]) -> pl.DataFrame:
    """Id columns from envelope or bare Binance events, vectorised."""
    ids = pl.Struct({f: pl.Int64 for f in fields})
    dtype = pl.Struct({"data": ids, **dict(ids.to_schema())})
    dec = payload.cast(pl.String).str.json_decode(dtype).struct.unnest()
    return dec.select([pl.coalesce(pl.col("data").struct.field(f), pl.col(f)).alias(f) for f in fields])


def iso(ns: int | None) -> str | None:
    if ns is None:
        return None
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).isoformat(timespec="microseconds")


def _scan(root: Path, paths: list[str], columns: list[str]) -> pl.LazyFrame:
    if not paths:
        from recorder.events import SCHEMA

        return pl.LazyFrame(schema=pl.Schema(pl.from_arrow(SCHEMA.empty_table()).schema)).select(columns)
    return pl.scan_parquet([str(root / p) for p in paths], hive_partitioning=False).select(columns)


def _require_log(root: Path) -> None:
    if not (root / "index.sqlite").exists():
        raise FileNotFoundError(f"log.root={root}: no log here (index.sqlite missing)")


def info(root: str | Path) -> dict:
    """Streams with counts, spans and bytes; segments; imports."""
    root = Path(root)
    _require_log(root)
    idx = LogIndex(root)
    segs = idx.segments()
    per: dict[tuple[str, str], dict] = {}
    for s in segs:
        for t in s.streams:
            d = per.setdefault((t.source, t.stream), {"source": t.source, "stream": t.stream,
                                                     "events": 0, "bytes": 0, "segments": 0,
                                                     "first_recv": None, "last_recv": None})
            d["events"] += t.rows
            d["segments"] += 1
            d["bytes"] += round(s.bytes * t.rows / max(s.rows, 1))
            d["first_recv"] = min(x for x in (d["first_recv"], t.min_recv_ns) if x is not None)
            d["last_recv"] = max(x for x in (d["last_recv"], t.max_recv_ns) if x is not None)
    streams = []
    for d in sorted(per.values(), key=lambda d: (d["source"], d["stream"])):
        d["first"], d["last"] = iso(d.pop("first_recv")), iso(d.pop("last_recv"))
        streams.append(d)
    out = {
        "root": str(root),
        "segments": len(segs),
        "events": sum(s.rows for s in segs),
        "bytes": sum(s.bytes for s in segs),
        "first": iso(min((s.min_recv_ns for s in segs), default=None)),
        "last": iso(max((s.max_recv_ns for s in segs), default=None)),
        "streams": streams,
        "imports": len(idx.imports()),
        "open_journals": sorted(p.stem for p in (root / "journal").glob("*.journal")),
    }
    idx.close()
    return out


def _chain_gaps(df: pl.DataFrame) -> list[dict]:
    """Update-id or trade-id gaps of one stream's messages, in (recv_ts, seq) order."""
    if df.height == 0:
        return []
    source, stream = df["source"][0], df["stream"][0]
    tag = next(t for t in _CHAIN_FIELDS if t in stream)
    try:
        ids = _decode_ids(df["payload"], _CHAIN_FIELDS[tag])
    except pl.exceptions.ComputeError as exc:
        return [{"type": "unparsable", "source": source, "stream": stream, "detail": str(exc)[:200]}]
    d = pl.concat([df.select("recv_ts_ns", "seq"), ids], how="horizontal")
    where = {"type": "update_id" if tag == "@depth" else "trade_id", "source": source, "stream": stream}
    gaps = []
    if tag == "@depth":
        d = d.filter(pl.col("u").is_not_null()).with_columns(prev_u=pl.col("u").shift(1))
        futures = d["pu"].null_count() < d.height
        broken = (pl.col("pu") != pl.col("prev_u")) if futures else (pl.col("U") != pl.col("prev_u") + 1)
        for r in d.filter(pl.col("prev_u").is_not_null() & broken).iter_rows(named=True):
            size = (r["pu"] - r["prev_u"]) if futures else (r["U"] - r["prev_u"] - 1)
            gaps.append({**where, "recv_ts_ns": r["recv_ts_ns"], "time": iso(r["recv_ts_ns"]),
                         "seq": r["seq"], "prev_last_id": r["prev_u"], "first_id": r["U"],
                         "prev_id": r["pu"], "size": size})
        return gaps
    col = _CHAIN_FIELDS[tag][0]
    d = d.filter(pl.col(col).is_not_null()).with_columns(prev=pl.col(col).shift(1))
    broken = pl.col("prev").is_not_null() & (pl.col(col) != pl.col("prev") + 1)
    for r in d.filter(broken).iter_rows(named=True):
        gaps.append({**where, "recv_ts_ns": r["recv_ts_ns"], "time": iso(r["recv_ts_ns"]), "seq": r["seq"],
                     "prev_id": r["prev"], "first_id": r[col], "size": r[col] - r["prev"] - 1})
    return gaps


def verify(root: str | Path) -> dict:
    """Check hashes and continuity; `ok` is false when anything is wrong or missing."""
    root = Path(root)
    _require_log(root)
    idx = LogIndex(root)
    segs = idx.segments()
    problems: list[dict] = []
    known = {s.path for s in segs}
    good: list[str] = []
    for s in segs:
        p = root / s.path
        if not p.exists():
            problems.append({"type": "missing_segment", "path": s.path})
        elif sha256_file(p) != s.sha256:
            problems.append({"type": "hash_mismatch", "path": s.path})
        else:
            good.append(s.path)
    for p in sorted((root / "raw").glob("*/*.parquet")) if (root / "raw").exists() else []:
        rel = str(p.relative_to(root))
        if rel not in known:
            problems.append({"type": "unindexed_segment", "path": rel})
    gaps: list[dict] = []
    keys = _scan(root, good, ["source", "stream", "conn", "seq", "recv_ts_ns", "kind", "payload"])
    # seq strictly increases per stream; inside one connection it is also contiguous
    seqs = (keys.select("source", "stream", "conn", "seq").sort("source", "stream", "seq")
            .with_columns(prev=pl.col("seq").shift(1).over("source", "stream"),
                          prev_conn=pl.col("conn").shift(1).over("source", "stream"))
            .filter(pl.col("prev").is_not_null()
                    & ((pl.col("seq") == pl.col("prev"))
                       | ((pl.col("conn") == pl.col("prev_conn")) & (pl.col("seq") != pl.col("prev") + 1))))
            .collect())
    for r in seqs.iter_rows(named=True):
        gaps.append({"type": "seq", "source": r["source"], "stream": r["stream"], "conn": r["conn"],
                     "prev_seq": r["prev"], "seq": r["seq"], "size": r["seq"] - r["prev"] - 1})
    markers = keys.filter(pl.col("kind") == "gap").select(
        "source", "stream", "recv_ts_ns", "seq", pl.col("payload").cast(pl.String)).collect()
    for r in markers.iter_rows(named=True):
        gaps.append({"type": "marker", "source": r["source"], "stream": r["stream"],
                     "recv_ts_ns": r["recv_ts_ns"], "time": iso(r["recv_ts_ns"]), "seq": r["seq"],
                     "detail": r["payload"]})
    chained = [(a, b) for a, b in idx.streams()
               if a.startswith("binance.") and any(t in b for t in _CHAIN_FIELDS)]
    for source, stream in chained:
        msgs = (keys.filter((pl.col("source") == source) & (pl.col("stream") == stream)
                            & (pl.col("kind") == "message"))
                .sort("recv_ts_ns", "seq").collect())
        gaps.extend(_chain_gaps(msgs))
    events = sum(s.rows for s in segs)
    idx.close()
    return {"ok": not problems and not gaps, "events": events, "segments": len(segs),
            "problems": problems, "gaps": gaps}
