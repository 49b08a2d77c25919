"""Live tail from Kafka: the raw topics as tables in the log schema, from a start time on.

The replay clock's live mode can follow Kafka as well as the Parquet tail. No consumer group
(partitions are assigned by hand), so tailing never disturbs the archiver's offsets. Start
offsets come from `offsets_for_times(start_ns)`; rows are also filtered on their `recv_ts`
header, which keeps the result right on brokers whose `offsets_for_times` uses append time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc
from aiokafka import AIOKafkaConsumer, TopicPartition

from recorder.kafka.messages import table_from_messages
from recorder.kafka.security import client_kwargs


def tail(brokers: str, topics: Sequence[str], start_ns: int, *, poll_ms: int = 200,
         max_records: int = 50_000, idle_timeout_s: float | None = None,
         kafka_cfg: Mapping | None = None) -> Iterator[pa.Table]:
    """Yield tables (recorder.events.SCHEMA) of events with recv_ts >= start_ns, as they come.

    Ends after `idle_timeout_s` without new rows (never, when None). Each table holds one
    poll's rows, per partition in offset order (a stream is one partition: its order is kept).
    """
    loop = asyncio.new_event_loop()
    security = client_kwargs(kafka_cfg)

    async def make() -> AIOKafkaConsumer:
        c = AIOKafkaConsumer(bootstrap_servers=brokers, enable_auto_commit=False,
                             group_id=None, **security)
        await c.start()
        return c

    consumer = loop.run_until_complete(make())
    try:
        loop.run_until_complete(_seek(consumer, topics, start_ns))
        idle_since = time.monotonic()
        while True:
            got = loop.run_until_complete(consumer.getmany(timeout_ms=poll_ms,
                                                           max_records=max_records))
            msgs = [(r.key, r.value, r.headers) for recs in got.values() for r in recs]
            if msgs:
                table = table_from_messages(msgs)
                table = table.filter(pc.greater_equal(table["recv_ts_ns"], start_ns))
                if table.num_rows:
                    idle_since = time.monotonic()
                    yield table
                    continue
            if idle_timeout_s is not None and time.monotonic() - idle_since > idle_timeout_s:
                return
    finally:
        loop.run_until_complete(consumer.stop())
        loop.close()


async def _seek(consumer: AIOKafkaConsumer, topics: Sequence[str], start_ns: int) -> None:
    await consumer.topics()  # fetches fresh metadata
    parts = []
    for t in topics:
        ps = consumer.partitions_for_topic(t)
        if not ps:
            raise ValueError(f"kafka tail: topic {t!r} does not exist")
        parts += [TopicPartition(t, p) for p in sorted(ps)]
    consumer.assign(parts)
    found = await consumer.offsets_for_times({tp: start_ns // 1_000_000 for tp in parts})
    for tp in parts:
        off = found.get(tp)
        if off is None:
            await consumer.seek_to_end(tp)
        else:
            consumer.seek(tp, off.offset)
