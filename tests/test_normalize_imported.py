"""Whole imported recordings through the normaliser (files in tests/data, see its README).

The compiled Binance scanner must give exactly the rows of the polars-decoder path, and the
depth/trade rows of the spot recording must equal an independent per-line `json.loads`
reading of the same file.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import polars as pl
import pytest

from recorder.importers import import_files
from recorder.normalize import normalize, parse_events, read_table
from recorder.reader import LogReader

DATA = Path(__file__).parent / "data"
BINANCE = ["binance/spot_btcusdt_20240808.gz", "binance/usdm_btcusdt_20240808_head3000.gz",
           "binance/spot_btcusdt_20230405_head2000.dat.gz"]


@pytest.fixture(scope="module")
def log(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("log")
    import_files(root, "hftbacktest", [DATA / n for n in BINANCE], progress=False)
    import_files(root, "cryptofeed", sorted((DATA / "cryptofeed").glob("*")), progress=False)
    import_files(root, "tardis", sorted((DATA / "tardis").glob("*")), progress=False)
    import_files(root, "binance-vision", sorted((DATA / "binance_vision").glob("*")),
                 progress=False)
    import_files(root, "reddit", sorted((DATA / "reddit").glob("*")), progress=False,
                 tz="+01:00")
    return root


@pytest.fixture(scope="module")
def raw(log) -> pl.DataFrame:
    return pl.concat([pl.from_arrow(b) for b in LogReader(log).read()])


def test_scanner_and_polars_decoder_agree_on_every_binance_recording(raw):
    fast = parse_events(raw)
    ref = parse_events(raw, scan=False)
    for table in ("depth", "trades", "bbo"):
        a, b = fast.tables[table], ref.tables[table]
        assert a.height > 1000, table
        assert a.equals(b), table
    assert fast.skipped == ref.skipped


def _reference_rows(path: Path) -> tuple[list[tuple], list[tuple]]:
    """Depth and trade rows read line by line with json.loads (the obvious reading)."""
    depth, trades = [], []
    with gzip.open(path, "rt") as fh:
        for line in fh:
            ts, payload = line.split(" ", 1)
            msg = json.loads(payload)
            d = msg.get("data", msg)
            if "lastUpdateId" in d:
                lv = [(0, p, q) for p, q in d["bids"]] + [(1, p, q) for p, q in d["asks"]]
                ids = (d["lastUpdateId"], d["lastUpdateId"], True)
            elif d.get("e") == "depthUpdate":
                lv = [(0, p, q) for p, q in d["b"]] + [(1, p, q) for p, q in d["a"]]
                ids = (d["U"], d["u"], False)
            else:
                if d.get("e") == "trade":
                    trades.append((int(ts), d["t"], float(d["p"]), float(d["q"]), d["m"],
                                   d["T"] * 1_000_000))
                continue
            for i, (side, p, q) in enumerate(lv):
                depth.append((int(ts), *ids, i, side, float(p), float(q)))
    return depth, trades


def test_spot_recording_matches_a_json_loads_reading(raw):
    spot = raw.filter(pl.col("source") == "binance.spot",
                      pl.col("recv_ts_ns") > 1_700_000_000 * 10**9)
    p = parse_events(spot)
    want_depth, want_trades = _reference_rows(DATA / BINANCE[0])
    got = p.tables["depth"].select("recv_ts_ns", "first_id", "last_id", "is_snapshot", "level",
                                   "side", "price", "qty").rows()
    assert len(got) == len(want_depth) == 126_090
    assert sorted(got) == sorted(want_depth)
    t = p.tables["trades"]
    assert t.height == 9_757 and (t["kind"] == "trade").all()
    assert sorted(t.select("recv_ts_ns", "trade_id", "price", "qty", "is_buyer_maker",
                           "trade_ts_ns").rows()) == sorted(want_trades)
    assert p.tables["bbo"].height == 28_040
    snap = p.tables["depth"].filter("is_snapshot")
    assert snap.height == 2000 and set(snap["last_id"]) == {50093239218}
    # one message per update id range, chained without gaps (U == previous u + 1)
    ids = (p.tables["depth"].filter(~pl.col("is_snapshot"))
           .unique(["seq"]).sort("last_id"))
    assert ids.height == 3_451
    assert (ids["first_id"][1:] == ids["last_id"][:-1] + 1).all()


def test_futures_snapshot_times_and_prev_ids(raw):
    d = parse_events(raw.filter(pl.col("source") == "binance.usdm",
                                pl.col("stream").str.starts_with("btcusdt")),
                     ["depth"]).tables["depth"]
    snap = d.filter("is_snapshot")
    assert set(snap["last_id"]) == {5123107852948}
    assert set(snap["event_ts_ns"]) == {1723161256501 * 1_000_000}
    assert set(snap["transact_ts_ns"]) == {1723161256493 * 1_000_000}
    diffs = d.filter(~pl.col("is_snapshot")).unique("seq", maintain_order=True)
    assert diffs["prev_id"].null_count() == 0
    assert (diffs["prev_id"][1:] == diffs["last_id"][:-1]).all()


def test_cache_over_every_format(log):
    r = normalize(log, progress=False)
    assert r.skipped == {t: 0 for t in r.skipped}
    trades = read_table(log, "trades", streams=["tardis.binance-futures:*"]).collect()
    assert trades.height == 500 and trades["trade_id"].is_sorted()
    quotes = read_table(log, "bbo", streams=["tardis.*:btcusdt.quotes"]).collect()
    assert quotes.height == 500 and quotes["update_id"].is_null().all()
    book5 = read_table(log, "depth", streams=["*book_snapshot_5"]).collect()
    assert book5.height == 10 * 10 and book5["is_snapshot"].all()
    kl = read_table(log, "klines", streams=["binance.vision.spot:*"]).collect()
    assert kl.height == 21 and kl["open_ts_ns"].is_sorted()
    posts = read_table(log, "posts").collect()
    assert posts["id"].is_unique().all()
    assert set(posts["kind"]) == {"submission", "comment"}
    # crypto_* exports write local time (UTC+1): the import's tz moved them to true UTC
    c = posts.filter(pl.col("id") == "nm7apiu").row(0, named=True)  # 2025-10-30T15:58:42
    assert c["created_ts_ns"] == (1761839922 - 3600) * 10**9
    assert (c["post_id"], c["parent_id"], c["score"]) == ("1ok1qwg", "1ok1qwg", 26)
    us = read_table(log, "depth", symbols=["crvusdt"], streams=["binance.us:*"]).collect()
    assert us.filter("is_snapshot")["last_id"].unique().to_list() == [1938834]
    assert normalize(log, progress=False).rebuilt == []
