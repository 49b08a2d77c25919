"""Importers of Binance recordings (hftbacktest, cryptofeed) and the rules every import follows:
payload byte for byte, idempotent re-import, one-line errors naming file and line, keep_going."""

from __future__ import annotations

import gzip
import re
import shutil
import zlib
from decimal import Decimal
from pathlib import Path

import orjson
import polars as pl
import pytest

from recorder.importers import ImportFormatError, import_files
from recorder.index import LogIndex
from recorder.reader import LogReader

DATA = Path(__file__).parent / "data"
SPOT = DATA / "binance" / "spot_btcusdt_20240808.gz"
USDM = DATA / "binance" / "usdm_btcusdt_20240808_head3000.gz"
SPOT_US = DATA / "binance" / "spot_btcusdt_20230405_head2000.dat.gz"
CF = DATA / "cryptofeed"


def read_log(root: Path) -> pl.DataFrame:
    batches = [pl.from_arrow(b) for b in LogReader(root).read()]
    return pl.concat(batches) if batches else pl.DataFrame()


def lines_of(path: Path) -> list[bytes]:
    raw = path.read_bytes()
    return (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).splitlines()


def imp(root: Path, fmt: str, paths, **kw):
    return import_files(root, fmt, [str(p) for p in paths], progress=False, **kw)


def reference_hftbacktest(path: Path) -> pl.DataFrame:
    """What an hftbacktest import must hold, computed line by line the slow, obvious way."""
    rows = []
    for line in lines_of(path):
        ts, body = line.split(b" ", 1)
        d = orjson.loads(body)
        if "stream" in d:
            inner = d["data"]
            ev = inner.get("E", inner.get("T"))
            rows.append((d["stream"], int(ts), ev, "message", body))
        else:
            rows.append(("btcusdt@snapshot", int(ts), d.get("E"), "snapshot", body))
    return pl.DataFrame(rows, schema=["stream", "ts", "ev_ms", "kind", "payload"], orient="row")


@pytest.fixture(scope="module")
def spot_log(tmp_path_factory) -> tuple[Path, object, pl.DataFrame]:
    root = tmp_path_factory.mktemp("spot")
    report = imp(root, "hftbacktest", [SPOT])
    return root, report, read_log(root)


def test_hftbacktest_spot_streams_counts_and_payloads(spot_log):
    root, report, log = spot_log
    ref = reference_hftbacktest(SPOT)
    assert set(log["source"]) == {"binance.spot"}
    msgs = log.filter(pl.col("kind") != "connect")
    counts = dict(msgs.group_by("stream", "kind").len().select(
        pl.concat_str("stream", "kind", separator=" "), "len").iter_rows())
    assert counts == {"btcusdt@depth@100ms message": 3451, "btcusdt@trade message": 9757,
                      "btcusdt@bookTicker message": 28040, "btcusdt@snapshot snapshot": 1}
    # every record, per stream in file order, byte for byte, with its clocks
    for stream, part in ref.group_by("stream"):
        got = msgs.filter(pl.col("stream") == stream[0]).sort("seq")
        assert got["payload"].to_list() == part["payload"].to_list()
        assert got["recv_ts_ns"].to_list() == part["ts"].to_list()  # ns file: unchanged
        assert got["event_ts_ns"].to_list() == [None if e is None else e * 1_000_000
                                                for e in part["ev_ms"].to_list()]
    snap = msgs.filter(pl.col("kind") == "snapshot").row(0, named=True)
    assert snap["payload"].startswith(b'{"lastUpdateId":50093239218,')
    assert snap["event_ts_ns"] is None  # spot REST bodies carry no time
    f = report.files[0]
    assert (f.status, f.unit, f.rows, f.skipped_lines) == ("imported", "ns", 41249 + 4, 0)
    assert any("market spot inferred" in n for n in f.notes)


def test_connect_markers_open_every_stream_of_the_file(spot_log):
    _, _, log = spot_log
    marks = log.filter(pl.col("kind") == "connect")
    assert sorted(marks["stream"]) == ["btcusdt@bookTicker", "btcusdt@depth@100ms",
                                       "btcusdt@snapshot", "btcusdt@trade"]
    conns = set(log["conn"])
    assert len(conns) == 1 and next(iter(conns)).startswith("file:")
    for stream, part in log.group_by("stream"):
        part = part.sort("seq")
        assert part["kind"][0] == "connect" and (part["kind"][1:] != "connect").all(), stream
        assert part["recv_ts_ns"][0] <= part["recv_ts_ns"][1]
        assert part["seq"].to_list() == list(range(part.height))


