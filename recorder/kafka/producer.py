"""Kafka backend of the live recorders: every event one message, acknowledged by acks=all.

Topic per source (`raw.binance.spot`, `raw.reddit`), key = stream (so a stream stays in one
partition and in order), value = the payload verbatim, headers = the other columns (`source`,
`recv_ts`, `event_ts`, `seq`, `conn`, `kind`, decimal ASCII; `event_ts` empty when null).
`append` returns only after the broker acknowledged every message of the batch, so the
recorder's `written` counter means "in Kafka". Seqs are assigned by the recorder
(`conn_start_ns + i`, log.md) so a restarted recorder never reuses one; the idempotent producer
is off by default (brokers such as tansu lack it) and duplicates from retries are dropped by
the archiver, which skips seqs it already holds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping

import pyarrow as pa
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.partitioner import DefaultPartitioner

from recorder.kafka.security import client_kwargs, topic_for


def headers_of(source: str, recv: int, event: int | None, seq: int, conn: str, kind: str
               ) -> list[tuple[str, bytes]]:
    return [("source", source.encode()), ("recv_ts", str(recv).encode()),
            ("event_ts", b"" if event is None else str(event).encode()),
            ("seq", str(seq).encode()), ("conn", conn.encode()), ("kind", kind.encode())]


class KafkaBackend:
    """aiokafka producer with acks=all; `append` awaits every delivery of the batch."""

    explicit_seq = True

    def __init__(self, brokers: str, cfg: Mapping | None = None) -> None:
        cfg = dict(cfg or {})
        self.brokers = brokers
        self.prefix = cfg.get("topic_prefix", "raw.")
        self.partitions = int(cfg.get("partitions", 1))
        self.create_topics = bool(cfg.get("create_topics", True))
        self._security = client_kwargs(cfg)
        self._producer = AIOKafkaProducer(
            bootstrap_servers=brokers, acks="all",
            enable_idempotence=bool(cfg.get("idempotent", False)),
            linger_ms=int(cfg.get("linger_ms", 5)),
            max_batch_size=int(cfg.get("max_batch_bytes", 1 << 20)),
            max_request_size=int(cfg.get("max_request_bytes", 8 << 20)),
            compression_type=cfg.get("compression") or None,
            request_timeout_ms=int(cfg.get("request_timeout_ms", 30_000)),
            **self._security)
        self._known_topics: set[str] = set()
        self._partition: dict[tuple[str, str], int] = {}
        self._partitioner = DefaultPartitioner()
        self._started = False

    async def start(self) -> None:
        await self._producer.start()
        self._started = True

    async def _ensure_topics(self, topics: set[str]) -> None:
        new = topics - self._known_topics
        if not new:
            return
        if self.create_topics:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.brokers, **self._security)
            await admin.start()
            try:
                existing = set(await admin.list_topics())
                missing = [NewTopic(t, self.partitions, 1) for t in sorted(new - existing)]
                if missing:
                    with contextlib.suppress(TopicAlreadyExistsError):
                        await admin.create_topics(missing)
            finally:
                await admin.close()
        self._known_topics |= new

    async def append(self, table: pa.Table) -> None:
        if not self._started:
            await self.start()
        cols = [table[c].to_pylist() for c in
                ("source", "stream", "recv_ts_ns", "event_ts_ns", "seq", "conn", "kind",
                 "payload")]
        topics = {topic_for(s, self.prefix) for s in set(cols[0])}
        await self._ensure_topics(topics)
        # whole record batches per partition (what `send` would build, without its per-message
        # overhead); the partition is the default partitioner's murmur2 of the key, as `send`.
        producer = self._producer
        parts = {t: sorted(await producer.partitions_for(t)) for t in topics}
        prefix = self.prefix
        batches: dict[tuple[str, int], object] = {}
        futures = []
        for source, stream, recv, event, seq, conn, kind, payload in zip(*cols, strict=True):
            topic = prefix + source
            key = stream.encode()
            p = self._partition.get((topic, stream))
            if p is None:
                p = self._partition[(topic, stream)] = self._partitioner(key, parts[topic],
                                                                         parts[topic])
            b = batches.get((topic, p))
            if b is None:
                b = batches[(topic, p)] = producer.create_batch()
            h = headers_of(source, recv, event, seq, conn, kind)
            if b.append(timestamp=recv // 1_000_000, key=key, value=payload, headers=h) is None:
                futures.append(await producer.send_batch(b, topic, partition=p))
                b = batches[(topic, p)] = producer.create_batch()
                if b.append(timestamp=recv // 1_000_000, key=key, value=payload,
                            headers=h) is None:
                    raise ValueError(f"record.kafka.max_batch_bytes: one {stream} event of "
                                     f"{len(payload)} bytes does not fit a batch")
        for (topic, p), b in batches.items():
            futures.append(await producer.send_batch(b, topic, partition=p))
        await asyncio.gather(*futures)   # acks=all: resolved when every batch is replicated

    async def close(self) -> None:
        if self._started:
            await self._producer.stop()
            self._started = False
