"""Kafka messages back into log rows: the inverse of `producer.headers_of`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import pyarrow as pa

from recorder.events import SCHEMA

Message = tuple[bytes | None, bytes, Sequence[tuple[str, bytes]] | Mapping[str, bytes]]


def table_from_messages(messages: Iterable[Message]) -> pa.Table:
    """(key, value, headers) triples -> a table in the log schema (stream from the key)."""
    cols: list[list] = [[] for _ in range(8)]
    for key, value, headers in messages:
        h = dict(headers.items() if isinstance(headers, Mapping) else headers)
        ev = h.get("event_ts", b"")
        cols[0].append(h["source"].decode())
        cols[1].append(key.decode() if key is not None else "")
        cols[2].append(int(h["recv_ts"]))
        cols[3].append(int(ev) if ev else None)
        cols[4].append(int(h["seq"]))
        cols[5].append(h["conn"].decode())
        cols[6].append(h["kind"].decode())
        cols[7].append(value)
    types = [pa.string(), pa.string(), pa.int64(), pa.int64(), pa.int64(), pa.string(),
             pa.string(), pa.binary()]
    return pa.Table.from_arrays([pa.array(c, t) for c, t in zip(cols, types, strict=True)],
                                schema=SCHEMA)
