"""The open segment's journal: framed Arrow batches that survive `kill -9`.

Each append is one frame `[magic][length][crc32][Arrow IPC record batch]`; a frame torn by a
crash fails its length or CRC check and is cut off on recovery. A frame is only acknowledged
after it was written whole (and fsynced, under the writer's policy), so a torn frame was never
acknowledged and cutting it loses nothing that was promised.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import pyarrow as pa

from recorder.events import SCHEMA

MAGIC = b"SMJ1"
_HEAD = struct.Struct("<4sQI")  # magic, payload length, crc32
_FILE_HEAD = struct.Struct("<4sQ")  # magic, segment number this journal will seal into


def _ipc_bytes(batch: pa.RecordBatch) -> bytes:
    return batch.serialize().to_pybytes()


class Journal:
    """An append-only journal file bound to the segment number it will seal into."""

    def __init__(self, path: Path, segment_n: int) -> None:
        self.path = path
        self.segment_n = segment_n
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        self._f = os.fdopen(fd, "wb", buffering=0)
        self._f.write(_FILE_HEAD.pack(MAGIC, segment_n))
        self.bytes = _FILE_HEAD.size

    def append(self, batch: pa.RecordBatch) -> None:
        """Write one frame; durability is the caller's `sync()`."""
        body = _ipc_bytes(batch)
        self._f.write(_HEAD.pack(MAGIC, len(body), zlib.crc32(body)) + body)
        self.bytes += _HEAD.size + len(body)

    def sync(self) -> None:
        os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()


def read_journal(path: Path) -> tuple[int, list[pa.RecordBatch], int]:
    """Return (segment number, whole frames, byte length of the valid prefix)."""
    data = path.read_bytes()
    if len(data) < _FILE_HEAD.size or data[:4] != MAGIC:
        return -1, [], 0
    _, segment_n = _FILE_HEAD.unpack_from(data, 0)
    pos = _FILE_HEAD.size
    batches: list[pa.RecordBatch] = []
    while pos + _HEAD.size <= len(data):
        magic, length, crc = _HEAD.unpack_from(data, pos)
        start = pos + _HEAD.size
        end = start + length
        if magic != MAGIC or end > len(data) or zlib.crc32(data[start:end]) != crc:
            break
        batches.append(pa.ipc.read_record_batch(pa.py_buffer(data[start:end]), SCHEMA))
        pos = end
    return segment_n, batches, pos


def read_open_journals(journal_dir: Path) -> list[tuple[str, int, list[pa.RecordBatch]]]:
    """(writer id, segment n, whole frames) of every open journal. A journal gone between listing
    and reading is skipped: its writer closed, so its rows are in a sealed segment."""
    out = []
    for jpath in sorted(journal_dir.glob("*.journal")):
        try:
            segment_n, batches, _ = read_journal(jpath)
        except FileNotFoundError:
            continue
        out.append((jpath.stem, segment_n, batches))
    return out
