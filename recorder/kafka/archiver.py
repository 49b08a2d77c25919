"""The archiver: a faust-streaming app that copies the raw topics into the Parquet log.

Exactly-once into Parquet without Kafka transactions (brokers like tansu lack them):
- events are taken in batches (`take_events`), appended to a `LogWriter` (fsync=batch), and
  only then acknowledged to faust, which commits offsets of acknowledged events; a crash
  before the commit re-delivers events that may already be in the log;
- so every batch is deduplicated first: a row whose seq is <= the last seq of its stream
  already in the log (sealed segments in the index plus every open journal, re-read whenever
  partitions are assigned) is skipped. Recorders give seqs as `conn_start_ns + i`, strictly
  increasing per stream, so "seen" is one comparison.
Several workers split the partitions; each needs its own `writer_id` (one journal each). The
key is the stream, so a stream lives in one partition and one worker at a time.

Run: `python -m recorder.kafka.archiver --brokers H:P --topics raw.binance.spot,raw.reddit
--root var/log --writer-id archiver-0 --app-id smabm-archiver`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from recorder.index import LogIndex
from recorder.journal import read_open_journals
from recorder.kafka.messages import Message, table_from_messages
from recorder.writer import LogWriter

log = logging.getLogger("recorder.archiver")


class Archive:
    """Deduplicating appends into one writer: the part of the archiver that is not faust."""

    def __init__(self, root: str | Path, writer_id: str, *, fsync: str = "batch",
                 segment_max_age_s: float | None = 300.0) -> None:
        self.root = Path(root)
        # one thread owns the writer (its SQLite connection is bound to the opening thread)
        self.pool = ThreadPoolExecutor(1, thread_name_prefix=f"archive-{writer_id}")
        self.writer = self.pool.submit(LogWriter, self.root, writer_id, fsync=fsync,
                                       segment_max_age_s=segment_max_age_s).result()
        self._lock = threading.Lock()
        self.last_seq: dict[tuple[str, str], int] = {}
        self.written = 0
        self.skipped = 0
        self.refresh()

    def refresh(self) -> None:
        """Last seq per stream over sealed segments and every writer's open journal."""
        with self._lock:
            # journals first, then the index: a segment another worker seals in between is then
            # in the index read, so no acknowledged seq is missed (overlap is harmless for a max)
            last: dict[tuple[str, str], int] = {}
            for _, _, batches in read_open_journals(self.root / "journal"):
                for b in batches:
                    t = pa.Table.from_batches([b]).group_by(["source", "stream"]).aggregate(
                        [("seq", "max")])
                    for s, st, q in zip(t["source"].to_pylist(), t["stream"].to_pylist(),
                                        t["seq_max"].to_pylist(), strict=True):
                        last[(s, st)] = max(last.get((s, st), q), q)
            idx = LogIndex(self.root)
            try:
                for k, q in idx.last_seqs().items():
                    last[k] = max(last.get(k, q), q)
            finally:
                idx.close()
            for k, v in self.last_seq.items():
                last[k] = max(last.get(k, v), v)
            self.last_seq = last

    def write(self, messages: Iterable[Message]) -> int:
        """Append the rows not yet in the log; returns how many were new. Durable on return."""
        table = table_from_messages(messages)
        if table.num_rows == 0:
            return 0
        with self._lock:
            keep = []
            last = self.last_seq
            for i, (s, st, q) in enumerate(zip(table["source"].to_pylist(),
                                               table["stream"].to_pylist(),
                                               table["seq"].to_pylist(), strict=True)):
                prev = last.get((s, st))
                if prev is None or q > prev:
                    last[(s, st)] = q
                    keep.append(i)
            self.skipped += table.num_rows - len(keep)
            if not keep:
                return 0
            if len(keep) < table.num_rows:
                table = table.take(pa.array(keep, pa.int64()))
            # a stream's rows from several partitions never interleave: order is per key
            table = table.take(pc.sort_indices(table, [("source", "ascending"),
                                                       ("stream", "ascending"),
                                                       ("seq", "ascending")]))
            self.writer.append(table)
            self.written += table.num_rows
            return table.num_rows

    def close(self) -> None:
        self.pool.submit(self.writer.close).result()
        self.pool.shutdown()


