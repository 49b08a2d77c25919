"""Blocks of whole lines from a plain, gzip or zip file, with their line numbers.

Importers never hold a whole day of decompressed data in memory: the file is decompressed in
blocks of about `block_bytes`, each cut after a newline, and every line keeps its 1-based
number in the file so an error can name it. A gzip stream that ends early (a copy interrupted
mid-transfer) still yields its complete lines; the reader then reports the truncation at the
line where the data stops, and the importer decides whether that is fatal (`keep_going`).
"""

from __future__ import annotations

import hashlib
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

READ_CHUNK = 4 << 20
DEFAULT_BLOCK_BYTES = 64 << 20
_NL, _CR, _QUOTE = 10, 13, 34


def sha256_of(path: Path) -> str:
    """Hex sha256 of the file's bytes as stored (compressed or not): the import key."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(READ_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class Truncation:
    """The compressed stream stopped early: `line` is where the data ends, `reason` why."""

    line: int
    reason: str


@dataclass
class Block:
    """Whole lines of a file: `data` ends with a newline except at end of file."""

    data: bytes
    first_line: int

    def __post_init__(self) -> None:
        self.arr = np.frombuffer(self.data, np.uint8)
        self._nl = np.flatnonzero(self.arr == _NL)

    @property
    def n_newlines(self) -> int:
        return len(self._nl)

    def _spans(self, terminators: np.ndarray, tail: bool) -> tuple[np.ndarray, ...]:
        """(starts, ends, line numbers) of non-blank pieces ending at `terminators`.

        `tail`: the bytes after the last terminator form one more piece (end of file).
        """
        arr = self.arr
        ends = terminators.astype(np.int64)
        last = int(ends[-1]) + 1 if len(ends) else 0
        if tail and last < len(arr):
            ends = np.append(ends, len(arr))
        starts = np.empty(len(ends), np.int64)
        if len(ends):
            starts[0] = 0
            starts[1:] = ends[:-1] + 1
        has_cr = (ends > starts) & (arr[np.maximum(ends - 1, 0)] == _CR)
        ends = ends - has_cr
        linenos = self.first_line + np.searchsorted(self._nl, starts)
        keep = ends > starts
        return starts[keep], ends[keep], linenos[keep]

    def lines(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Non-blank lines without their terminator: (starts, ends, line numbers)."""
        return self._spans(self._nl, tail=True)

    def records(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, int | None]:
        """CSV records (RFC 4180: a newline inside double quotes does not end a record).

        The fourth item is the line where an unterminated quoted field starts (its record is
        left out), or None.
        """
        quotes = np.cumsum(self.arr == _QUOTE, dtype=np.int64)
        odd = bool(quotes[-1] & 1) if len(quotes) else False
        terminators = self._nl[(quotes[self._nl] & 1) == 0]
        starts, ends, linenos = self._spans(terminators, tail=not odd)
        open_line = None
        if odd:
            after = int(terminators[-1]) + 1 if len(terminators) else 0
            open_line = self.first_line + int(np.searchsorted(self._nl, after))
        return starts, ends, linenos, open_line


def binary_ranges(arr: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> pa.BinaryArray:
    """The byte ranges `[starts[i], ends[i])` of `arr` as one Arrow binary array, vectorised.

    Ranges must be sorted and must not overlap (take() the result to repeat a record).
    """
    n = len(starts)
    lengths = (ends - starts).astype(np.int64)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if offsets[-1] >= 2**31:
        raise ValueError("block too large for one binary array (over 2 GiB of payload)")
    # keep = runs of (gap, range) lengths: False over each gap, True over each range
    runs = np.empty(2 * n + 1, np.int64)
    runs[1::2] = lengths
    prev_ends = np.zeros(n, np.int64)
    prev_ends[1:] = ends[:-1]
    runs[0:-1:2] = starts - prev_ends
    runs[-1] = len(arr) - (ends[-1] if n else 0)
    flags = np.zeros(2 * n + 1, np.bool_)
    flags[1::2] = True
    keep = np.repeat(flags, runs)
    data = arr[keep]
    return pa.BinaryArray.from_buffers(
        pa.binary(), n, [None, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data)])


def _raw_chunks(path: Path) -> Iterator[bytes]:
    """Decompressed bytes of a file; a gzip/zip stream that ends early raises `_Truncated`."""
    with open(path, "rb") as f:
        magic = f.read(4)
        f.seek(0)
        if magic[:2] == b"\x1f\x8b":
            yield from _gunzip(f)
        elif magic == b"PK\x03\x04":
            yield from _unzip(path)
        else:
            yield from iter(lambda: f.read(READ_CHUNK), b"")


class _Truncated(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _gunzip(f) -> Iterator[bytes]:
    d = zlib.decompressobj(wbits=47)  # 47: gzip or zlib header, auto-detected
    fed = False
    for chunk in iter(lambda: f.read(READ_CHUNK), b""):
        while chunk:
            if d.eof:  # the previous gzip member is complete and another one follows
                d = zlib.decompressobj(wbits=47)
            try:
                out = d.decompress(chunk)
            except zlib.error as exc:
                raise _Truncated(f"corrupt gzip data ({exc})") from None
            fed = True
            if out:
                yield out
            chunk = d.unused_data if d.eof else b""
    if fed and not d.eof:
        raise _Truncated("truncated gzip stream (the file ends inside this line)")


def _unzip(path: Path) -> Iterator[bytes]:
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise _Truncated(f"unreadable zip archive ({exc})") from None
    with zf:
        members = [m for m in zf.infolist() if not m.is_dir()]
        if len(members) != 1:
            raise _Truncated(f"zip archive holds {len(members)} files; expected exactly one")
        try:
            with zf.open(members[0]) as m:
                yield from iter(lambda: m.read(READ_CHUNK), b"")
        except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
            raise _Truncated(f"corrupt zip member ({exc})") from None


def inner_name(path: Path) -> str:
    """The name that carries the file's conventions: a zip's single member, else the file."""
    with open(path, "rb") as f:
        is_zip = f.read(4) == b"PK\x03\x04"
    if is_zip:
        with zipfile.ZipFile(path) as zf:
            names = [m.filename for m in zf.infolist() if not m.is_dir()]
        if len(names) == 1:
            return Path(names[0]).name
    return path.name


def iter_blocks(path: Path, block_bytes: int, truncations: list[Truncation]) -> Iterator[Block]:
    """Blocks of whole lines; a stream ending early is appended to `truncations`.

    The partial line the stream ends inside is not yielded: it is the truncated line.
    """
    buf = bytearray()
    first_line = 1
    try:
        for chunk in _raw_chunks(path):
            buf += chunk
            if len(buf) >= block_bytes:
                cut = buf.rfind(b"\n")
                if cut >= 0:
                    block = Block(bytes(buf[: cut + 1]), first_line)
                    del buf[: cut + 1]
                    first_line += block.n_newlines
                    yield block
    except _Truncated as t:
        cut = buf.rfind(b"\n")
        if cut >= 0:
            block = Block(bytes(buf[: cut + 1]), first_line)
            first_line += block.n_newlines
            yield block
        truncations.append(Truncation(first_line, t.reason))
        return
    if buf:
        yield Block(bytes(buf), first_line)
