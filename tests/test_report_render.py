"""End to end on real data: a replay run of the bundled Binance recording (book + tape stages)
is reported, and the page is loaded in headless Chromium, which must draw every figure.

Needs Debian's chromium on PATH (the Makefile's test set-up installs it:
apt-get install -y chromium).
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from calibrate.report import report_prices, report_run
from calibrate.report.render_check import check_html, main

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def real_run(tmp_path_factory) -> Path:
    from recorder.importers import import_files
    from replay.pipeline import run_replay
    from smabm.config import load_config

    tmp = tmp_path_factory.mktemp("run")
    import_files(tmp / "log", "hftbacktest", [DATA / "binance" / "spot_btcusdt_20240808.gz"],
                 progress=False)
    cfg = load_config([f"log.root={tmp / 'log'}", "replay.stages=[book,tape]", "replay.step=1s",
                       f"replay.out={tmp / 'run'}"])
    return run_replay(cfg, progress=False)


def test_report_of_a_real_replay_run(real_run):
    html = report_run(real_run)
    doc = orjson.loads(html.with_suffix(".json").read_bytes())
    cols = doc["source"]["columns"]
    assert cols["real.price"] == "book:mid" and cols["real.spread"] == "book:spread"
    assert cols["real.volume"] == "tape:volume" and cols["real.depth"] == "book:bid_depth+ask_depth"
    assert doc["source"]["window"]["step_ns"] == 1_000_000_000
    assert doc["moments"]["n"] > 300                     # ~6 minutes of 1 s mids
    facts = {f["name"]: f for f in doc["facts"]}
    # BTCUSDT spot quotes a one-tick spread (0.01 USD at ~62k): ~0.0016 bps
    assert 0.001 < facts["spread_bps"]["value"] < 0.01 and facts["spread_bps"]["pass"] is True
    assert facts["depth"]["value"] > 0
    assert facts["excess_kurtosis"]["pass"] is True
    assert facts["price_impact_concavity"]["value"] is not None


def test_chromium_draws_every_figure(real_run, tmp_path):
    html = report_run(real_run, out=tmp_path / "report.html")
    res = check_html(html, screenshot=tmp_path / "shot.png")
    assert res.expected[:3] == ["fig-prices", "fig-returns", "fig-tails"]
    assert res.ok, res
    # a blank page renders to a ~10 kB PNG at this size; a drawn one is far larger
    assert (tmp_path / "shot.png").stat().st_size > 100_000


def test_render_check_cli_fails_on_a_page_whose_figures_cannot_draw(tmp_path, capsys):
    html = report_prices(DATA / "prices" / "btc_daily_yf_20140917_20160129.csv", out=tmp_path)
    assert main([str(html)]) == 0
    broken = tmp_path / "broken.html"
    # without plotly.js (the first, inline script) no figure can draw
    page = html.read_text()
    start = page.index("<script>/**\n* plotly.js v")
    end = page.index("</script>", start) + len("</script>")
    broken.write_text(page[:start] + page[end:])
    capsys.readouterr()
    assert main([str(broken)]) == 1
    out = orjson.loads(capsys.readouterr().out)
    assert out["ok"] is False and out["drawn"] == [] and len(out["expected"]) == 4