def make_app(app_id: str, brokers: str, topics: Sequence[str], archive: Archive, *,
             batch: int = 5000, within_s: float = 0.5, commit_interval_s: float = 1.0,
             session_timeout_s: float = 10.0, credentials=None):
    """The faust app: one agent over every raw topic, batches written then acknowledged."""
    import faust

    app = faust.App(
        app_id, broker=[f"kafka://{b}" for b in brokers.split(",")], broker_credentials=credentials,
        store="memory://", web_enabled=False, topic_disable_leader=True,
        consumer_auto_offset_reset="earliest", broker_commit_interval=commit_interval_s,
        broker_commit_every=batch, broker_session_timeout=session_timeout_s,
        broker_heartbeat_interval=max(session_timeout_s / 10, 0.5),
        broker_rebalance_timeout=session_timeout_s, producer_acks=-1,
        topic_allow_declare=False, stream_wait_empty=False)
    topic = app.topic(*topics, key_type=bytes, value_type=bytes, key_serializer="raw",
                      value_serializer="raw", allow_empty=True)

    @app.agent(topic, name="archive")
    async def _archive(stream):
        async for events in stream.take_events(batch, within=within_s):
            msgs = [(e.message.key, e.message.value, e.message.headers or ()) for e in events]
            n = await asyncio.get_running_loop().run_in_executor(archive.pool, archive.write, msgs)
            # leaving this body acknowledges the batch: offsets commit only after the append
            log.info(orjson.dumps({"event": "archived", "received": len(msgs), "new": n,
                                   "written": archive.written,
                                   "skipped": archive.skipped}).decode())

    @app.on_partitions_assigned.connect
    async def _assigned(app_, assigned, **_kw):  # noqa: ARG001
        await asyncio.to_thread(archive.refresh)

    return app


def credentials_from(cfg: dict):
    """faust SASL/TLS credentials for `record.kafka` (secrets from env, as the producer)."""
    from recorder.kafka.security import client_kwargs

    kw = client_kwargs(cfg)
    proto = kw["security_protocol"]
    if proto == "PLAINTEXT":
        return None
    import faust

    if proto.startswith("SASL"):
        return faust.SASLCredentials(username=kw["sasl_plain_username"],
                                     password=kw["sasl_plain_password"],
                                     mechanism=kw["sasl_mechanism"],
                                     ssl_context=kw.get("ssl_context"))
    return faust.SSLCredentials(kw["ssl_context"])


def run_archiver(brokers: str, topics: Sequence[str], root: str | Path, writer_id: str,
                 app_id: str, *, kafka_cfg: dict | None = None, batch: int = 5000,
                 within_s: float = 0.5, session_timeout_s: float = 10.0) -> None:
    """Run the archiver worker until SIGTERM/SIGINT; the writer is sealed on the way out."""
    import faust

    archive = Archive(root, writer_id)
    app = make_app(app_id, brokers, topics, archive, batch=batch, within_s=within_s,
                   session_timeout_s=session_timeout_s,
                   credentials=credentials_from(kafka_cfg or {}))
    worker = faust.Worker(app, loglevel="WARNING", quiet=True, override_logging=False)
    try:
        worker.execute_from_commandline()
    finally:
        archive.close()


def run_archiver_cfg(cfg) -> None:
    """`smabm archive`: `record.archiver.*`, `record.kafka.*` (brokers, security), `log.root`."""
    from omegaconf import OmegaConf

    a, k = cfg.record.archiver, cfg.record.kafka
    run_archiver(str(k.brokers), list(a.topics), cfg.log.root, str(a.writer_id), str(a.app_id),
                 kafka_cfg=OmegaConf.to_container(k), batch=int(a.batch),
                 within_s=float(a.within_s), session_timeout_s=float(a.session_timeout_s))


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m recorder.kafka.archiver",
                                description="Archive raw Kafka topics into the Parquet log.")
    p.add_argument("--brokers", required=True)
    p.add_argument("--topics", required=True, help="comma-separated, e.g. raw.binance.spot")
    p.add_argument("--root", required=True)
    p.add_argument("--writer-id", required=True)
    p.add_argument("--app-id", required=True)
    p.add_argument("--batch", type=int, default=5000)
    p.add_argument("--within-s", type=float, default=0.5)
    p.add_argument("--session-timeout-s", type=float, default=10.0)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    run_archiver(a.brokers, [t for t in a.topics.split(",") if t], a.root, a.writer_id,
                 a.app_id, batch=a.batch, within_s=a.within_s,
                 session_timeout_s=a.session_timeout_s)


if __name__ == "__main__":
    main()
