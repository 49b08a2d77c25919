"""`MetricsSink`: metric rows into PostgreSQL without ever holding up the producer.

Producers (the replay's chunk callback, the recorder-status follower) call `put`, which only
appends to an in-memory queue under a lock and returns. A background thread takes everything
queued, writes it with one `COPY ... FROM STDIN (FORMAT csv)` per table in one transaction
(the CSV is made by pyarrow's C++ writer: no per-row Python) and commits.

The sink holds at most `max_rows` rows (queued plus in flight). While the database is slow or
down the writer keeps its batch and retries; new rows queue up to the bound, and past it `put`
drops them, counts them in `dropped` and logs a warning (at most every `warn_every_s`). So
`offered == written + dropped + pending` at every moment, and after `close()` pending is 0.
The DSN is never logged: error messages are reported by class and with the DSN removed.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import date

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from psycopg import sql

from monitor.rows import SCHEMAS, stage_rows, status_rows
from monitor.schema import RUN_TABLES, TABLES, ensure_partitions, migrate

log = logging.getLogger("smabm.monitor")


def libpq_dsn(dsn: str) -> str:
    """Accept the SQLAlchemy spelling Optuna uses (`postgresql+psycopg://`) as well."""
    for prefix in ("postgresql+psycopg://", "postgresql+psycopg2://", "postgres+psycopg://"):
        if dsn.startswith(prefix):
            return "postgresql://" + dsn[len(prefix):]
    return dsn


def safe_error(exc: BaseException, dsn: str) -> str:
    """`Class: message` with the DSN and its password taken out (psycopg may echo either)."""
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    secrets = [dsn, libpq_dsn(dsn)]
    try:
        pw = psycopg.conninfo.conninfo_to_dict(libpq_dsn(dsn)).get("password")
        if pw:
            secrets.append(str(pw))
    except psycopg.ProgrammingError:
        pass
    for s in secrets:
        if s:
            msg = msg.replace(s, "***")
    return f"{type(exc).__name__}: {msg}"


@dataclass(frozen=True)
class SinkSettings:
    """`monitor.sink.*` (less `enabled` and `dsn_env`), checked in `monitor.settings`."""

    schema: str = "smabm"
    max_rows: int = 500_000
    batch_rows: int = 50_000
    flush_interval_s: float = 0.5
    retry_s: float = 1.0
    connect_timeout_s: float = 5.0
    statement_timeout_s: float = 30.0
    warn_every_s: float = 10.0


@dataclass
class SinkStats:
    offered: int = 0
    written: int = 0
    dropped: int = 0
    pending: int = 0
    batches: int = 0
    errors: int = 0
    last_error: str | None = None
    per_table: dict[str, int] = field(default_factory=dict)


class MetricsSink:
    """Bounded queue + background COPY writer into the metrics schema (see module doc)."""

    def __init__(self, dsn: str, settings: SinkSettings | None = None) -> None:
        self._dsn = dsn
        self.settings = s = settings or SinkSettings()
        if s.max_rows <= 0 or s.batch_rows <= 0:
            raise ValueError("monitor.sink.max_rows and batch_rows must be positive")
        self._queue: deque[tuple[str, str | None, pa.Table]] = deque()
        self._cond = threading.Condition()
        self._held = 0           # queued + in flight
        self._stats = SinkStats()
        self._closing = False
        self._deadline = float("inf")
        self._last_warn = -float("inf")
        self._unwarned = 0
        self._conn: psycopg.Connection | None = None
        self._partitions: set[tuple[str, date]] = set()
        self._thread = threading.Thread(target=self._run, name="metrics-sink", daemon=True)

    def start(self) -> MetricsSink:
        self._thread.start()
        return self

    def __enter__(self) -> MetricsSink:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # --- producer side: never blocks on the database ---------------------------------------
    def put(self, table: str, rows: pa.Table, run_id: str | None = None) -> bool:
        """Queue `rows` for metric table `table`; False when dropped (the sink is full)."""
        if table not in TABLES:
            raise ValueError(f"unknown metric table {table!r} (known: {', '.join(TABLES)})")
        if not rows.schema.equals(SCHEMAS[table]):
            raise ValueError(f"rows for metric table {table!r} must have the schema of "
                             f"monitor.rows.SCHEMAS[{table!r}], got {rows.schema.names}")
        n = rows.num_rows
        if n == 0:
            return True
        with self._cond:
            self._stats.offered += n
            if self._closing or self._held + n > self.settings.max_rows:
                self._stats.dropped += n
                self._warn_drop_locked(n)
                return False
            self._held += n
            self._queue.append((table, run_id, rows))
            if self._held >= self.settings.batch_rows:
                self._cond.notify()
        return True

    def put_stage(self, run_id: str, stage: str, table: pa.Table) -> None:
        """A replay stage's step outputs (one chunk) as metric rows."""
        for name, rows in stage_rows(run_id, stage, table).items():
            self.put(name, rows, run_id)

    def put_status(self, recorder: str, status: dict, ts_ns: int) -> None:
        """One recorder status snapshot (taken at `ts_ns`, epoch ns) as metric rows."""
        for name, rows in status_rows(recorder, status, ts_ns).items():
            self.put(name, rows)

    def _warn_drop_locked(self, n: int) -> None:
        self._unwarned += n
        now = time.monotonic()
        if now - self._last_warn >= self.settings.warn_every_s:
            log.warning("metrics sink full (%d rows held): dropped %d rows (%d in all); the "
                        "database is slow or unreachable", self._held, self._unwarned,
                        self._stats.dropped)
            self._last_warn, self._unwarned = now, 0

    @property
    def stats(self) -> SinkStats:
        with self._cond:
            return SinkStats(**{**self._stats.__dict__, "pending": self._held,
                                "per_table": dict(self._stats.per_table)})

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until everything queued so far is written or dropped; True if it was."""
        end = time.monotonic() + timeout_s
        with self._cond:
            self._cond.notify_all()
            while self._held and time.monotonic() < end:
                self._cond.wait(0.05)
            return self._held == 0

    def close(self, timeout_s: float = 10.0) -> SinkStats:
        """Write what is held (retrying up to `timeout_s`), drop and count the rest, stop."""
        with self._cond:
            self._closing = True
            self._deadline = time.monotonic() + timeout_s
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout_s + self.settings.statement_timeout_s + 5)
        with self._cond:
            if self._held:  # the writer is wedged past every deadline: count, never hang
                self._stats.dropped += self._held
                log.warning("metrics sink closed with %d rows unwritten (dropped)", self._held)
                self._held = 0
                self._queue.clear()
        return self.stats

    # --- writer thread ----------------------------------------------------------------------
    def _take(self) -> list[tuple[str, str | None, pa.Table]] | None:
        with self._cond:
            if self._closing and time.monotonic() >= self._deadline and self._queue:
                lost = sum(t.num_rows for _, _, t in self._queue)
                self._queue.clear()
                self._held -= lost
                self._stats.dropped += lost
                log.warning("metrics sink closed with %d rows unwritten (dropped)", lost)
                self._cond.notify_all()
            while not self._queue:
                if self._closing:
                    return None
                self._cond.wait(self.settings.flush_interval_s)
            if not self._closing and self._held < self.settings.batch_rows:
                self._cond.wait(self.settings.flush_interval_s)  # let a batch build up
            batch, rows = [], 0
            while self._queue and (not batch or rows + self._queue[0][2].num_rows
                                   <= self.settings.batch_rows):
                item = self._queue.popleft()
                batch.append(item)
                rows += item[2].num_rows
            return batch

    def _run(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                break
            n = sum(t.num_rows for _, _, t in batch)
            while True:
                try:
                    per = self._write(batch)
                except (psycopg.Error, pa.ArrowException, ValueError, RuntimeError) as exc:
                    if self._transient(exc):   # down, restarting, timed out: keep it, retry
                        self._failed(exc)
                        if self._wait_retry():
                            continue
                        self._settle(n, written=False)
                        break
                    self._failed(exc)          # rows the database refuses: never retried
                    log.error("metrics batch of %d rows dropped: %s", n, safe_error(exc, self._dsn))
                    self._settle(n, written=False)
                    break
                self._settle(n, written=True, per=per)
                break
        self._disconnect()

    def _transient(self, exc: BaseException) -> bool:
        if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
            return True
        return self._conn is None or self._conn.closed or self._conn.broken

    def _failed(self, exc: BaseException) -> None:
        self._disconnect()
        msg = safe_error(exc, self._dsn)
        with self._cond:
            first = self._stats.errors == 0 or self._stats.last_error != msg
            self._stats.errors += 1
            self._stats.last_error = msg
        if first:
            log.warning("metrics sink: %s (retrying every %.1f s)", msg, self.settings.retry_s)

    def _wait_retry(self) -> bool:
        """Sleep `retry_s` (cut short by close); False once close's deadline has passed."""
        with self._cond:
            end = time.monotonic() + self.settings.retry_s
            while time.monotonic() < min(end, self._deadline):
                self._cond.wait(min(end, self._deadline) - time.monotonic())
            return time.monotonic() < self._deadline

    def _settle(self, n: int, written: bool, per: dict[str, int] | None = None) -> None:
        with self._cond:
            self._held -= n
            if written:
                self._stats.written += n
                self._stats.batches += 1
                for k, v in (per or {}).items():
                    self._stats.per_table[k] = self._stats.per_table.get(k, 0) + v
            else:
                self._stats.dropped += n
            self._cond.notify_all()

    def _connect(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            s = self.settings
            self._conn = psycopg.connect(
                libpq_dsn(self._dsn), connect_timeout=max(1, round(s.connect_timeout_s)),
                options=f"-c statement_timeout={int(s.statement_timeout_s * 1000)} -c TimeZone=UTC",
                application_name="smabm-metrics-sink")
            migrate(self._conn, s.schema)
        return self._conn

    def _disconnect(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None

    def _write(self, batch: list[tuple[str, str | None, pa.Table]]) -> dict[str, int]:
        conn = self._connect()
        schema = self.settings.schema
        by_table: dict[str, list[pa.Table]] = {}
        runs: dict[str, list[pa.Table]] = {}
        for name, run_id, rows in batch:
            by_table.setdefault(name, []).append(rows)
            if run_id is not None and name in RUN_TABLES:
                runs.setdefault(run_id, []).append(rows)
        per = {}
        with conn.transaction():
            for name, parts in by_table.items():
                table = pa.concat_tables(parts)
                days = self._new_days(name, table)
                if days:
                    ensure_partitions(conn, schema, name, days)
                buf = io.BytesIO()
                pacsv.write_csv(table, buf, pacsv.WriteOptions(include_header=False))
                cols = sql.SQL(", ").join(sql.Identifier(c) for c in table.column_names)
                stmt = sql.SQL("COPY {}.{} ({}) FROM STDIN (FORMAT csv)").format(
                    sql.Identifier(schema), sql.Identifier(name), cols)
                with conn.cursor() as cur, cur.copy(stmt) as copy:
                    copy.write(buf.getbuffer())
                per[name] = table.num_rows
            for run_id, parts in runs.items():
                ts = pa.chunked_array([p["ts"] for p in parts])
                conn.execute(sql.SQL(
                    "INSERT INTO {}.runs AS r (run_id, first_ts, last_ts, rows) VALUES (%s, %s, %s, %s) "
                    "ON CONFLICT (run_id) DO UPDATE SET updated_at = now(), "
                    "first_ts = least(r.first_ts, excluded.first_ts), "
                    "last_ts = greatest(r.last_ts, excluded.last_ts), rows = r.rows + excluded.rows"
                ).format(sql.Identifier(schema)),
                    (run_id, pc.min(ts).as_py(), pc.max(ts).as_py(), sum(p.num_rows for p in parts)))
        for name, parts in by_table.items():   # committed: the partitions exist for good
            for d in self._days(pa.concat_tables(parts)):
                self._partitions.add((name, d))
        return per

    @staticmethod
    def _days(table: pa.Table) -> list[date]:
        days = pc.unique(pc.cast(table["ts"], pa.date32()))
        return sorted(d for d in days.to_pylist() if d is not None)

    def _new_days(self, name: str, table: pa.Table) -> list[date]:
        return [d for d in self._days(table) if (name, d) not in self._partitions]


def dsn_from_env(var: str, setting: str = "monitor.sink.dsn_env") -> str:
    """The DSN from environment variable `var`; a one-line error naming both when unset."""
    dsn = os.environ.get(var, "").strip()
    if not dsn:
        raise ValueError(f"{setting}: environment variable {var} is not set (it holds the "
                         "PostgreSQL DSN, e.g. postgresql://user@host:5432/db)")
    return dsn


