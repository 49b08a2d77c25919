"""The dashboard: its readers, and the app itself in headless Chromium (Selenium, Debian's
chromium + chromium-driver) on a run made from the bundled samples."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import optuna
import polars as pl
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

from monitor.app import DashboardServer, build_app
from monitor.figures import REGIME_SHADES, REGIMES, timeline_figure
from monitor.hooks import LiveChunks
from monitor.settings import DashboardSettings
from monitor.sources import RunFiles, StudyReader
from recorder.status import write_status
from tests.harness.monitor_run import STAGES, config, demo_run

STREAM = {"source": "binance.spot", "stream": "btcusdt@depth@100ms", "received": 722, "written": 722,
          "rate_per_s": 9.8, "feed_lag_ms": 41.5, "gaps": 0, "last_gap": None, "reconnects": 1,
          "last_reconnect_ns": None, "errors": 0}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """runs/replay-demo (finished) from the bundled samples."""
    return demo_run(tmp_path_factory.mktemp("dash")).parent


def live_copy(run: Path, dest: Path, chunks: range, size: int = 50) -> None:
    """Write `run`'s stage tables as the replay hook's live chunk files (chunk indices `chunks`)."""
    live = LiveChunks(dest)
    tables = {s: pq.read_table(run / f"{s}.parquet") for s in STAGES}
    for i in chunks:
        for s in STAGES:
            live._count[s] = i
            live(s, tables[s].slice(i * size, size))


def test_live_chunks_read_back_as_the_final_tables(runs, tmp_path):
    run = runs / "replay-demo"
    growing = tmp_path / "replay-demo"          # same run id: the frames must match exactly
    live_copy(run, growing, range(0, 3))
    reader = RunFiles(tmp_path)
    part = reader.timeline("replay-demo")
    assert part.state == "running" and part.steps == 150
    live_copy(run, growing, range(3, 7))
    whole = reader.timeline("replay-demo")
    final = RunFiles(runs).timeline("replay-demo")
    assert whole.steps == final.steps == 347 and final.state == "finished"
    for name, f in final.tables.items():
        assert_frame_equal(whole.tables[name], f)
    thin = RunFiles(runs, max_points=100).timeline("replay-demo")
    assert thin.stride == 4 and thin.tables["bars"]["step"].to_list() == list(range(0, 347, 4))


def test_timeline_shades_exactly_the_low_and_high_regime_steps(runs):
    tl = RunFiles(runs).timeline("replay-demo")
    reg = tl.tables["regimes"]
    for regime in REGIMES:
        fig = timeline_figure(tl, regime)
        colour = {c: label for label, (_, c) in REGIME_SHADES.items()}
        shaded = {label: set() for label in REGIME_SHADES}
        ts = reg["ts"].to_list()
        for shape in fig.layout.shapes:
            assert (shape.xref, shape.yref) == ("x", "y domain")      # the mid panel, full height
            shaded[colour[shape.fillcolor]] |= {t for t in ts[:-1] if shape.x0 <= t < shape.x1}
        for label in REGIME_SHADES:
            want = set(reg.filter(pl.col(f"{regime}_label") == label)["ts"].to_list()) - {ts[-1]}
            assert shaded[label] == want, (regime, label)
        assert any(shaded.values()), regime


def test_settings_errors_name_the_setting(monkeypatch):
    monkeypatch.delenv("SMABM_METRICS_DSN", raising=False)
    with pytest.raises(ValueError, match=r"monitor.dashboard.source=postgres: environment variable "
                                         "SMABM_METRICS_DSN"):
        DashboardSettings.from_cfg(config("monitor.dashboard.source=postgres"))
    with pytest.raises(ValueError, match=r"monitor.dashboard.port=0"):
        DashboardSettings.from_cfg(config("monitor.dashboard.port=0"))
    s = DashboardSettings.from_cfg(config("record.status_file=var/x.json"))
    assert (s.source, s.port, s.host, str(s.status_file)) == ("files", 8050, "127.0.0.1", "var/x.json")


def make_study(path: Path) -> str:
    url = f"sqlite:///{path}"
    study = optuna.create_study(storage=url, study_name="calibrate-test",
                                sampler=optuna.samplers.RandomSampler(seed=3))
    study.optimize(lambda t: (t.suggest_float("rate", 0.0, 1.0) - 0.3) ** 2
                   + 0.01 * t.suggest_float("spread", 0.0, 1.0), n_trials=12)
    return url


def test_study_reader_reports_progress(tmp_path):
    view = StudyReader(make_study(tmp_path / "s.db")).view()
    assert view.name == "calibrate-test" and view.trials.height == 12 and view.minimize
    assert view.best_value == pytest.approx(view.trials["value"].min())
    assert set(view.importances) == {"rate", "spread"}
    assert view.importances["rate"] > view.importances["spread"]


def chromium(user_data: Path) -> webdriver.Chrome:
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--window-size=1400,2600",
                 f"--user-data-dir={user_data}"):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"),
                            options=opts)


GRAPHS_JS = """
const out = {};
for (const id of ['timeline', 'recorder', 'study']) {
  const el = document.querySelector('#' + id + ' .js-plotly-plot');
  out[id] = el && el.data ? el.data.map(t => [t.name || '', (t.x || []).length]) : null;
}
out.text = document.body.innerText;
return out;
"""


def graphs(driver, ready) -> dict:
    """Poll the page until `ready(state)`; the state of the three graphs and the page text."""
    state = {}

    def check(d):
        state.update(d.execute_script(GRAPHS_JS))
        return ready(state)
    WebDriverWait(driver, 60, poll_frequency=0.25).until(check)
    return state


def traces(state: dict, graph: str) -> dict[str, int]:
    return dict(state[graph] or [])


def test_dashboard_in_headless_chromium(runs, tmp_path):
    status = tmp_path / "record-status.json"
    write_status(status, {"received": 8431, "written": 8431, "dropped": 0, "queue_depth": 3,
                          "batches": 2268, "ack_lag_ms": 2.35, "max_ack_lag_ms": 150.6,
                          "streams": [STREAM]})
    settings = DashboardSettings(runs_root=runs, run="replay-demo", status_file=status,
                                 study_storage=make_study(tmp_path / "study.db"), refresh_s=0.5)
    demo = DashboardServer(build_app(settings), "127.0.0.1", 0).start()
    driver = chromium(tmp_path / "chromium-profile")
    try:
        driver.get(demo.url)
        state = graphs(driver, lambda s: all(s.get(g) for g in ("timeline", "recorder", "study"))
                       and "real mid" in traces(s, "timeline"))
        tl = traces(state, "timeline")
        assert tl["real mid"] == tl["simulated mid"] == 347           # every step of the run
        assert tl["sentiment EWMA"] == 347 and tl["buy volume"] == 347
        assert {"market_maker", "noise", "informed", "arbitrageur"} <= set(tl)
        assert "replay-demo: finished, 347 steps" in state["text"]
        assert "btcusdt@depth@100ms" in state["text"] and "queue depth 3" in state["text"]
        assert traces(state, "recorder")["binance.spot:btcusdt@depth@100ms"] == 1
        assert "study calibrate-test: 12 complete" in state["text"]
        assert traces(state, "study")["complete"] == 12 and traces(state, "study")["importance"] == 2
        # the recorder writes a new status: the page follows it without a reload
        time.sleep(0.05)
        write_status(status, {"received": 9000, "written": 8990, "dropped": 0, "queue_depth": 7,
                              "batches": 2300, "ack_lag_ms": 1.0, "max_ack_lag_ms": 150.6,
                              "streams": [STREAM | {"rate_per_s": 11.0}]})
        state = graphs(driver, lambda s: traces(s, "recorder").get("binance.spot:btcusdt@depth@100ms") == 2)
        assert "queue depth 7" in state["text"]
        driver.save_screenshot(str(tmp_path / "dashboard.png"))
    finally:
        demo.stop()
    # a run that is still being replayed: the timeline grows as live chunk files appear
    live_root = tmp_path / "live-runs"
    live_copy(runs / "replay-demo", live_root / "replay-live", range(0, 2))
    grow = DashboardServer(build_app(DashboardSettings(runs_root=live_root, refresh_s=0.5)),
                           "127.0.0.1", 0).start()
    try:
        driver.get(grow.url)
        state = graphs(driver, lambda s: traces(s, "timeline").get("real mid") == 100)
        assert "replay-live: running, 100 steps" in state["text"]
        live_copy(runs / "replay-demo", live_root / "replay-live", range(2, 7))
        state = graphs(driver, lambda s: traces(s, "timeline").get("real mid") == 347)
        assert "replay-live: running, 347 steps" in state["text"]
        driver.save_screenshot(str(tmp_path / "dashboard-live.png"))
    finally:
        grow.stop()
        driver.quit()
    png = (tmp_path / "dashboard.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 50_000
    assert np.frombuffer(png[16:24], ">u4").tolist()[0] >= 1000      # width from the IHDR chunk
