"""Parsers of the normalised tables, on real payloads pasted from public recordings.

Sources (all permissive): hftbacktest examples (MIT, nkaz001/hftbacktest@5f3ec40b and
@f5cfe1e0: examples/spot/btcusdt_20240808.gz, examples/usdm/btcusdt_20240808.gz,
examples/spot/btcusdt_20230405.dat.gz); cryptofeed sample_data (bmoscon/cryptofeed@ce58c2a0,
BINANCE_US.*, BINANCE_DELIVERY.ws.1.0, BINANCE.ws.1.0; permissive licence, (c) Bryant Moscon);
Reddit CSV exports (MIT, zakariaeyahya/Crypto_Analysis@f48eae20); Tardis and binance.vision CSV
rows from nautilus_trader's test data (nautechsystems/nautilus_trader, Tardis.dev / Binance
public samples). Lines are verbatim unless a comment says how one was derived.
"""

from __future__ import annotations

import math

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recorder.events import events_table
from recorder.normalize import parse_events
from recorder.normalize.csv_records import MissingHeaderError

SPOT_DEPTH = (1723161254036059768, b'{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161255308,"s":"BTCUSDT","U":50093239203,"u":50093239207,"b":[["55653.87000000","0.00000000"]],"a":[["61838.04000000","0.32332000"],["61844.30000000","0.40163000"],["61862.50000000","0.05019000"],["61862.51000000","0.00000000"]]}}')  # noqa: E501
SPOT_TICKER = (1723161254087891268, b'{"stream":"btcusdt@bookTicker","data":{"u":50093239212,"s":"BTCUSDT","b":"61837.63000000","B":"3.78826000","a":"61837.64000000","A":"1.54698000"}}')  # noqa: E501
SPOT_TRADE = (1723161254087896568, b'{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161255343,"s":"BTCUSDT","t":3735683259,"p":"61837.63000000","q":"0.02000000","T":1723161255342,"m":true,"M":true}}')  # noqa: E501
# 2023 spot trades carry buyer/seller order ids `b`/`a`: `a` must not be taken as the trade id.
SPOT_TRADE_2023 = (1680652800004107000, b'{"stream":"btcusdt@trade","data":{"e":"trade","E":1680652800000,"s":"BTCUSDT","t":3071245454,"p":"28165.47000000","q":"0.00056000","b":20720542158,"a":20720542592,"T":1680652799999,"m":true,"M":true}}')  # noqa: E501
USDM_DEPTH = (1723161599098636582, b'{"stream":"btcusdt@depth@0ms","data":{"e":"depthUpdate","E":1723161600370,"T":1723161600319,"s":"BTCUSDT","U":5123134944963,"u":5123134944963,"pu":5123134735497,"b":[["5000.00","2.321"]],"a":[]}}')  # noqa: E501
USDM_TICKER = (1723161255088169167, b'{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":5123107839020,"s":"BTCUSDT","b":"61800.20","B":"2.507","a":"61800.30","A":"2.510","T":1723161256313,"E":1723161256313}}')  # noqa: E501
USDM_TRADE = (1723161255088176367, b'{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161256322,"T":1723161256322,"s":"BTCUSDT","t":5266583935,"p":"61800.30","q":"0.006","X":"MARKET","m":false}}')  # noqa: E501
COINM_DEPTH = (1626916416708440000, b'{"stream":"eosusd_perp@depth@100ms","data":{"e":"depthUpdate","E":1626916416735,"T":1626916416715,"s":"EOSUSD_PERP","ps":"EOSUSD","U":167006173806,"u":167006174197,"pu":167006173747,"b":[["3.468","0"]],"a":[]}}')  # noqa: E501
COINM_AGG = (1626916408607320000, b'{"stream":"bchusd_perp@aggTrade","data":{"e":"aggTrade","E":1626916404006,"a":11285749,"s":"BCHUSD_PERP","p":"427.91","q":"3","f":16034449,"l":16034449,"T":1626916403852,"m":true}}')  # noqa: E501
SPOT_KLINE = (1633998523957297800, b'{"stream":"nknusdt@kline_1m","data":{"e":"kline","E":1633998523963,"s":"NKNUSDT","k":{"t":1633998480000,"T":1633998539999,"s":"NKNUSDT","i":"1m","f":19862761,"L":19862790,"o":"0.35270000","c":"0.35280000","h":"0.35280000","l":"0.35220000","v":"25877.00000000","n":30,"x":false,"q":"9116.04600000","V":"58.00000000","Q":"20.46240000","B":"0"}}}')  # noqa: E501
US_DEPTH = (1633998275119386200, b'{"stream":"crvusdt@depth@100ms","data":{"e":"depthUpdate","E":1633998275194,"s":"CRVUSDT","U":1938833,"u":1938834,"b":[["2.63700000","0.00000000"],["2.63400000","91.00000000"]],"a":[]}}')  # noqa: E501
# REST body of https://api.binance.us/api/v3/depth?symbol=CRVUSDT&limit=1000 (74 bids, 61 asks).
CRV_SNAPSHOT = (
    b'{"lastUpdateId":1938834,"bids":[["2.64000000","1892.10000000"],["2.63900000","3943.30000'
    b'000"],["2.63800000","27.00000000"],["2.63600000","459.90000000"],["2.63400000","91.00000'
    b'000"],["2.63300000","614.90000000"],["2.63200000","598.30000000"],["2.63100000","917.000'
    b'00000"],["2.63000000","25841.20000000"],["2.62700000","19.50000000"],["2.62600000","1314'
    b'.80000000"],["2.62500000","15.30000000"],["2.62300000","3.90000000"],["2.62200000","952.'
    b'50000000"],["2.62100000","630.70000000"],["2.61700000","914.10000000"],["2.61600000","7.'
    b'70000000"],["2.61500000","1073.50000000"],["2.61200000","1064.10000000"],["2.61100000","'
    b'15.20000000"],["2.61000000","81.60000000"],["2.60900000","468.90000000"],["2.60800000","'
    b'13.30000000"],["2.60700000","1479.10000000"],["2.60400000","10.10000000"],["2.60200000",'
    b'"1645.90000000"],["2.60100000","18.00000000"],["2.60000000","3.90000000"],["2.59900000",'
    b'"115.00000000"],["2.59800000","241.90000000"],["2.59700000","1919.70000000"],["2.5950000'
    b'0","19.70000000"],["2.59400000","54.40000000"],["2.59100000","1945.40000000"],["2.586000'
    b'00","2075.60000000"],["2.58100000","91.00000000"],["2.58000000","1538.80000000"],["2.575'
    b'00000","2115.40000000"],["2.57000000","1891.50000000"],["2.56500000","2024.00000000"],["'
    b'2.55900000","1799.30000000"],["2.55700000","7.10000000"],["2.55400000","93.00000000"],["'
    b'2.55300000","2075.80000000"],["2.54700000","1665.00000000"],["2.53700000","11.70000000"]'
    b',["2.52600000","11.00000000"],["2.51400000","31.00000000"],["2.50500000","399.20000000"]'
    b',["2.50100000","106.80000000"],["2.48700000","11.50000000"],["2.47500000","12.60000000"]'
    b',["2.44800000","12.00000000"],["2.41300000","13.60000000"],["2.40900000","12.60000000"],'
    b'["2.40000000","100.00000000"],["2.36700000","17.60000000"],["2.35100000","14.60000000"],'
    b'["2.25700000","664.60000000"],["2.20000000","800.90000000"],["2.16900000","113.00000000"'
    b'],["2.11700000","4.80000000"],["1.95000000","3076.90000000"],["1.45800000","940.20000000'
    b'"],["0.66000000","1967.50000000"],["0.54100000","184.80000000"],["0.54000000","3622.7000'
    b'0000"],["0.53000000","200.00000000"],["0.50300000","200.00000000"],["0.50000000","1542.6'
    b'0000000"],["0.48200000","125.00000000"],["0.47000000","200.00000000"],["0.46000000","216'
    b'.70000000"],["0.42000000","499.80000000"]],"asks":[["2.64800000","2029.90000000"],["2.64'
    b'900000","3780.40000000"],["2.65100000","27.00000000"],["2.65200000","153.00000000"],["2.'
    b'65500000","91.00000000"],["2.65600000","138.00000000"],["2.65900000","934.00000000"],["2'
    b'.66000000","126.10000000"],["2.66400000","118.70000000"],["2.66800000","107.60000000"],['
    b'"2.67200000","105.90000000"],["2.67300000","346.00000000"],["2.67600000","133.10000000"]'
    b',["2.67700000","40.30000000"],["2.67800000","33.70000000"],["2.68400000","1070.70000000"'
    b'],["2.69200000","966.70000000"],["2.69900000","1039.50000000"],["2.70500000","1097.00000'
    b'000"],["2.71200000","1082.50000000"],["2.71900000","959.70000000"],["2.72600000","717.10'
    b'000000"],["2.72800000","25.70000000"],["2.73100000","875.20000000"],["2.73800000","848.8'
    b'0000000"],["2.74700000","1625.30000000"],["2.75700000","1306.10000000"],["2.76300000","1'
    b'1.10000000"],["2.76700000","1218.10000000"],["2.78000000","150.00000000"],["2.83400000",'
    b'"16.30000000"],["2.85400000","47.20000000"],["2.85700000","76.70000000"],["2.86400000","'
    b'85.50000000"],["2.87600000","60.40000000"],["2.87700000","61.00000000"],["2.88300000","2'
    b'9.30000000"],["2.88600000","302.90000000"],["2.88700000","53.80000000"],["2.88800000","5'
    b'1.70000000"],["2.89100000","210.80000000"],["2.89300000","103.20000000"],["2.89800000","'
    b'100.00000000"],["2.91300000","37.20000000"],["2.93900000","51.00000000"],["2.94500000","'
    b'35.90000000"],["2.97400000","90.90000000"],["2.97900000","30.80000000"],["2.98300000","2'
    b'0.80000000"],["3.01000000","5239.30000000"],["3.03200000","10.10000000"],["3.04900000","'
    b'20.30000000"],["3.06100000","14.00000000"],["3.11000000","7.20000000"],["3.12400000","38'
    b'.70000000"],["3.15100000","34.60000000"],["3.20000000","100.10000000"],["3.25000000","10'
    b'6.40000000"],["3.47000000","339.00000000"],["3.67000000","202.80000000"],["3.75000000","'
    b'15.00000000"]]}'
)
CRV_SNAPSHOT_RECV = 1633998275160806000

