"""Reddit exports: PRAW-scrape CSVs and jsonl of PRAW-like objects.

Exports have no receipt clock, only each post's or comment's creation time, so both recv_ts and
event_ts are the created time: a replay sees a post the moment it was written. Records are
emitted in created-time order (stable), each verbatim (the jsonl line or the CSV record), on
`r/<subreddit lower>/submissions` or `r/<subreddit lower>/comments`.

CSV layouts, told apart by their header:
- posts (`title`, an id such as `post_id`) and comments (`body`): one event per record;
- post x comment (`submission_id` and `comment_id`): a submission's columns repeat on every
  row of its comments; each distinct submission record is emitted once (on the first row that
  shows it; a later row showing changed submission fields is a new event) and each comment once.
Overlapping exports repeat ids on purpose: every record is kept (an edit seen later is a new
event of the same id); the normaliser dedupes.

Time columns holding epoch seconds are UTC. ISO strings without an offset are local time of
the scraper: they are read in `tz=` (e.g. '+01:00', 'Europe/Paris'; UTC when not given), and
the report says which rule applied.
"""

from __future__ import annotations

import csv
import re

import numpy as np
import orjson
import pyarrow as pa

from recorder.importers.blocks import Block, binary_ranges
from recorder.importers.fileimport import FileImport
from recorder.importers.timestamps import decimal_seconds_to_ns, iso_to_ns, parse_tz

SOURCE = "reddit"
# Columns of the post x comment layout that belong to the comment, not the submission.
PAIR_COMMENT_COLUMNS = frozenset({"comment_id", "body", "comment_score", "parent_id",
                                  "comment_created_utc", "created_datetime", "comment_author"})
_EPOCH = re.compile(r"^\s*\d+(?:\.\d*)?\s*$")


def stream_for(subreddit: str, is_submission: bool) -> str:
    return f"r/{subreddit.lower()}/{'submissions' if is_submission else 'comments'}"


class _Clock:
    """Created-time parsing with the notes the report needs."""

    def __init__(self, fi: FileImport) -> None:
        self.fi = fi
        self.tz_text = fi.options.tz
        self.tz = parse_tz(self.tz_text)

    def ns(self, value) -> int:
        if type(value) in (int, float):
            self.fi.report.note("epoch-second times: UTC, tz not applied")
            return decimal_seconds_to_ns(repr(value))
        if type(value) is not str or not value.strip():
            raise ValueError(f"created time {value!r} is neither epoch seconds nor ISO")
        if _EPOCH.match(value):
            self.fi.report.note("epoch-second times: UTC, tz not applied")
            return decimal_seconds_to_ns(value)
        ns = iso_to_ns(value, self.tz)
        if re.search(r"(Z|[+-]\d\d:?\d\d)$", value.strip()) is None:
            self.fi.report.note(f"ISO times without offset read in tz {self.tz_text}"
                                if self.tz_text else
                                "ISO times without offset read as UTC (no tz given)")
        return ns


def read(fi: FileImport) -> None:
    data = b"".join(b.data for b in fi.blocks())
    block = Block(data, 1)
    first = data.lstrip()[:1]
    if first == b"{":
        _read_jsonl(fi, block)
    elif first:
        _read_csv(fi, block)
    else:
        raise fi.fail(None, "empty file")


class _Rows:
    """Events collected from a file before they are sorted by created time."""

    def __init__(self) -> None:
        self.index: list[int] = []
        self.ns: list[int] = []
        self.streams: list[str] = []

    def append(self, i: int, ns: int, stream: str) -> None:
        self.index.append(i)
        self.ns.append(ns)
        self.streams.append(stream)

    def flush(self, fi: FileImport, payloads: pa.BinaryArray) -> None:
        if not self.index:
            return
        ns = np.array(self.ns, np.int64)
        order = np.argsort(ns, kind="stable")
        fi.add(source=SOURCE, stream=[self.streams[i] for i in order.tolist()],
               recv_ns=ns[order], event_ns=pa.array(ns[order], pa.int64()),
               payload=payloads.take(pa.array(np.array(self.index, np.int64)[order])))


