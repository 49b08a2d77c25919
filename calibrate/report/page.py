"""report.html: one self-contained page (plotly.js embedded once, no network) with the fact
tables and the figures. Figure div ids are fixed, so the page is byte-identical run to run.
"""

from __future__ import annotations

from html import escape
from typing import Any

import plotly.graph_objects as go

from calibrate.report.numbers import band_text, fmt, note, verdict

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222}
h1{font-size:22px}h2{font-size:18px;margin-top:28px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.pass{background:#e3f6e3}td.fail{background:#fbe0e0}td.na{color:#888}
.note{color:#666;font-size:12px}.fig{margin:12px 0 24px 0}
"""


def _cell(passed: bool | None) -> str:
    cls = "na" if passed is None else ("pass" if passed else "fail")
    return f'<td class="{cls}">{verdict(passed)}</td>'


def _facts_table(doc: dict[str, Any]) -> str:
    sim = doc.get("simulated")
    simf = {f["name"]: f for f in sim["facts"]} if sim else {}
    head = ("<tr><th>fact</th><th>band</th><th>real</th><th>pass</th>"
            + ("<th>simulated</th><th>pass</th>" if sim else "") + "<th>note</th></tr>")
    rows = []
    for f in doc["facts"]:
        g = simf.get(f["name"])
        rows.append(
            f'<tr><td title="{escape(f["definition"])}">{escape(f["name"])}</td>'
            f"<td>{escape(band_text(f['band']))}</td><td class=\"num\">{fmt(f['value'])}</td>"
            + _cell(f["pass"])
            + (f"<td class=\"num\">{fmt(g['value'])}</td>" + _cell(g["pass"]) if g else "")
            + f"<td class=\"note\">{escape(note(f, g))}</td></tr>")
    return "<table>" + head + "".join(rows) + "</table>"


def _comparison_table(doc: dict[str, Any]) -> str:
    rows = [f'<tr><td title="{escape(f["definition"])}">{escape(f["name"])}</td>'
            f"<td>{escape(band_text(f['band']))}</td><td class=\"num\">{fmt(f['value'])}</td>"
            + _cell(f["pass"]) + f"<td class=\"note\">{escape(note(f))}</td></tr>"
            for f in doc["comparison"]]
    return ("<table><tr><th>test</th><th>band</th><th>p-value</th><th>pass</th><th>note</th></tr>"
            + "".join(rows) + "</table>")


def _moments_table(doc: dict[str, Any]) -> str:
    sim = doc.get("simulated")
    rows = [f"<tr><td>{escape(k)}</td><td class=\"num\">{fmt(v)}</td>"
            + (f"<td class=\"num\">{fmt(sim['moments'][k])}</td>" if sim else "") + "</tr>"
            for k, v in doc["moments"].items()]
    return ("<table><tr><th>moment</th><th>real</th>" + ("<th>simulated</th>" if sim else "")
            + "</tr>" + "".join(rows) + "</table>")


def _definitions(doc: dict[str, Any]) -> str:
    items = [f"<li><b>{escape(f['name'])}</b>: {escape(f['definition'])}</li>"
             for f in doc["facts"] + doc.get("comparison", [])]
    return "<ul class=\"note\">" + "".join(items) + "</ul>"


def _source(doc: dict[str, Any]) -> str:
    src = doc["source"]
    items = []
    for label, s in src["series"].items():
        when = f", {s['start']} → {s['end']}" if "start" in s else ""
        bar = f", median bar {fmt(s['median_bar_s'])} s" if "median_bar_s" in s else ""
        items.append(f"{label}: {s['rows']} rows, {s['returns']} returns{when}{bar}")
    items += [f"column {k}: <code>{escape(v)}</code>" for k, v in src.get("columns", {}).items()]
    for key in ("path", "bar", "seed", "code_version"):
        if src.get(key) is not None:
            items.append(f"{key}: <code>{escape(str(src[key]))}</code>")
    return "<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>"


def render_html(doc: dict[str, Any], figures: dict[str, go.Figure], title: str) -> str:
    parts = []
    for i, (name, fig) in enumerate(figures.items()):
        div = fig.to_html(full_html=False, include_plotlyjs=(i == 0), div_id=f"fig-{name}",
                          config={"displaylogo": False, "responsive": True})
        parts.append(f'<div class="fig">{div}</div>')
    body = [f"<h1>{escape(title)}</h1>", _source(doc), "<h2>Stylized facts</h2>", _facts_table(doc)]
    if "comparison" in doc:
        body += ["<h2>Simulated vs real</h2>", _comparison_table(doc)]
    body += ["<h2>Moments of simple returns</h2>", _moments_table(doc), "<h2>Figures</h2>",
             *parts, "<h2>Definitions</h2>", _definitions(doc)]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title><style>{CSS}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")