TARDIS_TRADES_HEADER = b"exchange,symbol,timestamp,local_timestamp,id,side,price,amount"
TARDIS_TRADES = [
    b"binance-futures,BTCUSDT,1582329602111000,1582329602418379,42377944,buy,9682,0.132",
    b"binance-futures,BTCUSDT,1582329602116000,1582329602418420,42377945,buy,9682,0.412",
]
TARDIS_QUOTES_HEADER = (b"exchange,symbol,timestamp,local_timestamp,ask_amount,ask_price,"
                        b"bid_price,bid_amount")
TARDIS_QUOTES = [b"binance-futures,BTCUSDT,1582329601096000,1582329603502092,0.84,9682,9681.92,0.67"]
TARDIS_BOOK5_HEADER = (
    b"exchange,symbol,timestamp,local_timestamp,asks[0].price,asks[0].amount,bids[0].price,"
    b"bids[0].amount,asks[1].price,asks[1].amount,bids[1].price,bids[1].amount,asks[2].price,"
    b"asks[2].amount,bids[2].price,bids[2].amount,asks[3].price,asks[3].amount,bids[3].price,"
    b"bids[3].amount,asks[4].price,asks[4].amount,bids[4].price,bids[4].amount")
TARDIS_BOOK5 = [
    b"binance-futures,BTCUSDT,1598918403696000,1598918403810979,11657.08,1.714,11657.07,10.896,"
    b"11657.54,5.4,11656.97,0.2,11657.56,0.238,11655.78,0.2,11657.61,0.077,11655.77,0.98,"
    b"11657.92,0.918,11655.68,0.111"]
