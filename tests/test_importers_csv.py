"""Importers of CSV/jsonl exports: Tardis, data.binance.vision, Reddit (PRAW scrapes)."""

from __future__ import annotations

import csv
import gzip
import io
import shutil
import zipfile
from pathlib import Path

import orjson
import polars as pl
import pytest

from recorder.importers import ImportFormatError, import_files
from recorder.importers.tardis import data_type
from recorder.reader import LogReader

DATA = Path(__file__).parent / "data"
TARDIS = DATA / "tardis"
QUOTES = TARDIS / "tardis_binance-futures_BTCUSDT_quotes_20200222_head500.csv.gz"
TRADES = TARDIS / "tardis_binance-futures_BTCUSDT_trades_20200222_head500.csv.gz"
SNAP5 = TARDIS / "tardis_binance-futures_book_snapshot_5_BTCUSDT.csv"
KLINES = DATA / "binance_vision" / "ADABTC-1m-2021-11-27.csv"
KLINES_28 = DATA / "binance_vision" / "ADABTC-1m-2021-11-28.csv"
REDDIT = DATA / "reddit"
POSTS = REDDIT / "crypto_posts_20251030_213713.csv.gz"
COMMENTS = REDDIT / "crypto_comments_20251030_213713.csv.gz"
PAIRS = REDDIT / "reddit_posts_20251029.csv.gz"
HOUR = 3_600 * 10**9


def read_log(root: Path) -> pl.DataFrame:
    batches = [pl.from_arrow(b) for b in LogReader(root).read()]
    return pl.concat(batches) if batches else pl.DataFrame()


def content(path: Path) -> bytes:
    raw = path.read_bytes()
    return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw


def imp(root: Path, fmt: str, paths, **kw):
    return import_files(root, fmt, [str(p) for p in paths], progress=False, **kw)


# -- Tardis ---------------------------------------------------------------------------------

def test_tardis_quotes_and_trades(tmp_path):
    report = imp(tmp_path, "tardis", [QUOTES, TRADES])
    log = read_log(tmp_path)
    assert set(log["source"]) == {"tardis.binance-futures"}
    for path, stream in ((QUOTES, "btcusdt.quotes"), (TRADES, "btcusdt.trades")):
        lines = content(path).splitlines()
        part = log.filter(pl.col("stream") == stream).sort("seq")
        assert part["kind"].to_list() == ["connect"] + ["message"] * 500
        assert part["payload"].to_list() == lines  # header marker, then each record verbatim
        rows = pl.read_csv(io.BytesIO(content(path)))
        assert part["recv_ts_ns"][1:].to_list() == (rows["local_timestamp"] * 1000).to_list()
        assert part["event_ts_ns"][1:].to_list() == (rows["timestamp"] * 1000).to_list()
    assert [f.unit for f in report.files] == ["us", "us"]


def test_tardis_data_type_from_header_and_name(tmp_path):
    imp(tmp_path / "a", "tardis", [SNAP5])
    log = read_log(tmp_path / "a")
    assert set(log["stream"]) == {"btcusdt.book_snapshot_5"}
    assert log.filter(pl.col("kind") == "message").height == 10
    liq = tmp_path / "binance-futures_liquidations_2020-02-22_BTCUSDT.csv.gz"
    shutil.copy(TRADES, liq)
    imp(tmp_path / "b", "tardis", [liq])
    assert set(read_log(tmp_path / "b")["stream"]) == {"btcusdt.liquidations"}
    prefix = ["exchange", "symbol", "timestamp", "local_timestamp"]
    assert data_type(prefix + ["is_snapshot", "side", "price", "amount"], "x.csv") == \
        "incremental_book_L2"
    assert data_type(prefix + ["foo"], "x.csv") is None


def test_tardis_bad_record_and_bad_header(tmp_path):
    lines = content(QUOTES).splitlines()
    lines[41] = lines[41] + b",extra"  # line 42 of the file
    p = tmp_path / "quotes_bad.csv"
    p.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(ImportFormatError, match=r"quotes_bad\.csv:42: expected 8 fields"):
        imp(tmp_path / "log", "tardis", [p])
    report = imp(tmp_path / "log", "tardis", [p], keep_going=True)
    assert report.files[0].skipped_first[0][0] == 42 and report.files[0].rows == 500
    q = tmp_path / "not_tardis.csv"
    q.write_bytes(content(KLINES))
    with pytest.raises(ImportFormatError, match=r"not_tardis\.csv:1: not a Tardis CSV header"):
        imp(tmp_path / "log", "tardis", [q])


# -- data.binance.vision --------------------------------------------------------------------

