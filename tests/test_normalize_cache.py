"""The normalised cache on a real log: incremental rebuilds, stale outputs, window reads.

Payloads are real: Binance spot frames from hftbacktest's examples/spot/btcusdt_20240808.gz
(MIT, nkaz001/hftbacktest@5f3ec40b) and Reddit records from zakariaeyahya/Crypto_Analysis
(MIT, @f48eae20, data_consolidation/raw_sources/reddit_posts_20251029.csv).
"""

from __future__ import annotations

import sqlite3

import polars as pl
import pytest

from recorder.events import events_table
from recorder.normalize import TABLE_VERSIONS, conn_headers, normalize, read_table
from recorder.normalize.cache import output_relpath
from recorder.writer import LogWriter

DEPTH_1 = (1723161253937085768, b'{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161255208,"s":"BTCUSDT","U":50093239189,"u":50093239202,"b":[["61737.63000000","0.00000000"],["61730.17000000","0.00000000"],["56854.58000000","0.00000000"]],"a":[["61837.64000000","1.54698000"],["61839.85000000","0.00000000"]]}}')  # noqa: E501
DEPTH_2 = (1723161254036059768, b'{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161255308,"s":"BTCUSDT","U":50093239203,"u":50093239207,"b":[["55653.87000000","0.00000000"]],"a":[["61838.04000000","0.32332000"],["61844.30000000","0.40163000"],["61862.50000000","0.05019000"],["61862.51000000","0.00000000"]]}}')  # noqa: E501
TICKER = (1723161254087891268, b'{"stream":"btcusdt@bookTicker","data":{"u":50093239212,"s":"BTCUSDT","b":"61837.63000000","B":"3.78826000","a":"61837.64000000","A":"1.54698000"}}')  # noqa: E501
TRADE = (1723161254087896568, b'{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161255343,"s":"BTCUSDT","t":3735683259,"p":"61837.63000000","q":"0.02000000","T":1723161255342,"m":true,"M":true}}')  # noqa: E501
ETH_TRADE = (1723161254100000000, b'{"stream":"ethusdt@trade","data":{"e":"trade","E":1723161255400,"s":"ETHUSDT","t":1,"p":"2600.10","q":"1.5","T":1723161255399,"m":false,"M":true}}')  # noqa: E501 (BTCUSDT trade above with symbol, ids and values changed: a second symbol)

REDDIT_HEADER = (b"submission_id,title,text,score,num_comments,upvote_ratio,url,created_utc,"
                 b"author,subreddit,query,source,created_datetime,comment_id,body,"
                 b"comment_score,parent_id,comment_created_utc")
REDDIT_ROWS = [
    b'1oiyq9d,"Bitcoin Holds $113K as Liquidity Thins, Traders Turn Defensive Before Fed Week",,'
    b"10,3,0.86,https://www.coindesk.com/markets/2025/10/29/bitcoin-holds-usd113k-as-liquidity-"
    b"thins-traders-turn-defensive-before-fed-week,1761725410.0,DryMyBottom,CryptoCurrency,"
    b"bitcoin,reddit_post,2025-10-29T09:14:46,nlz22qh,No one turns defensive it's just Trumps "
    b"family and CZ pulling shut again,4,t3_1oiyq9d,1761725686.0",
    b'1oiyq9d,"Bitcoin Holds $113K as Liquidity Thins, Traders Turn Defensive Before Fed Week",,'
    b"10,3,0.86,https://www.coindesk.com/markets/2025/10/29/bitcoin-holds-usd113k-as-liquidity-"
    b"thins-traders-turn-defensive-before-fed-week,1761725410.0,DryMyBottom,CryptoCurrency,"
    b'bitcoin,reddit_post,2025-10-29T09:50:30,nlz5j82,"Stonks are going to the moon, what kind '
    b'of defensive manipulation is going on ?",1,t3_1oiyq9d,1761727830.0',
]


def binance(lines, source="binance.spot"):
    return events_table(source=[source] * len(lines),
                        stream=[p.split(b'"')[3].decode() for _, p in lines],
                        recv_ts_ns=[r for r, _ in lines], payload=[p for _, p in lines],
                        conn="c1")


