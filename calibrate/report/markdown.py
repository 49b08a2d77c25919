"""report.md: the moments and fact tables as GitHub Markdown."""

from __future__ import annotations

from typing import Any

from calibrate.report.numbers import band_text, fmt, note, verdict


def render_markdown(doc: dict[str, Any], title: str) -> str:
    src = doc["source"]
    lines = [f"# {title}", ""]
    for label, s in src["series"].items():
        when = f", {s['start']} → {s['end']}" if "start" in s else ""
        lines.append(f"- {label}: {s['rows']} rows, {s['returns']} returns{when}")
    for k, v in src.get("columns", {}).items():
        lines.append(f"- column {k}: `{v}`")
    if src.get("bar"):
        lines.append(f"- bars: {src['bar']}")
    sim = doc.get("simulated")
    lines += ["", "## Moments of simple returns", ""]
    head = "| moment | real |" + (" simulated |" if sim else "")
    lines += [head, "|---|---:|" + ("---:|" if sim else "")]
    for k, v in doc["moments"].items():
        lines.append(f"| {k} | {fmt(v)} |" + (f" {fmt(sim['moments'][k])} |" if sim else ""))
    lines += ["", "## Stylized facts", ""]
    if sim:
        lines += ["| fact | band | real | pass | simulated | pass | note |",
                  "|---|---|---:|---|---:|---|---|"]
        simf = {f["name"]: f for f in sim["facts"]}
        for f in doc["facts"]:
            g = simf[f["name"]]
            lines.append(f"| {f['name']} | {band_text(f['band'])} | {fmt(f['value'])} | "
                         f"{verdict(f['pass'])} | {fmt(g['value'])} | {verdict(g['pass'])} | "
                         f"{note(f, g)} |")
        lines += ["", "## Simulated vs real", "", "| test | band | value | pass | note |",
                  "|---|---|---:|---|---|"]
        for f in doc["comparison"]:
            lines.append(f"| {f['name']} | {band_text(f['band'])} | {fmt(f['value'])} | "
                         f"{verdict(f['pass'])} | {note(f)} |")
    else:
        lines += ["| fact | band | value | pass | note |", "|---|---|---:|---|---|"]
        for f in doc["facts"]:
            lines.append(f"| {f['name']} | {band_text(f['band'])} | {fmt(f['value'])} | "
                         f"{verdict(f['pass'])} | {note(f)} |")
    lines += ["", "## Definitions", ""]
    lines += [f"- **{f['name']}**: {f['definition']}" for f in doc["facts"] + doc.get("comparison", [])]
    return "\n".join(lines) + "\n"
