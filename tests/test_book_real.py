"""The book on real recordings (tests/data): bookTicker agreement, no-snapshot files, the clock path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recorder.importers import import_files
from recorder.normalize.read import read_table
from recorder.reader import LogReader
from replay.book import BookStage, book_steps
from replay.check_book import check_book
from replay.clock import Clock, ClockConfig

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def spot_log(tmp_path_factory):
    root = tmp_path_factory.mktemp("spot_log")
    import_files(root, "hftbacktest", [DATA / "binance" / "spot_btcusdt_20240808.gz"], progress=False)
    return root


def test_spot_btcusdt_matches_every_comparable_bookticker(spot_log):
    r = check_book(spot_log)
    # 3,451 depth messages; 564 bookTicker events carry the final id of one of them
    assert r["compared"] == 564 and r["match_pct"] == 100.0
    assert (r["crossed"], r["gaps"], r["mismatches"]) == (0, 0, [])
    (book,) = r["books"]
    assert (book["symbol"], book["snapshots"], book["price_decimals"]) == ("BTCUSDT", 1, 2)


def test_window_and_symbol_filters(spot_log):
    assert check_book(spot_log, symbols=["ETHUSDT"])["books"] == []
    part = check_book(spot_log, window=(None, 1_723_161_400_000_000_000))
    assert 0 < part["compared"] < 564 and part["match_pct"] == 100.0


@pytest.mark.parametrize(("fmt", "files", "min_compared"), [
    ("hftbacktest", ["binance/usdm_btcusdt_20240808_head3000.gz"], 10),
    ("cryptofeed", ["cryptofeed/BINANCE.http.0.0.gz", "cryptofeed/BINANCE.ws.1.0.gz"], 20),
    ("cryptofeed", ["cryptofeed/BINANCE_FUTURES.http.0.0.gz",
                    "cryptofeed/BINANCE_FUTURES.ws.1.0.head400.gz"], 10),
    ("cryptofeed", ["cryptofeed/BINANCE_US.http.0.0.gz", "cryptofeed/BINANCE_US.ws.1.0.gz"], 40),
])
def test_other_recordings_agree_with_bookticker(tmp_path, data_dir, fmt, files, min_compared):
    import_files(tmp_path, fmt, [data_dir / f for f in files], progress=False)
    r = check_book(tmp_path)
    assert r["compared"] >= min_compared and r["match_pct"] == 100.0
    assert r["gaps"] == 0 and r["crossed"] == 0


def test_recording_without_snapshot_reports_nothing_compared(tmp_path, data_dir):
    import_files(tmp_path, "hftbacktest", [data_dir / "binance/spot_btcusdt_20230405_head2000.dat.gz"],
                 progress=False)
    r = check_book(tmp_path)
    assert r["compared"] == 0 and r["match_pct"] is None
    assert any("no snapshot" in n for n in r["notes"])
    assert r["books"][0]["messages"] > 400


def test_clock_chunks_give_the_same_steps_as_one_call(spot_log):
    reader = LogReader(spot_log)
    stage = BookStage("btcusdt", "spot", 20)
    segs = reader.segments(streams=list(stage.streams))
    start = min(s.min_recv_ns for s in segs)
    end = max(s.max_recv_ns for s in segs) + 1
    cfg = ClockConfig(start_ns=start, end_ns=end, step_ns=1_000_000_000, chunk_steps=37)
    parts = [stage.process(c) for c in Clock(reader, cfg, streams=list(stage.streams)).chunks()]
    via_clock = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    depth = read_table(spot_log, "depth").collect()
    whole = book_steps(depth, "BTCUSDT", "spot", start, cfg.step_ns, cfg.n_steps, 20)
    for k, v in whole.items():
        np.testing.assert_array_equal(via_clock[k], v, err_msg=k)
    valid = whole["valid"]
    assert valid[2:].all()  # the snapshot is logged ~0.3 s after the first diff
    assert (whole["spread"][valid] > 0).all() and (whole["bid_depth"][valid] > 0).all()
    assert np.isfinite(whole["ofi"]).all() and whole["n_messages"].sum() == stage.counters()["messages"]
