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
        send = self._producer.send
        prefix = self.prefix
        futures = []
        for source, stream, recv, event, seq, conn, kind, payload in zip(*cols, strict=True):
            futures.append(await send(
                prefix + source, value=payload, key=stream.encode(),
                headers=headers_of(source, recv, event, seq, conn, kind),
                timestamp_ms=recv // 1_000_000))
        await asyncio.gather(*futures)

    async def close(self) -> None:
        if self._started:
            await self._producer.stop()
            self._started = False