def reddit(stream, records, t0, conn="file:0123456789abcdef"):
    n = len(records)
    return events_table(source=["reddit"] * (n + 1), stream=[stream] * (n + 1),
                        recv_ts_ns=[t0] + [t0 + i for i in range(n)],
                        payload=[REDDIT_HEADER, *records], kind=["connect"] + ["message"] * n,
                        conn=conn)


def write(root, writer, *tables):
    """One sealed segment per table given."""
    with LogWriter(root, writer, fsync="off") as w:
        for t in tables:
            w.append(t)
            w.seal()


def segment_paths(root):
    return sorted(str(p.relative_to(root)) for p in (root / "raw").rglob("*.parquet"))


@pytest.fixture
def log(tmp_path):
    write(tmp_path, "live", binance([DEPTH_1, TICKER]), binance([DEPTH_2, TRADE]))
    return tmp_path


def test_outputs_per_segment_and_second_run_does_nothing(log):
    first = normalize(log, progress=False)
    segs = segment_paths(log)
    assert len(segs) == 2
    assert sorted(first.rebuilt) == sorted((s, t) for s in segs for t in TABLE_VERSIONS)
    assert first.rows["depth"] == 5 + 5 and first.rows["trades"] == 1 and first.rows["bbo"] == 1
    assert (log / output_relpath("depth", segs[0])).exists()
    assert (log / output_relpath("trades", segs[1])).exists()
    assert not (log / output_relpath("trades", segs[0])).exists()  # no rows, no file
    again = normalize(log, progress=False)
    assert again.rebuilt == [] and again.removed == []
    forced = normalize(log, tables=["bbo"], force=True, progress=False)
    assert sorted(forced.rebuilt) == [(s, "bbo") for s in segs]


def test_version_bump_rebuilds_exactly_that_table(log, monkeypatch):
    normalize(log, progress=False)
    monkeypatch.setitem(TABLE_VERSIONS, "trades", TABLE_VERSIONS["trades"] + 1)
    r = normalize(log, progress=False)
    assert sorted(r.rebuilt) == [(s, "trades") for s in segment_paths(log)]
    assert normalize(log, progress=False).rebuilt == []


def test_new_segment_rebuilds_exactly_that_segment(log):
    normalize(log, progress=False)
    before = set(segment_paths(log))
    write(log, "live", binance([ETH_TRADE]))
    (new,) = set(segment_paths(log)) - before
    r = normalize(log, progress=False)
    assert sorted(r.rebuilt) == sorted((new, t) for t in TABLE_VERSIONS)
    assert r.rows["trades"] == 1


def test_changed_segment_hash_or_missing_output_rebuilds(log):
    normalize(log, progress=False)
    segs = segment_paths(log)
    (log / output_relpath("depth", segs[1])).unlink()
    with sqlite3.connect(log / "index.sqlite") as db:
        db.execute("UPDATE segments SET sha256='0'||substr(sha256, 2) WHERE path=?", (segs[0],))
    r = normalize(log, progress=False)
    assert sorted(r.rebuilt) == sorted([(segs[0], t) for t in TABLE_VERSIONS]
                                       + [(segs[1], "depth")])


def test_outputs_of_removed_segments_and_stray_files_are_deleted(log):
    normalize(log, progress=False)
    segs = segment_paths(log)
    stray = log / "norm" / "depth" / "gone-00000007.parquet"
    stray.write_bytes(b"left by a crashed run")
    with sqlite3.connect(log / "index.sqlite") as db:
        db.execute("DELETE FROM segments WHERE path=?", (segs[1],))
        db.execute("DELETE FROM segment_streams WHERE path=?", (segs[1],))
    (log / segs[1]).unlink()
    r = normalize(log, progress=False)
    assert r.rebuilt == []
    assert sorted(r.removed) == sorted([output_relpath("depth", segs[1]),
                                        output_relpath("trades", segs[1]),
                                        "norm/depth/gone-00000007.parquet"])
    assert not stray.exists() and not (log / output_relpath("trades", segs[1])).exists()
    assert (log / output_relpath("depth", segs[0])).exists()


