"""Reddit submissions and comments (PRAW JSON objects or CSV records) to `posts` rows.

Scrapers name the same thing differently (`selftext`/`text`, `comment_id`, `comment_score`,
`link_id`...): each post field is the first of its aliases that the payload or header has; for
comments the comment-specific names come first, because one export style puts the parent
submission's `created_utc`/`score` beside the comment's `comment_created_utc`/`comment_score`.
Reddit's kind prefixes (`t1_`, `t3_`) are stripped from parent/post ids so they join on `id`.
`created_ts_ns` is a numeric epoch in the payload when there is one, else the raw event's
time (the importer resolved ISO strings with its timezone option), else the ISO text as UTC.
Every version seen is kept in the cache (a window must not see versions from after its end);
`read_table` deduplicates by id: the latest version in the window wins, and
`first_recv_ts_ns` keeps when the id was first seen there.
"""

from __future__ import annotations

import polars as pl

from recorder.normalize.tables import LOG_ORDER

_ALIASES = {
    "submissions": {
        "id": ("id", "submission_id", "post_id", "name"),
        "title": ("title",),
        "body": ("selftext", "text", "body"),
        "author": ("author",),
        "created": ("created_utc", "created"),
        "score": ("score",),
        "subreddit": ("subreddit",),
        "parent_id": (),
        "post_id": ("id", "submission_id", "post_id", "name"),
    },
    "comments": {
        "id": ("comment_id", "id", "name"),
        "title": (),
        "body": ("body", "comment_body", "text"),
        "author": ("comment_author", "author"),
        "created": ("comment_created_utc", "created_utc", "created"),
        "score": ("comment_score", "score"),
        "subreddit": ("subreddit",),
        "parent_id": ("parent_id",),
        "post_id": ("post_id", "link_id", "submission_id"),
    },
}
# Every alias above, decoded as text (numbers arrive as their JSON text).
_JSON = pl.Struct({a: pl.String for d in _ALIASES.values() for names in d.values() for a in names})


def _strip_kind(e: pl.Expr) -> pl.Expr:
    return e.str.replace(r"^t\d_", "")


def _created_ns(created: pl.Expr) -> pl.Expr:
    # Decimal, not float: epoch seconds with a fraction convert to ns exactly.
    epoch_ns = (created.cast(pl.Decimal(38, 9), strict=False) * 10**9).cast(pl.Int64)
    iso = created.str.to_datetime(strict=False, time_zone="UTC", time_unit="ns")
    return pl.coalesce(epoch_ns, pl.col("event_ts_ns"), iso.dt.epoch("ns"))


def _posts(ev: pl.DataFrame, fields: pl.DataFrame, data_type: str) -> pl.DataFrame:
    lower = {c.lower(): c for c in fields.columns}

    def pick(key: str) -> pl.Expr:
        names = [lower[a] for a in _ALIASES[data_type][key] if a in lower]
        if not names:
            return pl.lit(None, dtype=pl.String)
        return pl.coalesce([pl.col(n).cast(pl.String) for n in names])

    # evaluated on the payload's own columns first: a CSV may have a `source` column too
    picked = fields.select(**{k: pick(k) for k in _ALIASES[data_type]})
    base = pl.concat([ev.select("recv_ts_ns", "event_ts_ns", "source", "stream", "seq", "conn"),
                      picked], how="horizontal")
    rows = base.select(
        "recv_ts_ns", "source", "stream", "seq", "conn", "title", "body", "author",
        first_recv_ts_ns=pl.col("recv_ts_ns"),
        id=_strip_kind(pl.col("id")),
        kind=pl.lit("submission" if data_type == "submissions" else "comment"),
        subreddit=pl.coalesce(pl.col("subreddit"), pl.col("stream").str.extract(r"^r/([^/]+)/")),
        created_ts_ns=_created_ns(pl.col("created")),
        parent_id=_strip_kind(pl.col("parent_id")),
        post_id=_strip_kind(pl.col("post_id")),
        score=pl.col("score").cast(pl.Float64, strict=False).cast(pl.Int64),
    )
    return rows.filter(pl.col("id").is_not_null())


def from_json(ev: pl.DataFrame, data_type: str) -> pl.DataFrame:
    """PRAW objects serialised as JSON, one per raw event. Values are read as text first
    (a score may be written 5 or 5.0, created_utc as a number or an ISO string)."""
    fields = ev.select(pl.col("payload").cast(pl.String).str.json_decode(_JSON).alias("_j"))
    return _posts(ev, fields.unnest("_j"), data_type)


def from_csv(ev: pl.DataFrame, cols: pl.DataFrame, data_type: str) -> pl.DataFrame:
    """CSV records already split into named string columns."""
    return _posts(ev, cols, data_type)


def dedupe(rows: pl.LazyFrame) -> pl.LazyFrame:
    """One row per id: the latest version in log order, with the first time the id was seen."""
    return (rows.sort(LOG_ORDER)
            .with_columns(first_recv_ts_ns=pl.col("first_recv_ts_ns").min().over("id"))
            .unique("id", keep="last")
            .sort(LOG_ORDER))