# binance.vision spot klines file ADABTC-1m-2021-11-27.csv: no header line.
VISION_KLINES = [
    b"1637971200000,0.00002853,0.00002854,0.00002851,0.00002854,36304.20000000,1637971259999,"
    b"1.03547608,79,19523.00000000,0.55694227,0",
    b"1637971260000,0.00002854,0.00002860,0.00002854,0.00002859,89196.60000000,1637971319999,"
    b"2.54751330,98,59004.20000000,1.68545512,0",
]
REDDIT_COMMENTS_HEADER = (b"post_id,subreddit,comment_id,author,created_utc,body,score,"
                          b"is_submitter,distinguished,parent_id,depth")
REDDIT_COMMENTS = [
    b'1olg7rm,bitcoin,nmhxw8t,No-Impact-4772,2025-11-01T07:58:42,"""Is he still alive?""\n\n'
    b'""Alive but dead on the inside""",6,False,,t3_1olg7rm,0',
    b'1ol729g,cryptocurrency,nmg1xhq,MeowMeowbiggalo,2025-10-31T23:14:37,"Well, duh",4,False,,'
    b't3_1ol729g,0',
]


def raw(lines, source="binance.spot", stream=None, kind="message", conn="c1", seq0=0):
    """A raw table from (recv_ns, payload) pairs; the stream is read from the envelope."""
    streams = [stream or p.split(b'"')[3].decode() for _, p in lines]
    return events_table(source=[source] * len(lines), stream=streams,
                        recv_ts_ns=[r for r, _ in lines], payload=[p for _, p in lines],
                        kind=kind, conn=conn, seq=list(range(seq0, seq0 + len(lines))))