def test_binance_vision_klines(tmp_path):
    report = imp(tmp_path, "binance-vision", [KLINES, KLINES_28])
    log = read_log(tmp_path)
    assert set(log["source"]) == {"binance.vision.spot"}
    assert set(log["stream"]) == {"adabtc.klines_1m"}
    msgs = log.filter(pl.col("kind") == "message").sort("seq")
    lines = content(KLINES).splitlines() + content(KLINES_28).splitlines()
    assert msgs["payload"].to_list() == lines
    rows = [line.split(b",") for line in lines]
    assert msgs["recv_ts_ns"].to_list() == [int(r[6]) * 10**6 for r in rows]  # close time
    assert msgs["event_ts_ns"].to_list() == [int(r[0]) * 10**6 for r in rows]  # open time
    marks = log.filter(pl.col("kind") == "connect")
    assert marks.height == 2 and set(marks["payload"]) == {b""}  # headerless files
    assert [f.unit for f in report.files] == ["ms", "ms"]


def test_binance_vision_microseconds_zip_header_and_market(tmp_path):
    """2025 spot files use µs; futures files carry a header; Binance ships zips."""
    rows = [line.split(b",") for line in content(KLINES).splitlines()]
    for r in rows:
        r[0], r[6] = r[0] + b"000", r[6] + b"000"
    header = (b"open_time,open,high,low,close,volume,close_time,quote_volume,count,"
              b"taker_buy_volume,taker_buy_quote_volume,ignore")
    body = b"\n".join([header] + [b",".join(r) for r in rows]) + b"\n"
    z = tmp_path / "ADABTC-1m-2021-11-27.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("ADABTC-1m-2021-11-27.csv", body)
    report = imp(tmp_path / "us", "binance-vision", [z], market="usdm")
    imp(tmp_path / "ms", "binance-vision", [KLINES])
    us, ms = read_log(tmp_path / "us"), read_log(tmp_path / "ms")
    assert report.files[0].unit == "us" and set(us["source"]) == {"binance.vision.usdm"}
    assert us["recv_ts_ns"].to_list() == ms["recv_ts_ns"].to_list()
    assert us["event_ts_ns"].to_list() == ms["event_ts_ns"].to_list()
    assert us.filter(pl.col("kind") == "connect")["payload"].to_list() == [header]


def test_binance_vision_name_needed_or_options(tmp_path):
    p = tmp_path / "klines.csv"
    shutil.copy(KLINES, p)
    with pytest.raises(ImportFormatError, match=r"klines\.csv: cannot tell symbol and data type"):
        imp(tmp_path / "a", "binance-vision", [p])
    imp(tmp_path / "b", "binance-vision", [p], symbol="ADABTC", data_type="klines_1m")
    assert set(read_log(tmp_path / "b")["stream"]) == {"adabtc.klines_1m"}


# -- Reddit ---------------------------------------------------------------------------------

def csv_records(path: Path) -> tuple[bytes, list[dict]]:
    text = content(path).decode()
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    return content(path), rows


def assert_verbatim(payloads: list[bytes], data: bytes) -> None:
    """Payloads are the file's records: in file order they rebuild the file after its header."""
    at = sorted((data.index(p), p) for p in set(payloads))
    rebuilt = b"".join(p + data[i + len(p): data.index(b"\n", i + len(p)) + 1]
                       for i, p in at)
    header_end = data.index(b"\n") + 1
    assert rebuilt == data[header_end:]


def test_reddit_posts_tz_shifts_iso_times_by_one_hour(tmp_path):
    imp(tmp_path / "utc", "reddit", [POSTS])
    imp(tmp_path / "cet", "reddit", [POSTS], tz="+01:00")
    imp(tmp_path / "paris", "reddit", [POSTS], tz="Europe/Paris")  # 2025-10-30: UTC+1 too
    utc, cet, paris = (read_log(tmp_path / d).filter(pl.col("kind") == "message").sort("payload")
                       for d in ("utc", "cet", "paris"))
    assert utc.height == 68
    assert ((utc["event_ts_ns"] - cet["event_ts_ns"]) == HOUR).all()
    assert cet["event_ts_ns"].to_list() == paris["event_ts_ns"].to_list()
    assert cet["recv_ts_ns"].to_list() == cet["event_ts_ns"].to_list()
    data, rows = csv_records(POSTS)
    assert_verbatim(cet["payload"].to_list(), data)
    by_id = {r["post_id"]: r for r in rows}
    for payload, stream, ev in cet.select("payload", "stream", "event_ts_ns").iter_rows():
        r = by_id[next(csv.reader([payload.decode()]))[1]]
        assert stream == f"r/{r['subreddit'].lower()}/submissions"
        expect = pl.Series([r["created_utc"]]).str.to_datetime(time_unit="ns").dt.epoch("ns")[0]
        assert ev == expect - HOUR