def _read_jsonl(fi: FileImport, block: Block) -> None:
    starts, ends, linenos = block.lines()
    clock = _Clock(fi)
    rows = _Rows()
    bad, why = [], []
    mv = memoryview(block.data)
    for k, (a, e) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
        try:
            d = orjson.loads(mv[a:e])
            if type(d) is not dict:
                raise ValueError("the JSON is not an object")
            if "title" in d:
                is_sub = True
            elif "body" in d or "parent_id" in d:
                is_sub = False
            else:
                raise ValueError("neither a submission ('title') nor a comment ('body')")
            sub = d.get("subreddit")
            if type(sub) is not str or not sub:
                raise ValueError("no 'subreddit' name")
            rows.append(k, clock.ns(d.get("created_utc")), stream_for(sub, is_sub))
        except orjson.JSONDecodeError as exc:
            bad.append(k)
            why.append(f"invalid JSON ({exc})")
        except ValueError as exc:
            bad.append(k)
            why.append(str(exc))
    fi.reject(linenos[bad], why)
    rows.flush(fi, binary_ranges(block.arr, starts, ends))


def _read_csv(fi: FileImport, block: Block) -> None:
    starts, ends, linenos, open_line = block.records()
    if open_line is not None:
        fi.reject([open_line], ["unterminated quoted field (the record runs to end of file)"])
    if len(starts) == 0:
        raise fi.fail(None, "no CSV header")
    payloads = binary_ranges(block.arr, starts, ends)
    header_bytes = payloads[0].as_py()
    header = next(csv.reader([header_bytes.decode("utf-8", "replace")]))
    col = {name: i for i, name in enumerate(header)}
    layout = _layout(fi, col, header_bytes)
    fi.connection(fi.conn, header_bytes)
    clock = _Clock(fi)
    rows = _Rows()
    bad, why = [], []
    sub_cols = [i for i, name in enumerate(header) if name not in PAIR_COMMENT_COLUMNS]
    seen_subs: set[tuple[str, ...]] = set()
    for k, raw in enumerate(payloads.to_pylist()[1:], start=1):
        try:
            values = next(csv.reader([raw.decode("utf-8")]))
            if len(values) != len(header):
                raise ValueError(f"{len(values)} fields, the header has {len(header)}")
            sub = values[col["subreddit"]]
            if not sub:
                raise ValueError("empty subreddit")
            if layout == "pair":
                key = tuple(values[i] for i in sub_cols)
                if key not in seen_subs:
                    seen_subs.add(key)
                    rows.append(k, clock.ns(values[col["created_utc"]]), stream_for(sub, True))
                if values[col["comment_id"]]:
                    rows.append(k, clock.ns(values[col["comment_created_utc"]]),
                                stream_for(sub, False))
            else:
                rows.append(k, clock.ns(values[col["created_utc"]]),
                            stream_for(sub, layout == "posts"))
        except UnicodeDecodeError:
            bad.append(k)
            why.append("not UTF-8 text")
        except (ValueError, csv.Error) as exc:
            bad.append(k)
            why.append(str(exc))
    fi.reject(linenos[bad], why)
    rows.flush(fi, payloads)


def _layout(fi: FileImport, col: dict[str, int], header: bytes) -> str:
    """'pair', 'posts' or 'comments' from the header; one-line error naming what is missing."""
    if "submission_id" in col and "comment_id" in col:
        layout, needed = "pair", ("subreddit", "created_utc", "comment_created_utc")
    elif "title" in col:
        layout, needed = "posts", ("subreddit", "created_utc")
    elif "body" in col:
        layout, needed = "comments", ("subreddit", "created_utc")
    else:
        raise fi.fail(1, "not a Reddit export header (no title, body or submission_id/"
                      f"comment_id column): {header[:80]!r}")
    missing = [c for c in needed if c not in col]
    if missing:
        raise fi.fail(1, f"Reddit {layout} header lacks column {missing[0]!r}")
    fi.report.note(f"CSV layout: {layout}")
    return layout