def csv_raw(source, stream, header, records, conn="file:abc", t0=1_000):
    """A CSV import as the log holds it: connect marker (header) then one event per record."""
    n = len(records)
    return events_table(source=[source] * (n + 1), stream=[stream] * (n + 1),
                        recv_ts_ns=[t0] + [t0 + i for i in range(n)],
                        payload=[header, *records], kind=["connect"] + ["message"] * n,
                        conn=conn, seq=list(range(n + 1)))


def bare(line):
    """The same event without its combined-stream envelope (the `data` object's bytes)."""
    recv, p = line
    return recv, p[p.index(b'"data":') + 7:-1]


def test_spot_depth_levels_exact():
    d = parse_events(raw([SPOT_DEPTH]), ["depth"]).tables["depth"]
    assert d["level"].to_list() == [0, 1, 2, 3, 4]
    assert d["side"].to_list() == [0, 1, 1, 1, 1]
    assert d["price"].to_list() == [55653.87, 61838.04, 61844.30, 61862.50, 61862.51]
    assert d["qty"].to_list() == [0.0, 0.32332, 0.40163, 0.05019, 0.0]
    row = d.row(0, named=True)
    assert row["first_id"] == 50093239203 and row["last_id"] == 50093239207
    assert row["prev_id"] is None and row["transact_ts_ns"] is None
    assert row["event_ts_ns"] == 1723161255308 * 1_000_000
    assert (row["symbol"], row["market"], row["is_snapshot"]) == ("BTCUSDT", "spot", False)
    assert row["recv_ts_ns"] == SPOT_DEPTH[0] and row["stream"] == "btcusdt@depth@100ms"


def test_futures_depth_prev_id_transact_time_and_coinm_contracts():
    u = parse_events(raw([USDM_DEPTH], source="binance.usdm"), ["depth"]).tables["depth"]
    assert u.select("first_id", "last_id", "prev_id", "side", "price", "qty").row(0) == (
        5123134944963, 5123134944963, 5123134735497, 0, 5000.0, 2.321)
    assert u["transact_ts_ns"][0] == 1723161600319 * 1_000_000
    assert u["market"][0] == "usdm"
    c = parse_events(raw([COINM_DEPTH], source="binance.coinm"), ["depth"]).tables["depth"]
    assert c.select("symbol", "market", "prev_id", "price", "qty").row(0) == (
        "EOSUSD_PERP", "coinm", 167006173747, 3.468, 0.0)


def test_envelope_and_bare_payloads_give_identical_rows():
    cases = [("binance.spot", [SPOT_DEPTH, SPOT_TICKER, SPOT_TRADE, SPOT_TRADE_2023]),
             ("binance.usdm", [USDM_DEPTH, USDM_TICKER, USDM_TRADE]),
             ("binance.coinm", [COINM_DEPTH, COINM_AGG]), ("binance.spot", [SPOT_KLINE])]
    for source, lines in cases:
        streams = [p.split(b'"')[3].decode() for _, p in lines]
        a = parse_events(raw(lines, source))
        b = parse_events(events_table(
            source=[source] * len(lines), stream=streams, recv_ts_ns=[r for r, _ in lines],
            payload=[bare(x)[1] for x in lines], conn="c1", seq=list(range(len(lines)))))
        assert sum(t.height for t in a.tables.values()) >= len(lines)
        for name in a.tables:
            assert a.tables[name].equals(b.tables[name]), (source, name)


