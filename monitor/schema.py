"""The metrics schema in PostgreSQL, created and migrated by the project.

Every metric table is partitioned by day on `ts` (native range partitioning; partitions are
made on demand by the sink) and has a BRIN index on `ts`: metrics arrive in time order, so a
BRIN index is a few pages per partition and costs the COPY almost nothing. Replay tables also
carry a b-tree on `(run_id, step)`, the dashboard's one query shape. `schema_version` records
each applied migration; `migrate` applies the missing ones under an advisory lock, so two
processes starting at once do not race.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import psycopg
from psycopg import sql

# column name -> PostgreSQL type, in COPY order; `ts` first in every table
TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "top_of_book": (("ts", "timestamptz"), ("run_id", "text"), ("step", "bigint"),
                    ("market", "text"), ("bid", "double precision"), ("ask", "double precision"),
                    ("mid", "double precision"), ("spread", "double precision"),
                    ("bid_depth", "double precision"), ("ask_depth", "double precision")),
    "bars": (("ts", "timestamptz"), ("run_id", "text"), ("step", "bigint"),
             ("open", "double precision"), ("high", "double precision"), ("low", "double precision"),
             ("close", "double precision"), ("vwap", "double precision"),
             ("volume", "double precision"), ("buy_volume", "double precision"),
             ("sell_volume", "double precision"), ("trade_count", "bigint"),
             ("realized_var", "double precision")),
    "sentiment": (("ts", "timestamptz"), ("run_id", "text"), ("step", "bigint"),
                  ("n_texts", "bigint"), ("score_mean", "double precision"),
                  ("score_ewma", "double precision"), ("epistemic_ewma", "double precision"),
                  ("aleatoric_ewma", "double precision"), ("disagreement", "double precision")),
    "regimes": (("ts", "timestamptz"), ("run_id", "text"), ("step", "bigint"),
                ("mood", "double precision"), ("mood_sd", "double precision"), ("mood_label", "smallint"),
                ("volatility", "double precision"), ("volatility_sd", "double precision"),
                ("volatility_label", "smallint"), ("liquidity", "double precision"),
                ("liquidity_sd", "double precision"), ("liquidity_label", "smallint")),
    "agent_positions": (("ts", "timestamptz"), ("run_id", "text"), ("step", "bigint"),
                        ("agent_type", "text"), ("inventory", "double precision"),
                        ("pnl", "double precision")),
    "recorder_status": (("ts", "timestamptz"), ("recorder", "text"), ("received", "bigint"),
                        ("written", "bigint"), ("dropped", "bigint"), ("queue_depth", "bigint"),
                        ("batches", "bigint"), ("ack_lag_ms", "double precision"),
                        ("max_ack_lag_ms", "double precision")),
    "recorder_streams": (("ts", "timestamptz"), ("recorder", "text"), ("source", "text"),
                         ("stream", "text"), ("received", "bigint"), ("written", "bigint"),
                         ("rate_per_s", "double precision"), ("feed_lag_ms", "double precision"),
                         ("gaps", "bigint"), ("reconnects", "bigint"), ("errors", "bigint")),
}
RUN_TABLES = ("top_of_book", "bars", "sentiment", "regimes", "agent_positions")


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]   # each with {s} for the schema name


def _v1() -> tuple[str, ...]:
    out = ["CREATE TABLE IF NOT EXISTS {s}.runs (run_id text PRIMARY KEY, "
           "registered_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL "
           "DEFAULT now(), first_ts timestamptz, last_ts timestamptz, rows bigint NOT NULL DEFAULT 0)"]
    for name, cols in TABLES.items():
        body = ", ".join(f"{c} {t}" + (" NOT NULL" if c == "ts" else "") for c, t in cols)
        out.append(f"CREATE TABLE {{s}}.{name} ({body}) PARTITION BY RANGE (ts)")
        out.append(f"CREATE INDEX {name}_ts_brin ON {{s}}.{name} USING brin (ts)")
        if name in RUN_TABLES:
            out.append(f"CREATE INDEX {name}_run_step ON {{s}}.{name} (run_id, step)")
    return tuple(out)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "metric tables partitioned by day on ts, BRIN on ts, runs registry", _v1()),
)
LATEST = MIGRATIONS[-1].version


def _lock_key(schema: str, what: str) -> sql.Composable:
    return sql.SQL("SELECT pg_advisory_xact_lock(hashtext({}))").format(
        sql.Literal(f"smabm.monitor.{what}.{schema}"))


def migrate(conn: psycopg.Connection, schema: str) -> int:
    """Bring `schema` to the latest version (idempotent); return the version it is at.

    Refuses a schema newer than this code: writing into tables it does not know is how
    metrics get silently wrong."""
    s = sql.Identifier(schema)
    with conn.transaction():
        conn.execute(_lock_key(schema, "migrate"))
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(s))
        conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {}.schema_version (version int PRIMARY KEY, "
                             "description text NOT NULL, applied_at timestamptz NOT NULL "
                             "DEFAULT now())").format(s))
        current = conn.execute(sql.SQL("SELECT coalesce(max(version), 0) FROM {}.schema_version")
                               .format(s)).fetchone()[0]
        if current > LATEST:
            raise RuntimeError(f"metrics schema {schema!r} is at version {current}; this code knows "
                               f"versions up to {LATEST}: upgrade the project")
        for m in MIGRATIONS:
            if m.version <= current:
                continue
            for stmt in m.statements:
                conn.execute(sql.SQL(stmt).format(s=s))
            conn.execute(sql.SQL("INSERT INTO {}.schema_version (version, description) "
                                 "VALUES (%s, %s)").format(s), (m.version, m.description))
            current = m.version
    return current


def partition_name(table: str, day: date) -> str:
    return f"{table}_p{day:%Y%m%d}"


def ensure_partitions(conn: psycopg.Connection, schema: str, table: str, days: list[date]) -> None:
    """Create the day partitions of `table` that `days` need (inside the caller's transaction)."""
    conn.execute(_lock_key(schema, "partition"))
    for day in days:
        lo = datetime(day.year, day.month, day.day, tzinfo=UTC)
        conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {}.{} PARTITION OF {}.{} "
                             "FOR VALUES FROM ({}) TO ({})").format(
            sql.Identifier(schema), sql.Identifier(partition_name(table, day)),
            sql.Identifier(schema), sql.Identifier(table),
            sql.Literal(lo.isoformat()), sql.Literal((lo + timedelta(days=1)).isoformat())))
