"""Validation reports: the stylized facts of a run (real vs simulated) or of a price file, as
one self-contained HTML page (Plotly, offline), JSON and Markdown (docs/concepts/facts.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from calibrate.facts import FactParams, MarketSeries
from calibrate.report.bars import resample
from calibrate.report.figures import all_figures
from calibrate.report.markdown import render_markdown
from calibrate.report.page import render_html
from calibrate.report.prices import PriceFileError, load_prices
from calibrate.report.run import RunDirError, load_run
from calibrate.report.summary import summarise
from replay.timeparse import duration_ns

__all__ = ["PriceFileError", "RunDirError", "report_prices", "report_run", "write_report"]


def _targets(out: str | Path | None, default_dir: Path) -> tuple[Path, Path, Path]:
    """`out` ending in .html names the page (JSON/Markdown beside it); else it is a folder."""
    if out is not None and str(out).lower().endswith(".html"):
        html = Path(out)
    else:
        html = (Path(out) if out is not None else default_dir) / "report.html"
    html.parent.mkdir(parents=True, exist_ok=True)
    return html, html.with_suffix(".json"), html.with_suffix(".md")


def _params(params: FactParams | dict[str, Any] | None) -> FactParams:
    return params if isinstance(params, FactParams) else FactParams.from_dict(params)


def _bars(s: MarketSeries | None, bar: str | None) -> MarketSeries | None:
    if s is None or bar is None:
        return s
    if s.t_ns is None:
        raise ValueError(f"report.bar={bar!r}: the {s.label} series has no timestamps")
    return resample(s, duration_ns(bar, "report.bar"))


def write_report(real: MarketSeries | None, sim: MarketSeries | None, source: dict[str, Any],
                 out: str | Path | None, default_dir: Path, title: str,
                 bands: dict[str, Any] | None = None, params: FactParams | None = None,
                 timelines: dict | None = None) -> Path:
    """Compute, draw and write report.{html,json,md}; returns the HTML path."""
    p = _params(params)
    doc = summarise(real, sim, source, bands, p)
    html, js, md = _targets(out, default_dir)
    js.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
    md.write_text(render_markdown(doc, title), encoding="utf-8")
    html.write_text(render_html(doc, all_figures(real, sim, p, timelines), title), encoding="utf-8")
    return html


def report_run(run_dir: str | Path, out: str | Path | None = None, *,
               columns: dict[str, Any] | None = None, bands: dict[str, Any] | None = None,
               params: FactParams | dict[str, Any] | None = None, bar: str | None = None) -> Path:
    """Report of a replay run directory: real = its tape/book, simulated = its sim table when
    present. Default output: RUN_DIR/report/report.html (+ .json, .md)."""
    run = load_run(run_dir, columns)
    real, sim = _bars(run.real, bar), _bars(run.sim, bar)
    m = run.manifest
    source = {"kind": "run", "path": str(run.root), "columns": run.columns, "bar": bar,
              "seed": m.get("seed"), "code_version": m.get("code_version"),
              "window": m.get("window")}
    return write_report(real, sim, source, out, run.root / "report", f"Stylized facts: {run.root.name}",
                        bands, params, run.timelines)


def report_prices(path: str | Path, time_col: str | None = None, price_col: str | None = None,
                  out: str | Path | None = None, *, bands: dict[str, Any] | None = None,
                  params: FactParams | dict[str, Any] | None = None, bar: str | None = None) -> Path:
    """Report of one real price series in a CSV/Parquet file. Default output: a folder
    `<file stem>-report` beside the file."""
    path = Path(path)
    ps = load_prices(path, time_col, price_col)
    signed = None
    if ps.side is not None:   # trades: signed volume per row (or the sign alone without volume)
        signed = ps.side * (ps.volume if ps.volume is not None else 1.0)
    real = _bars(MarketSeries(ps.price, t_ns=ps.t_ns, volume=ps.volume, signed_volume=signed,
                              signs=ps.side), bar)
    stem = path.name.split(".")[0]
    cols = {"time": ps.time_col, "price": ps.price_col, "volume": ps.volume_col, "side": ps.side_col}
    source = {"kind": "prices", "path": str(path), "bar": bar, "dropped_rows": ps.dropped,
              "columns": {k: v for k, v in cols.items() if v is not None}}
    return write_report(real, None, source, out, path.parent / f"{stem}-report",
                        f"Stylized facts: {path.name}", bands, params)