def test_decimal_strings_parse_to_identical_floats():
    recv, p = SPOT_TICKER
    short = p.replace(b"61837.63000000", b"61837.63").replace(b"3.78826000", b"3.78826")
    assert short != p
    a = parse_events(raw([(recv, p)]), ["bbo"]).tables["bbo"]
    b = parse_events(raw([(recv, short)]), ["bbo"]).tables["bbo"]
    assert a.equals(b)
    assert a["bid_px"][0] == 61837.63 and a["bid_qty"][0] == 3.78826
    t = parse_events(raw([SPOT_TRADE]), ["trades"]).tables["trades"]
    assert t["price"][0] == a["bid_px"][0]  # same price, written "61837.63000000" in both


def test_snapshot_rows_from_rest_body():
    snap = raw([(CRV_SNAPSHOT_RECV, CRV_SNAPSHOT)], source="binance.us", stream="crvusdt@snapshot",
               kind="snapshot")
    d = parse_events(snap, ["depth"]).tables["depth"]
    assert d.height == 74 + 61
    assert d["is_snapshot"].all()
    assert set(d["first_id"]) == {1938834} and set(d["last_id"]) == {1938834}
    assert d["prev_id"].is_null().all() and d["event_ts_ns"].is_null().all()
    assert (d["side"] == 0).sum() == 74 and d["side"][:74].to_list() == [0] * 74
    assert d["level"].to_list() == list(range(135))
    assert d.select("symbol", "market").unique().rows() == [("CRVUSDT", "us")]
    assert d.select("price", "qty").row(0) == (2.64, 1892.1)
    assert d.select("price", "qty").row(134) == (3.75, 15.0)
    # the diff that straddles it keeps its own ids; both come out in log order
    both = parse_events(pl.concat([pl.from_arrow(raw([US_DEPTH], source="binance.us")),
                                   pl.from_arrow(snap)]), ["depth"]).tables["depth"]
    assert both["is_snapshot"].to_list() == [False] * 2 + [True] * 135


def test_message_without_levels_keeps_one_row():
    # Derived from USDM_DEPTH: its one bid removed (Binance sends such frames on futures).
    recv, p = USDM_DEPTH
    empty = p.replace(b'"b":[["5000.00","2.321"]]', b'"b":[]')
    d = parse_events(raw([(recv, empty), USDM_TICKER], source="binance.usdm"), ["depth"])
    rows = d.tables["depth"]
    assert rows.height == 1
    r = rows.row(0, named=True)
    assert (r["side"], r["level"]) == (-1, 0)
    assert math.isnan(r["price"]) and math.isnan(r["qty"])
    assert (r["first_id"], r["last_id"], r["prev_id"]) == (5123134944963, 5123134944963,
                                                           5123134735497)


def test_trades_trade_and_aggtrade():
    t = parse_events(raw([SPOT_TRADE, SPOT_TRADE_2023]), ["trades"]).tables["trades"]
    # sorted in log order: the 2023 trade first
    assert t["trade_id"].to_list() == [3071245454, 3735683259]
    assert t["kind"].to_list() == ["trade", "trade"]
    assert t["is_buyer_maker"].to_list() == [True, True]
    assert t.select("price", "qty", "trade_ts_ns", "event_ts_ns").row(1) == (
        61837.63, 0.02, 1723161255342 * 1_000_000, 1723161255343 * 1_000_000)
    assert t["first_trade_id"].is_null().all()
    a = parse_events(raw([COINM_AGG], source="binance.coinm"), ["trades"]).tables["trades"]
    assert a.select("kind", "trade_id", "first_trade_id", "last_trade_id", "price", "qty",
                    "is_buyer_maker", "symbol").row(0) == (
        "aggTrade", 11285749, 16034449, 16034449, 427.91, 3.0, True, "BCHUSD_PERP")
    u = parse_events(raw([USDM_TRADE], source="binance.usdm"), ["trades"]).tables["trades"]
    assert u.select("trade_id", "price", "qty", "is_buyer_maker").row(0) == (
        5266583935, 61800.3, 0.006, False)


def test_bbo_spot_without_event_time_and_futures_with_it():
    b = parse_events(raw([SPOT_TICKER]), ["bbo"]).tables["bbo"]
    assert b.select("update_id", "bid_px", "bid_qty", "ask_px", "ask_qty").row(0) == (
        50093239212, 61837.63, 3.78826, 61837.64, 1.54698)
    assert b["event_ts_ns"][0] is None and b["transact_ts_ns"][0] is None
    f = parse_events(raw([USDM_TICKER], source="binance.usdm"), ["bbo"]).tables["bbo"]
    assert f.select("update_id", "ask_qty", "event_ts_ns").row(0) == (
        5123107839020, 2.51, 1723161256313 * 1_000_000)