def test_read_table_normalises_on_demand_in_log_order(log):
    d = read_table(log, "depth").collect()  # no normalize() before: done on demand
    assert d["recv_ts_ns"].to_list() == [DEPTH_1[0]] * 5 + [DEPTH_2[0]] * 5
    assert d["level"].to_list() == [0, 1, 2, 3, 4] * 2
    assert d["first_id"].to_list() == [50093239189] * 5 + [50093239203] * 5
    assert (log / "norm" / "state.json").exists()
    assert read_table(log, "bbo").collect()["update_id"].to_list() == [50093239212]


def test_read_table_window_symbols_and_streams(log):
    write(log, "other", binance([ETH_TRADE]))
    all_trades = read_table(log, "trades").collect()
    assert all_trades["symbol"].to_list() == ["BTCUSDT", "ETHUSDT"]
    assert read_table(log, "trades", symbols=["ethusdt"]).collect()["trade_id"].to_list() == [1]
    assert read_table(log, "trades", streams=["btc*"]).collect()["trade_id"].to_list() == [
        3735683259]
    assert read_table(log, "trades", streams=["binance.spot:eth*"]).collect().height == 1
    assert read_table(log, "trades", streams=["nothing*"]).collect().height == 0
    w = read_table(log, "depth", window=(DEPTH_2[0], TRADE[0])).collect()
    assert set(w["recv_ts_ns"]) == {DEPTH_2[0]}
    assert read_table(log, "depth", window=(None, DEPTH_2[0])).collect().height == 5


def test_posts_deduplicated_across_segments_latest_version_wins(tmp_path):
    # the same submission seen in two imports; the later one kept, first sighting remembered
    t1, t2 = 1761726000 * 10**9, 1761730000 * 10**9
    write(tmp_path, "imp-a", reddit("r/cryptocurrency/submissions", REDDIT_ROWS[:1], t1))
    changed = REDDIT_ROWS[1].replace(b",,10,3,", b",,12,3,")  # score 10 -> 12 when re-scraped
    write(tmp_path, "imp-b", reddit("r/cryptocurrency/submissions", [changed], t2,
                                    conn="file:fedcba9876543210"))
    p = read_table(tmp_path, "posts").collect()
    assert p.height == 1
    row = p.row(0, named=True)
    assert (row["id"], row["score"], row["recv_ts_ns"], row["first_recv_ts_ns"]) == (
        "1oiyq9d", 12, t2, t1)
    assert row["created_ts_ns"] == 1761725410 * 10**9
    early = read_table(tmp_path, "posts", window=(None, t2)).collect()
    assert early["score"].to_list() == [10]  # a window never sees later versions


def test_csv_header_found_in_an_earlier_segment(tmp_path):
    marker_and_records = reddit("r/cryptocurrency/comments", REDDIT_ROWS, 1761726000 * 10**9)
    # the connect marker sealed alone, records in the next segment (as in a long import)
    write(tmp_path, "imp", marker_and_records.slice(0, 1), marker_and_records.slice(1))
    c = read_table(tmp_path, "posts").collect()
    assert c["id"].to_list() == ["nlz22qh", "nlz5j82"]
    key = ("reddit", "r/cryptocurrency/comments", "file:0123456789abcdef")
    assert conn_headers(tmp_path) == {key: REDDIT_HEADER.decode()}
    assert c["created_ts_ns"].to_list() == [1761725686 * 10**9, 1761727830 * 10**9]
    assert c["score"].to_list() == [4, 1] and c["post_id"].to_list() == ["1oiyq9d"] * 2


def test_bad_arguments_are_clear_errors(tmp_path, log):
    with pytest.raises(FileNotFoundError, match="no log here"):
        normalize(tmp_path / "nothing", progress=False)
    with pytest.raises(ValueError, match="posts have no symbol"):
        read_table(log, "posts", symbols=["BTCUSDT"])
    with pytest.raises(ValueError, match="unknown table"):
        read_table(log, "depths")


def test_outputs_are_byte_identical_when_rebuilt(log):
    normalize(log, progress=False)
    seg = segment_paths(log)[0]
    out = log / output_relpath("depth", seg)
    first = out.read_bytes()
    normalize(log, force=True, progress=False)
    assert out.read_bytes() == first
    assert pl.read_parquet(out).height == 5