def test_reddit_comments_sorted_by_created_time_with_header_marker(tmp_path):
    report = imp(tmp_path, "reddit", [COMMENTS], tz="+01:00")
    log = read_log(tmp_path)
    data, rows = csv_records(COMMENTS)
    msgs = log.filter(pl.col("kind") == "message")
    assert msgs.height == len(rows) == 391
    assert {s.split("/")[2] for s in msgs["stream"]} == {"comments"}
    assert_verbatim(msgs["payload"].to_list(), data)
    for _, part in msgs.group_by("stream"):
        part = part.sort("seq")
        assert part["recv_ts_ns"].is_sorted()  # seq follows created time
    marks = log.filter(pl.col("kind") == "connect")
    assert set(marks["payload"]) == {data.split(b"\n", 1)[0].rstrip(b"\r")}
    assert any("read in tz +01:00" in n for n in report.files[0].notes)


def test_reddit_post_comment_pairs_emit_each_once_epoch_ignores_tz(tmp_path):
    imp(tmp_path / "a", "reddit", [PAIRS])
    imp(tmp_path / "b", "reddit", [PAIRS], tz="+01:00")
    a, b = read_log(tmp_path / "a"), read_log(tmp_path / "b")
    assert a["event_ts_ns"].to_list() == b["event_ts_ns"].to_list()  # epoch columns: true UTC
    _, rows = csv_records(PAIRS)
    subs = a.filter(pl.col("stream") == "r/cryptocurrency/submissions", pl.col("kind") == "message")
    coms = a.filter(pl.col("stream") == "r/cryptocurrency/comments", pl.col("kind") == "message")
    assert subs.height == len({r["submission_id"] for r in rows}) == 9
    assert coms.height == len(rows) == 116
    first_row = {}
    for r in rows:
        first_row.setdefault(r["submission_id"], r)
    got = {next(csv.reader([p.decode()]))[0]: ev
           for p, ev in subs.select("payload", "event_ts_ns").iter_rows()}
    assert got == {k: int(float(r["created_utc"])) * 10**9 for k, r in first_row.items()}
    assert sorted(coms["event_ts_ns"]) == sorted(int(float(r["comment_created_utc"])) * 10**9
                                                 for r in rows)


def test_reddit_jsonl_keeps_duplicates(tmp_path):
    _, rows = csv_records(PAIRS)
    lines = []
    for r in rows[:40]:
        lines.append(orjson.dumps({"id": r["submission_id"], "title": r["title"],
                                   "subreddit": r["subreddit"],
                                   "created_utc": float(r["created_utc"])}))
        lines.append(orjson.dumps({"id": r["comment_id"], "body": r["body"],
                                   "parent_id": r["parent_id"], "subreddit": r["subreddit"],
                                   "created_utc": float(r["comment_created_utc"])}))
    p = tmp_path / "export.jsonl"
    p.write_bytes(b"\n".join(lines) + b"\n")
    imp(tmp_path / "log", "reddit", [p], tz="+05:00")
    log = read_log(tmp_path / "log").filter(pl.col("kind") == "message")
    subs = log.filter(pl.col("stream") == "r/cryptocurrency/submissions")
    coms = log.filter(pl.col("stream") == "r/cryptocurrency/comments")
    assert subs.height == coms.height == 40  # repeated submissions are all kept (raw)
    assert sorted(log["payload"]) == sorted(lines)
    assert sorted(coms["event_ts_ns"]) == sorted(int(float(r["comment_created_utc"])) * 10**9
                                                 for r in rows[:40])


def test_reddit_errors(tmp_path):
    with pytest.raises(ValueError, match=r"import\.tz='Mars/Olympus'"):
        imp(tmp_path, "reddit", [POSTS], tz="Mars/Olympus")
    data = content(COMMENTS)
    cut = data[: data.index(b'"', len(data) // 2) + 1]  # ends inside a quoted field
    p = tmp_path / "cut.csv"
    p.write_bytes(cut)
    reader, starts, prev = csv.reader(io.StringIO(cut.decode(), newline="")), [], 0
    try:
        for _ in reader:
            starts.append(prev + 1)
            prev = reader.line_num
    except csv.Error:
        starts.append(prev + 1)
    line = starts[-1]  # where the record with the open quote starts
    with pytest.raises(ImportFormatError, match=rf"cut\.csv:{line}: unterminated quoted field"):
        imp(tmp_path / "log", "reddit", [p])
    report = imp(tmp_path / "log", "reddit", [p], keep_going=True)
    assert report.files[0].skipped_first == [(line, report.files[0].skipped_first[0][1])]
    assert report.files[0].rows > 100
    q = tmp_path / "prices.csv"
    q.write_bytes(b"date,close\n2025-01-01,1\n")
    with pytest.raises(ImportFormatError, match=r"prices\.csv:1: not a Reddit export header"):
        imp(tmp_path / "log", "reddit", [q])