def test_kline_event():
    k = parse_events(raw([SPOT_KLINE]), ["klines"]).tables["klines"]
    assert k.select("symbol", "interval", "open_ts_ns", "open", "close", "volume", "n_trades",
                    "is_closed").row(0) == (
        "NKNUSDT", "1m", 1633998480000 * 1_000_000, 0.3527, 0.3528, 25877.0, 30, False)


def test_non_events_are_skipped_and_counted():
    reply = (1723161254036059769, b'{"result":null,"id":1}')
    p = parse_events(raw([SPOT_DEPTH, reply], stream="btcusdt@depth@100ms"), ["depth"])
    assert p.tables["depth"].height == 5 and p.skipped["depth"] == 1


def test_rows_sorted_in_log_order_across_streams():
    lines = [SPOT_TRADE, SPOT_DEPTH, SPOT_TICKER]
    t = raw(lines)
    p = parse_events(t.take([2, 0, 1]))  # input order must not matter
    d = p.tables["depth"]
    assert d["recv_ts_ns"].is_sorted() and d["level"].to_list() == [0, 1, 2, 3, 4]
    assert p.tables["trades"]["recv_ts_ns"].to_list() == [SPOT_TRADE[0]]


def test_csv_columns_come_from_the_connect_marker_header():
    t = parse_events(csv_raw("tardis.binance-futures", "btcusdt.trades", TARDIS_TRADES_HEADER,
                             TARDIS_TRADES), ["trades"]).tables["trades"]
    assert t.select("trade_id", "price", "qty", "is_buyer_maker", "event_ts_ns", "symbol",
                    "market").rows() == [
        (42377944, 9682.0, 0.132, False, 1582329602111000000, "BTCUSDT", "usdm"),
        (42377945, 9682.0, 0.412, False, 1582329602116000000, "BTCUSDT", "usdm")]
    # the same records under a header naming the columns differently read differently:
    # the header, not a fixed position, decides
    swapped = TARDIS_TRADES_HEADER.replace(b"price,amount", b"amount,price")
    s = parse_events(csv_raw("tardis.binance-futures", "btcusdt.trades", swapped,
                             TARDIS_TRADES), ["trades"]).tables["trades"]
    assert s["price"].to_list() == [0.132, 0.412] and s["qty"].to_list() == [9682.0, 9682.0]


def test_csv_header_given_from_outside_the_batch():
    records = csv_raw("tardis.binance-futures", "btcusdt.quotes", TARDIS_QUOTES_HEADER,
                      TARDIS_QUOTES)
    only_records = records.slice(1)
    with pytest.raises(MissingHeaderError, match="btcusdt.quotes conn 'file:abc'"):
        parse_events(only_records, ["bbo"])
    key = ("tardis.binance-futures", "btcusdt.quotes", "file:abc")
    q = parse_events(only_records, ["bbo"], headers={key: TARDIS_QUOTES_HEADER.decode()})
    assert q.tables["bbo"].select("bid_px", "bid_qty", "ask_px", "ask_qty", "update_id").row(0) == (
        9681.92, 0.67, 9682.0, 0.84, None)


def test_tardis_wide_book_snapshot():
    d = parse_events(csv_raw("tardis.binance-futures", "btcusdt.book_snapshot_5",
                             TARDIS_BOOK5_HEADER, TARDIS_BOOK5), ["depth"]).tables["depth"]
    assert d["side"].to_list() == [0] * 5 + [1] * 5
    assert d["level"].to_list() == list(range(10))
    assert d["price"].to_list()[:2] == [11657.07, 11656.97]
    assert d["price"].to_list()[5:7] == [11657.08, 11657.54]
    assert d["is_snapshot"].all() and d["last_id"].is_null().all()


def test_headerless_vision_file_uses_the_default_columns():
    k = parse_events(csv_raw("binance.vision.spot", "adabtc.klines_1m", b"", VISION_KLINES),
                     ["klines"]).tables["klines"]
    assert k.select("symbol", "interval", "open_ts_ns", "close_ts_ns", "open", "volume",
                    "n_trades", "is_closed").row(1) == (
        "ADABTC", "1m", 1637971260000 * 1_000_000, 1637971319999 * 1_000_000, 0.00002854,
        89196.6, 98, True)


