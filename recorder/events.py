"""The raw event: the one record every source is reduced to, payload kept byte for byte.

Nothing is parsed away here (DESIGN.md): a parsing bug is fixed by re-normalising the log,
never by re-recording. Columns are the Arrow schema of every segment and journal frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import pyarrow as pa


class Kind(StrEnum):
    """What a raw event is: a source message, or a marker the recorder wrote about the feed."""

    MESSAGE = "message"
    SNAPSHOT = "snapshot"
    CONNECT = "connect"
    DISCONNECT = "disconnect"
    GAP = "gap"
    ERROR = "error"


KINDS: frozenset[str] = frozenset(k.value for k in Kind)

SCHEMA = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),
        pa.field("stream", pa.string(), nullable=False),
        pa.field("recv_ts_ns", pa.int64(), nullable=False),
        pa.field("event_ts_ns", pa.int64(), nullable=True),
        pa.field("seq", pa.int64(), nullable=False),
        pa.field("conn", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("payload", pa.binary(), nullable=False),
    ]
)

# Total order of the log (DESIGN.md "Determinism"): a stream is identified by (source, stream).
ORDER_KEYS: list[tuple[str, str]] = [
    ("recv_ts_ns", "ascending"),
    ("source", "ascending"),
    ("stream", "ascending"),
    ("seq", "ascending"),
]


@dataclass(frozen=True, slots=True)
class RawEvent:
    """One event as received. `seq` is the recorder's per-stream counter (strictly increasing)."""

    source: str
    stream: str
    recv_ts_ns: int
    event_ts_ns: int | None
    seq: int
    conn: str
    kind: str
    payload: bytes


def events_table(
    *,
    source: Sequence[str] | pa.Array,
    stream: Sequence[str] | pa.Array,
    recv_ts_ns: Sequence[int] | pa.Array,
    payload: Sequence[bytes] | pa.Array,
    event_ts_ns: Sequence[int | None] | pa.Array | None = None,
    conn: Sequence[str] | pa.Array | str = "",
    kind: Sequence[str] | pa.Array | str = Kind.MESSAGE,
    seq: Sequence[int] | pa.Array | None = None,
) -> pa.Table:
    """Build a table in the log schema from columns; scalars broadcast, `seq` -1 means "assign".

    Writers assign `seq` per stream at append time, so producers normally leave it out.
    """
    n = len(recv_ts_ns)

    def col(values, typ):
        if isinstance(values, str):
            return pa.array([values] * n, typ)
        return pa.array(values, typ) if not isinstance(values, pa.Array) else values.cast(typ)

    table = pa.Table.from_arrays(
        [
            col(source, pa.string()),
            col(stream, pa.string()),
            col(recv_ts_ns, pa.int64()),
            col(event_ts_ns if event_ts_ns is not None else pa.nulls(n, pa.int64()), pa.int64()),
            col(seq if seq is not None else [-1] * n, pa.int64()),
            col(conn, pa.string()),
            col(kind, pa.string()),
            col(payload, pa.binary()),
        ],
        schema=SCHEMA,
    )
    return table


def to_events(table: pa.Table | pa.RecordBatch) -> list[RawEvent]:
    """Rows as `RawEvent` objects: for tests and debugging, never the hot path."""
    return [RawEvent(**row) for row in table.to_pylist()]