def test_hftbacktest_usdm_inferred_and_snapshot_time(tmp_path):
    report = imp(tmp_path, "hftbacktest", [USDM])
    log = read_log(tmp_path)
    assert set(log["source"]) == {"binance.usdm"}
    assert "btcusdt@depth@0ms" in set(log["stream"])
    snap = log.filter(pl.col("kind") == "snapshot")
    assert snap.height == 1 and snap["stream"][0] == "btcusdt@snapshot"
    assert snap["event_ts_ns"][0] == 1723161256501 * 1_000_000  # the body's E
    assert any("market usdm inferred" in n and "'pu'" in n for n in report.files[0].notes)


def test_hftbacktest_market_option_overrides_inference(tmp_path):
    imp(tmp_path, "hftbacktest", [USDM], market="coinm")
    assert set(read_log(tmp_path)["source"]) == {"binance.coinm"}


def test_hftbacktest_microsecond_file_detected_and_scaled(tmp_path):
    report = imp(tmp_path, "hftbacktest", [SPOT_US])
    f = report.files[0]
    assert f.unit == "us" and any("us (from their magnitude)" in n for n in f.notes)
    log = read_log(tmp_path).filter(pl.col("kind") == "message")
    first = int(lines_of(SPOT_US)[0].split(b" ", 1)[0])
    assert first == 1680652800004107
    assert log.sort("recv_ts_ns")["recv_ts_ns"][0] == first * 1000
    assert log.height == 2000
    ref = reference_hftbacktest(SPOT_US)
    assert sorted(log["recv_ts_ns"].to_list()) == sorted(t * 1000 for t in ref["ts"])


def test_reimport_adds_nothing(tmp_path):
    first = imp(tmp_path, "hftbacktest", [USDM])
    n = read_log(tmp_path).height
    again = imp(tmp_path, "hftbacktest", [USDM, USDM])
    assert [f.status for f in again.files] == ["duplicate", "duplicate"]
    assert again.rows == 0 and read_log(tmp_path).height == n == first.rows
    idx = LogIndex(tmp_path)
    assert list(idx.imports()) == [first.files[0].sha256]
    idx.close()


def test_small_blocks_give_the_same_log(tmp_path):
    """Block boundaries (and a snapshot held until its symbol is known) change nothing."""
    imp(tmp_path / "a", "hftbacktest", [USDM])
    imp(tmp_path / "b", "hftbacktest", [USDM], block_bytes=50_000)
    a, b = read_log(tmp_path / "a"), read_log(tmp_path / "b")
    assert a.height == 3004 and a.equals(b)


def test_snapshot_before_any_depth_update_gets_the_following_depth_symbol(tmp_path):
    lines = lines_of(SPOT)
    snap = next(i for i, line in enumerate(lines) if b'"lastUpdateId"' in line)
    reordered = [lines[snap]] + [x for i, x in enumerate(lines[:400]) if i != snap]
    p = tmp_path / "snapshot_first.gz"
    p.write_bytes(gzip.compress(b"\n".join(reordered) + b"\n"))
    imp(tmp_path / "log", "hftbacktest", [p], block_bytes=4_096)
    log = read_log(tmp_path / "log")
    snaps = log.filter(pl.col("kind") == "snapshot")
    assert snaps["stream"].to_list() == ["btcusdt@snapshot"]
    assert snaps["payload"][0] == lines[snap].split(b" ", 1)[1]


