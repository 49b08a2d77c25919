"""Reports of price files and run directories: JSON/Markdown/HTML contents, time formats,
column mapping, graceful handling of missing tables, one-line errors on bad input."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import orjson
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import stats

from calibrate.facts import MarketSeries
from calibrate.report import PriceFileError, RunDirError, report_prices, report_run
from calibrate.report.bars import resample
from calibrate.report.prices import load_prices

DAILY = Path(__file__).parent / "data" / "prices" / "btc_daily_yf_20140917_20160129.csv"
DAY_NS = 86_400_000_000_000


def _json(html: Path) -> dict:
    return orjson.loads(html.with_suffix(".json").read_bytes())


def _daily() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    df = pl.read_csv(DAILY)
    t = df["date"].str.to_datetime("%Y-%m-%d", time_unit="ns").dt.epoch("ns").to_numpy()
    return t, df["price_close"].to_numpy(), df["volume"].to_numpy().astype(np.float64)


def test_price_report_numbers_match_the_file(tmp_path):
    html = report_prices(DAILY, out=tmp_path)
    doc = _json(html)
    _, close, _ = _daily()
    r = close[1:] / close[:-1] - 1
    m = doc["moments"]
    assert m["n"] == 499
    assert m["mean"] == pytest.approx(r.mean()) and m["std"] == pytest.approx(r.std(ddof=1))
    assert m["skew"] == pytest.approx(stats.skew(r))
    assert m["excess_kurtosis"] == pytest.approx(stats.kurtosis(r))
    assert (m["min"], m["max"]) == (pytest.approx(r.min()), pytest.approx(r.max()))
    facts = {f["name"]: f for f in doc["facts"]}
    assert set(facts["hill_tail_index"]) >= {"name", "value", "band", "pass"}
    assert facts["hill_tail_index"]["band"] == [2.5, 4.5]
    assert facts["excess_kurtosis"]["pass"] is True           # BTC daily returns are fat-tailed
    assert facts["intraday_seasonality"]["pass"] is None
    assert "not intraday" in facts["intraday_seasonality"]["reason"]
    assert facts["volume_volatility_correlation"]["value"] is not None
    assert doc["source"]["columns"] == {"time": "date", "price": "price_close", "volume": "volume"}
    assert doc["source"]["series"]["real"]["start"] == "2014-09-17T00:00:00Z"
    assert "simulated" not in doc and "comparison" not in doc
    md = html.with_suffix(".md").read_text()
    assert "| hill_tail_index | [2.5, 4.5] |" in md and "| n | 499 |" in md
    page = html.read_text()
    # prices, returns, tails, acf; 499 returns give one horizon of >= 250 blocks: no kurtosis plot
    assert page.count('class="plotly-graph-div"') == 4 and "fig-kurtosis" not in page
    assert "fewer than 2 horizons" in facts["aggregational_gaussianity"]["reason"]
    assert not re.search(r"<script[^>]*\bsrc=", page)          # plotly.js is inline, nothing fetched
    assert page.count("<script") >= 5 and len(page) > 3_000_000


def test_report_is_byte_identical_on_rerun(tmp_path):
    a = report_prices(DAILY, out=tmp_path / "a")
    b = report_prices(DAILY, out=tmp_path / "b" / "x.html")
    assert b.name == "x.html" and b.with_suffix(".json").is_file()
    for ext in (".html", ".json", ".md"):
        assert a.with_suffix(ext).read_bytes() == b.with_suffix(ext).read_bytes()


@pytest.mark.parametrize("fmt", ["s", "ms", "us", "ns", "iso_z", "iso_offset", "parquet_datetime",
                                 "parquet_date", "float_s"])
def test_time_formats_are_detected(tmp_path, fmt):
    t, close, vol = _daily()
    df = pl.DataFrame({"close": close, "volume": vol})
    if fmt in ("s", "ms", "us", "ns"):
        div = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}[fmt]
        df = df.with_columns(pl.Series("timestamp", t // div))
    elif fmt == "float_s":
        df = df.with_columns(pl.Series("timestamp", t / 1e9 + 0.25))
    elif fmt == "iso_z":
        df = df.with_columns(pl.Series("time", [str(np.datetime64(int(x), "ns"))[:19] + "Z" for x in t]))
    elif fmt == "iso_offset":   # local midnight at +02:00 is 22:00 UTC the day before
        df = df.with_columns(pl.Series("time", [str(np.datetime64(int(x), "ns"))[:19] + "+02:00"
                                          for x in t]))
    elif fmt == "parquet_datetime":
        ts = pl.from_epoch(pl.Series(t), time_unit="ns").dt.cast_time_unit("us")
        df = df.with_columns(ts.dt.replace_time_zone("UTC").alias("ts"))
    else:
        df = df.with_columns(pl.Series("date", t).cast(pl.Datetime("ns")).cast(pl.Date))
    path = tmp_path / ("p.parquet" if fmt.startswith("parquet") else "p.csv")
    if path.suffix == ".parquet":
        df.write_parquet(path)
    else:
        df.write_csv(path)
    ps = load_prices(path)
    shift = {"float_s": 250_000_000, "iso_offset": -7_200_000_000_000}.get(fmt, 0)
    expected = t + shift
    # float seconds carry ~0.2 µs of float64 rounding at today's epochs
    np.testing.assert_allclose(ps.t_ns, expected, rtol=0, atol=1_000 if fmt == "float_s" else 0)
    np.testing.assert_array_equal(ps.price, close)


def test_named_columns_unsorted_rows_and_missing_prices(tmp_path):
    t, close, _ = _daily()
    close = close.copy()
    close[5] = np.nan
    order = np.random.default_rng(0).permutation(len(t))
    pl.DataFrame({"when": t[order] // 10**6, "px": close[order], "other": close[order]}).write_csv(
        tmp_path / "x.csv")
    ps = load_prices(tmp_path / "x.csv", time_col="when", price_col="px")
    assert ps.dropped == 1 and np.all(np.diff(ps.t_ns) > 0)
    np.testing.assert_array_equal(ps.price, np.delete(close, 5))


@pytest.mark.parametrize("case, message", [
    ("missing", r"nope.csv: no such file"),
    ("no_price", r"x.csv: no price column found \(columns: date, foo\); name one with --price-col"),
    ("named", r"x.csv: column 'cls' not found"),
    ("text_price", r"x.csv: column 'close': prices are not numbers"),
    ("negative", r"x.csv: column 'close': 1 non-positive prices \(first at data row 2: -1.0\)"),
    ("bad_time", r"x.csv: column 'date': cannot parse time 'yesterday' \(data row 2\)"),
    ("not_table", r"x.json: expected a .csv or .parquet file"),
])
def test_bad_price_files_give_one_line_errors(tmp_path, case, message):
    p = tmp_path / "x.csv"
    rows = {"no_price": "date,foo\n2020-01-01,1\n",
            "named": "date,close\n2020-01-01,1\n",
            "text_price": "date,close\n2020-01-01,abc\n2020-01-02,def\n",
            "negative": "date,close\n2020-01-01,1\n2020-01-02,-1\n",
            "bad_time": "date,close\n2020-01-01,1\nyesterday,2\n"}
    kwargs = {}
    if case == "missing":
        p = tmp_path / "nope.csv"
    elif case == "not_table":
        p = tmp_path / "x.json"
        p.write_text("{}")
    else:
        p.write_text(rows[case])
        kwargs = {"price_col": "cls"} if case == "named" else {}
    with pytest.raises(PriceFileError, match=message) as e:
        report_prices(p, out=tmp_path / "out", **kwargs)
    assert "\n" not in str(e.value) and str(p) in str(e.value)


def _garch(n: int, seed: int) -> np.ndarray:
    z = np.random.default_rng(np.random.SeedSequence(seed)).standard_normal(n)
    r, s2 = np.empty(n), 1.0
    for i in range(n):
        r[i] = math.sqrt(s2) * z[i]
        s2 = 0.05 + 0.15 * r[i] ** 2 + 0.8 * s2
    return r


@pytest.fixture
def run_dir(tmp_path) -> Path:
    """A run directory laid out as replay writes it (step, t_ns, stage columns), on the daily
    sample; a seeded GARCH market as the simulation; sentiment and regime timelines."""
    t, close, vol = _daily()
    n = len(t)
    g = np.random.default_rng(np.random.SeedSequence(1))
    step = np.arange(n, dtype=np.int64)
    base = {"step": step, "t_ns": t}
    valid = np.ones(n, bool)
    valid[:3] = False
    sv = vol * g.uniform(-1, 1, n)
    pq.write_table(pa.table(base | {"close": close, "last_price": close, "volume": vol,
                                    "signed_volume": sv}), tmp_path / "tape.parquet")
    pq.write_table(pa.table(base | {"valid": valid, "mid": close, "spread": close * 2e-4,
                                    "bid_depth": g.lognormal(0, 1, n), "ask_depth": g.lognormal(0, 1, n)}),
                   tmp_path / "book.parquet")
    sim_mid = close[0] * np.exp(np.cumsum(0.03 * _garch(n, 2)))
    pq.write_table(pa.table(base | {"mid": sim_mid, "spread": sim_mid * 3e-4, "volume": vol,
                                    "signed_volume": -sv}), tmp_path / "sim.parquet")
    pq.write_table(pa.table(base | {"score": np.sin(step / 20.0), "epistemic": np.abs(np.cos(step / 9.0))}),
                   tmp_path / "sentiment.parquet")
    pq.write_table(pa.table(base | {"volatility": np.cos(step / 30.0),
                                    "volatility_label": (step // 100 % 3).astype(np.int8)}),
                   tmp_path / "regimes.parquet")
    (tmp_path / "manifest.json").write_bytes(orjson.dumps({"seed": 7, "code_version": "abc"}))
    return tmp_path


def test_run_report_real_vs_simulated(run_dir):
    html = report_run(run_dir)
    assert html == run_dir / "report" / "report.html"
    doc = _json(html)
    assert doc["source"]["columns"] == {
        "real.price": "book:mid", "real.volume": "tape:volume", "real.signed_volume": "tape:signed_volume",
        "real.spread": "book:spread", "real.depth": "book:bid_depth+ask_depth",
        "sim.price": "sim:mid", "sim.volume": "sim:volume", "sim.signed_volume": "sim:signed_volume",
        "sim.spread": "sim:spread"}
    assert doc["source"]["seed"] == 7
    # book rows flagged invalid are missing: 3 prices gone -> 3 fewer returns than rows - 1
    assert doc["moments"]["n"] == 499 - 3
    assert doc["simulated"]["moments"]["n"] == 499
    comp = {f["name"]: f for f in doc["comparison"]}
    assert comp["return_ks"]["pass"] is False and comp["return_ks"]["detail"]["statistic"] > 0.1
    assert comp["depth_ks"]["reason"] == "spread/depth missing in the simulation"
    real = {f["name"]: f for f in doc["facts"]}
    sim = {f["name"]: f for f in doc["simulated"]["facts"]}
    assert real["spread_bps"]["value"] == pytest.approx(2.0)
    assert sim["spread_bps"]["value"] == pytest.approx(3.0)
    assert sim["volatility_clustering"]["pass"] is True            # GARCH
    assert doc["moment_vector"]["names"][0] == "mean" and len(doc["moment_vector"]["sim"]) == 14
    page = html.read_text()
    for fig in ("prices", "returns", "qq", "tails", "acf", "liquidity", "orderflow", "sentiment",
                "regimes"):
        assert f'<div id="fig-{fig}" class="plotly-graph-div' in page
    md = html.with_suffix(".md").read_text()
    assert "| fact | band | real | pass | simulated | pass | note |" in md
    assert "## Simulated vs real" in md


def test_run_report_tolerates_missing_tables(run_dir, tmp_path):
    for name in ("sim", "book", "sentiment", "regimes"):
        (run_dir / f"{name}.parquet").unlink()
    (run_dir / "manifest.json").unlink()
    doc = _json(report_run(run_dir, out=tmp_path / "r"))
    assert doc["source"]["columns"]["real.price"] == "tape:last_price"
    assert "simulated" not in doc and doc["moments"]["n"] == 499
    facts = {f["name"]: f for f in doc["facts"]}
    assert facts["spread_bps"]["reason"] == "no spread series"
    assert "fig-sentiment" not in (tmp_path / "r" / "report.html").read_text()


def test_run_report_column_overrides_and_bar(run_dir, tmp_path):
    html = report_run(run_dir, out=tmp_path / "r", bar="7d",
                      columns={"real": {"price": ["tape:close"]}, "sim": {"price": "nope:mid"}},
                      bands={"excess_kurtosis": [0, 1]})
    doc = _json(html)
    assert doc["source"]["columns"]["real.price"] == "tape:close"
    assert "simulated" not in doc                              # sim price candidate absent
    assert doc["source"]["series"]["real"]["rows"] == 72       # 500 days in 7-day bars
    assert doc["facts"][0]["band"] == [0.0, 1.0]
    with pytest.raises(RunDirError, match=r"report.columns.real.prise: unknown role"):
        report_run(run_dir, columns={"real": {"prise": ["tape:close"]}})
    with pytest.raises(RunDirError, match=r"report.columns.sim.price: 'mid' is not table:column"):
        report_run(run_dir, columns={"sim": {"price": ["mid"]}})
    with pytest.raises(ValueError, match=r"report.bar='soon'"):
        report_run(run_dir, bar="soon")


def test_run_dir_without_prices_is_an_error(tmp_path):
    pq.write_table(pa.table({"step": np.arange(3), "t_ns": np.arange(3)}), tmp_path / "tape.parquet")
    with pytest.raises(RunDirError, match=r"no price column found \(tried book:mid"):
        report_run(tmp_path)
    with pytest.raises(RunDirError, match=r"not a run directory"):
        report_run(tmp_path / "absent")


def test_resample_keeps_last_price_and_sums_flows():
    t = np.arange(10, dtype=np.int64) * 1_000_000_000
    price = np.array([1, 2, np.nan, 4, 5, np.nan, np.nan, 8, 9, 10], float)
    s = MarketSeries(price, t_ns=t, volume=np.ones(10), signed_volume=np.arange(10.0),
                     spread=np.array([1, 1, 1, 3, np.nan, 5, 5, 5, 5, 5], float))
    b = resample(s, 3_000_000_000)
    np.testing.assert_array_equal(b.t_ns, [0, 3e9, 6e9, 9e9])
    np.testing.assert_array_equal(b.price, [2, 5, 9, 10])
    np.testing.assert_array_equal(b.volume, [3, 3, 3, 1])
    np.testing.assert_array_equal(b.signed_volume, [3, 12, 21, 9])
    np.testing.assert_array_equal(b.spread, [1, 4, 5, 5])


def test_trade_file_gives_order_signs(tmp_path):
    """Real Binance futures trades (Tardis sample): the side column becomes trade signs."""
    trades = Path(__file__).parent / "data" / "tardis" / \
        "tardis_binance-futures_BTCUSDT_trades_20200222_head500.csv.gz"
    doc = _json(report_prices(trades, out=tmp_path))
    assert doc["source"]["columns"] == {"time": "timestamp", "price": "price", "volume": "amount",
                                        "side": "side"}
    assert doc["source"]["series"]["real"]["start"] == "2020-02-22T00:00:02.111Z"
    facts = {f["name"]: f for f in doc["facts"]}
    assert facts["order_sign_memory"]["detail"]["n"] == 500
    assert 0.2 < facts["order_sign_memory"]["value"] < 0.9      # long memory of real order flow
    df = pl.read_csv(trades).with_columns(pl.col("side").str.replace("sell", "short"))
    df.write_csv(tmp_path / "bad.csv")
    with pytest.raises(PriceFileError, match=r"bad.csv: column 'side': side 'short' is not buy or sell"):
        load_prices(tmp_path / "bad.csv")
    flags = df.with_columns((pl.col("side") == "short").alias("is_buyer_maker")).drop("side")
    flags.write_parquet(tmp_path / "m.parquet")
    ps = load_prices(tmp_path / "m.parquet")
    assert ps.side_col == "is_buyer_maker"
    np.testing.assert_array_equal(ps.side, np.where(df["side"].to_numpy() == "short", -1.0, 1.0))