def test_reddit_csv_comments_with_quoted_newlines():
    p = parse_events(csv_raw("reddit", "r/bitcoin/comments", REDDIT_COMMENTS_HEADER,
                             REDDIT_COMMENTS), ["posts"]).tables["posts"]
    first = p.row(0, named=True)
    assert first["body"] == '"Is he still alive?"\n\n"Alive but dead on the inside"'
    assert (first["id"], first["kind"], first["parent_id"], first["post_id"]) == (
        "nmhxw8t", "comment", "1olg7rm", "1olg7rm")
    assert (first["author"], first["score"], first["subreddit"]) == ("No-Impact-4772", 6, "bitcoin")
    # ISO text without an event time on the raw row is read as UTC
    assert first["created_ts_ns"] == 1761983922 * 10**9
    assert p["body"][1] == "Well, duh"


def test_reddit_json_submission():
    # PRAW-style JSON of submission 1oiyq9d (fields as in the MIT export's record)
    payload = (b'{"id": "1oiyq9d", "title": "Bitcoin Holds $113K as Liquidity Thins, Traders '
               b'Turn Defensive Before Fed Week", "selftext": "", "score": 10, '
               b'"created_utc": 1761725410.0, "author": "DryMyBottom", '
               b'"subreddit": "CryptoCurrency"}')
    t = events_table(source=["reddit"], stream=["r/cryptocurrency/submissions"],
                     recv_ts_ns=[1761725500 * 10**9], payload=[payload], seq=[0], conn="c")
    p = parse_events(t, ["posts"]).tables["posts"].row(0, named=True)
    assert (p["id"], p["kind"], p["post_id"], p["parent_id"], p["score"]) == (
        "1oiyq9d", "submission", "1oiyq9d", None, 10)
    assert p["created_ts_ns"] == 1761725410 * 10**9 and p["subreddit"] == "CryptoCurrency"


def test_unknown_table_is_a_clear_error():
    with pytest.raises(ValueError, match=r"normalize.tables: unknown table\(s\) \['book'\]"):
        parse_events(raw([SPOT_DEPTH]), ["book"])


def test_scanner_falls_back_to_polars_on_payloads_it_does_not_read():
    # Derived from SPOT_TRADE: the price written with an exponent (valid JSON, odd decimal).
    recv, p = SPOT_TRADE
    odd = (recv + 1, p.replace(b'"p":"61837.63000000"', b'"p":"6.183763e4"'))
    lines = [SPOT_TRADE, odd]
    fast = parse_events(raw(lines), ["trades"]).tables["trades"]
    ref = parse_events(raw(lines), ["trades"], scan=False).tables["trades"]
    assert fast.equals(ref)
    assert fast["price"].to_list() == [61837.63, 61837.63]


def test_invalid_json_names_the_stream():
    recv, p = SPOT_TRADE
    with pytest.raises(ValueError, match=r"normalize trades from binance.spot:btcusdt@trade: "):
        parse_events(raw([(recv, p[:-5])], stream="btcusdt@trade"), ["trades"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10**7), st.integers(0, 10**8), st.integers(0, 8),
                          st.integers(0, 6)), min_size=1, max_size=20))
def test_scanned_decimals_equal_correctly_rounded_floats(values):
    """Decimal strings as Binance writes them (with trailing zeros) -> Python's float().

    At most 15 significant digits, so the scanner (not its fallback) reads every batch."""
    texts = []
    for whole, frac, digits, zeros in values:
        f = str(frac % 10**digits).rjust(digits, "0") if digits else ""
        texts.append(f"{whole}.{f}{'0' * zeros}" if digits or zeros else str(whole))
    payloads = [(1 + i, f'{{"u":{i},"s":"BTCUSDT","b":"{t}","B":"{t}","a":"{t}","A":"1"}}'
                 .encode()) for i, t in enumerate(texts)]
    b = parse_events(raw(payloads, stream="btcusdt@bookTicker"), ["bbo"]).tables["bbo"]
    assert b["bid_px"].to_list() == [float(t) for t in texts]
    ref = parse_events(raw(payloads, stream="btcusdt@bookTicker"), ["bbo"], scan=False)
    assert b.equals(ref.tables["bbo"])