def _truncated_copy(tmp_path: Path) -> tuple[Path, int, int]:
    raw = USDM.read_bytes()
    cut = raw[: len(raw) * 6 // 10]
    p = tmp_path / "usdm_cut.gz"
    p.write_bytes(cut)
    complete = zlib.decompressobj(47).decompress(cut).count(b"\n")
    return p, complete, complete + 1


def test_truncated_gzip_names_file_and_line_and_writes_nothing(tmp_path):
    p, _, line = _truncated_copy(tmp_path)
    with pytest.raises(ImportFormatError) as e:
        imp(tmp_path / "log", "hftbacktest", [p])
    msg = str(e.value)
    assert "\n" not in msg
    assert re.fullmatch(rf".*usdm_cut\.gz:{line}: truncated gzip stream.*", msg)
    idx = LogIndex(tmp_path / "log")
    assert idx.segments() == [] and idx.imports() == {}
    idx.close()
    assert not list((tmp_path / "log").glob("raw/**/*.parquet"))


def test_truncated_gzip_keep_going_imports_complete_lines(tmp_path):
    p, complete, line = _truncated_copy(tmp_path)
    report = imp(tmp_path / "log", "hftbacktest", [p], keep_going=True)
    f = report.files[0]
    assert f.status == "imported" and f.skipped_lines == 1
    assert f.skipped_first[0][0] == line and "truncated" in f.skipped_first[0][1]
    log = read_log(tmp_path / "log")
    assert log.filter(pl.col("kind") != "connect").height == complete


def _corrupt_copy(tmp_path: Path, lineno: int) -> Path:
    lines = lines_of(USDM)
    lines[lineno - 1] = lines[lineno - 1][:-2]  # drop the closing braces
    p = tmp_path / "usdm_bad.gz"
    p.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    return p


def test_corrupted_line_names_file_and_line(tmp_path):
    p = _corrupt_copy(tmp_path, 100)
    with pytest.raises(ImportFormatError, match=r"usdm_bad\.gz:100: invalid JSON"):
        imp(tmp_path / "log", "hftbacktest", [p])
    assert read_log(tmp_path / "log").height == 0


def test_keep_going_skips_bad_lines_and_failed_files_and_reports_them(tmp_path):
    bad = _corrupt_copy(tmp_path, 100)
    lines = lines_of(USDM)
    lines[1] = b"1680652800004231 " + lines[1].split(b" ", 1)[1]  # a µs time in an ns file
    mixed = tmp_path / "mixed_units.gz"
    mixed.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    empty_json = tmp_path / "not_json.gz"
    empty_json.write_bytes(gzip.compress(b"garbage\n"))
    report = imp(tmp_path / "log", "hftbacktest", [bad, mixed, empty_json, SPOT_US],
                 keep_going=True)
    statuses = [(f.status, f.skipped_lines) for f in report.files]
    assert statuses == [("imported", 1), ("imported", 1), ("imported", 1), ("imported", 0)]
    assert report.files[0].skipped_first == [(100, report.files[0].skipped_first[0][1])]
    assert "invalid JSON" in report.files[0].skipped_first[0][1]
    assert report.files[1].skipped_first[0][0] == 2
    assert "not in ns" in report.files[1].skipped_first[0][1]
    text = report.to_text()
    assert "skipped 1 lines; first: line 100 (invalid JSON" in text
    assert report.files[0].rows == 3000 - 1 + 4


# -- cryptofeed -----------------------------------------------------------------------------

def _ns(text: bytes) -> int:
    return int(Decimal(text.decode()) * 10**9)


def test_cryptofeed_spot_ws_and_http(tmp_path):
    report = imp(tmp_path, "cryptofeed", [CF / "BINANCE.ws.1.0.gz", CF / "BINANCE.http.0.0.gz"])
    log = read_log(tmp_path)
    assert set(log["source"]) == {"binance.spot"}
    ws_lines = lines_of(CF / "BINANCE.ws.1.0.gz")
    url, _, at = ws_lines[0].partition(b" <-> ")
    frames = [x for x in ws_lines[1:] if x]
    msgs = log.filter(pl.col("kind") == "message")
    assert msgs.height == len(frames) == 265
    by_stream = dict(msgs.group_by("stream").len().iter_rows())
    assert by_stream["nknusdt@depth@100ms"] == 150 and by_stream["lrcbtc@aggTrade"] == 1
    assert sum(v for k, v in by_stream.items() if "@depth" in k) == 177
    assert sum(v for k, v in by_stream.items() if "@bookTicker" in k) == 84
    # payloads and times exactly as written, stream by stream in file order
    for stream, part in msgs.group_by("stream"):
        mine = [x for x in frames if orjson.loads(x.split(b": ", 1)[1])["stream"] == stream[0]]
        part = part.sort("seq")
        assert part["payload"].to_list() == [x.split(b": ", 1)[1] for x in mine]
        assert part["recv_ts_ns"].to_list() == [_ns(x.split(b": ", 1)[0]) for x in mine]
        ev = [orjson.loads(x.split(b": ", 1)[1])["data"].get("E") for x in mine]
        assert part["event_ts_ns"].to_list() == [None if e is None else e * 10**6 for e in ev]
    ws_marks = log.filter((pl.col("kind") == "connect") & pl.col("stream").str.contains("@")
                          & ~pl.col("stream").str.ends_with("@snapshot"))
    assert ws_marks.height == len(by_stream)
    assert set(ws_marks["payload"]) == {url} and set(ws_marks["recv_ts_ns"]) == {_ns(at)}
    snaps = log.filter(pl.col("kind") == "snapshot").sort("recv_ts_ns")
    http = [x for x in lines_of(CF / "BINANCE.http.0.0.gz") if x]
    assert snaps["stream"].to_list() == ["nknusdt@snapshot", "blzeth@snapshot",
                                         "lrcbtc@snapshot", "runeeur@snapshot"]
    assert snaps["payload"].to_list() == [x.split(b": ", 1)[1] for x in http]
    assert snaps["recv_ts_ns"].to_list() == [_ns(x.split(b" -> ")[1].split(b": ")[0])
                                             for x in http]
    http_marks = log.filter((pl.col("kind") == "connect")
                            & pl.col("stream").str.ends_with("@snapshot")).sort("recv_ts_ns")
    assert http_marks["payload"].to_list() == [x.split(b" -> ")[0] for x in http]
    assert [f.status for f in report.files] == ["imported", "imported"]


def test_cryptofeed_futures_rest_configuration_and_exchange_from_name(tmp_path):
    imp(tmp_path, "cryptofeed", [CF / "BINANCE_FUTURES.0.gz", CF / "BINANCE_FUTURES.http.0.0.gz",
                                 CF / "BINANCE_FUTURES.ws.1.0.head400.gz",
                                 CF / "BINANCE_US.ws.1.0.gz"])
    log = read_log(tmp_path)
    assert set(log["source"]) == {"binance.usdm", "binance.us"}
    lines = lines_of(CF / "BINANCE_FUTURES.0.gz")
    info = log.filter(pl.col("stream") == "rest/fapi/v1/exchangeInfo", pl.col("kind") == "message")
    assert info["payload"].to_list() == [lines[0].split(b": ", 1)[1]]
    conf = log.filter(pl.col("stream") == "cryptofeed/configuration", pl.col("kind") == "message")
    assert conf["payload"].to_list() == [lines[1][len(b"configuration: "):]]
    assert conf["recv_ts_ns"][0] == info["recv_ts_ns"][0]  # the line before gives its time
    snaps = log.filter(pl.col("kind") == "snapshot", pl.col("source") == "binance.usdm")
    assert snaps.height == 4 and snaps["event_ts_ns"].null_count() == 0
    fut = log.filter(pl.col("source") == "binance.usdm", pl.col("stream").str.contains("@depth"),
                     pl.col("kind") == "message")
    assert fut.height > 0 and fut["event_ts_ns"].null_count() == 0
    us = log.filter(pl.col("source") == "binance.us", pl.col("kind") == "message")
    assert us.height == 480


def test_cryptofeed_reconnect_starts_a_new_conn(tmp_path):
    lines = lines_of(CF / "BINANCE_US.ws.1.0.gz")
    text = b"\n".join(lines[:101] + [lines[0]] + lines[101:]) + b"\n"
    p = tmp_path / "BINANCE_US.ws.1.0"
    p.write_bytes(text)
    imp(tmp_path / "log", "cryptofeed", [p])
    log = read_log(tmp_path / "log")
    conns = sorted(set(log["conn"]))
    assert len(conns) == 2 and conns[1] == conns[0] + ".1"
    second = log.filter(pl.col("conn") == conns[1], pl.col("kind") == "message")
    assert second.height == len([x for x in lines[101:] if x])
    for conn in conns:  # each connection opens each of its streams once
        part = log.filter(pl.col("conn") == conn)
        opened = part.filter(pl.col("kind") == "connect")["stream"]
        assert sorted(opened) == sorted(set(part["stream"]))


def test_cryptofeed_unknown_exchange_is_a_file_error(tmp_path):
    p = tmp_path / "KRAKEN.ws.1.0.gz"
    shutil.copy(CF / "BINANCE.ws.1.0.gz", p)
    with pytest.raises(ImportFormatError, match=r"KRAKEN\.ws\.1\.0\.gz: cannot tell the exchange"):
        imp(tmp_path / "log", "cryptofeed", [p])
    report = imp(tmp_path / "log", "cryptofeed", [p, CF / "BINANCE.http.0.0.gz"], keep_going=True)
    assert [f.status for f in report.files] == ["failed", "imported"]
    assert "cannot tell the exchange" in report.files[0].error
    imp(tmp_path / "log2", "cryptofeed", [p], market="spot")
    assert set(read_log(tmp_path / "log2")["source"]) == {"binance.spot"}


def test_unknown_format_and_bad_market_are_config_errors(tmp_path):
    with pytest.raises(ValueError, match="import format 'csv'"):
        imp(tmp_path, "csv", [SPOT])
    with pytest.raises(ValueError, match=r"import\.market='linear'"):
        imp(tmp_path, "hftbacktest", [USDM], market="linear")
