"""Check that a report page renders in a headless Chromium: every Plotly figure drew its SVG.

Chromium loads the page from file:// with no network (the page must be self-contained),
`--virtual-time-budget` lets the scripts finish, and `--dump-dom` prints the DOM after they ran.
A figure counts as drawn when its div holds Plotly's `main-svg` and at least one trace group.
`--screenshot PNG` also saves an image for a human look.

    python -m calibrate.report.render_check runs/x/report/report.html [--screenshot shot.png]

Prints one JSON line and exits 1 when a figure did not draw. Needs Debian's `chromium`
(apt-get install -y chromium); the flags are the ones NOTES.md found to work as root.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--hide-scrollbars")
_FIG = re.compile(r'<div id="(fig-[A-Za-z0-9_-]+)" class="plotly-graph-div')


@dataclass(frozen=True)
class RenderCheck:
    expected: list[str]     # figure ids in the HTML source
    drawn: list[str]        # figure ids with an SVG and traces in the rendered DOM
    screenshot: str | None

    @property
    def ok(self) -> bool:
        return bool(self.expected) and self.drawn == self.expected


def find_chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    raise FileNotFoundError("chromium not found on PATH (apt-get install -y chromium)")


def _run(args: list[str], timeout: float) -> str:
    with tempfile.TemporaryDirectory(prefix="smabm-chromium-") as profile:
        res = subprocess.run([*args[:1], *FLAGS, f"--user-data-dir={profile}", *args[1:]],
                             capture_output=True, text=True, timeout=timeout, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"chromium exited {res.returncode}: {res.stderr.strip()[-300:]}")
    return res.stdout


def drawn_figures(dom: str) -> list[str]:
    """Ids of figure divs whose rendered content has Plotly's SVG and a trace group."""
    out = []
    starts = [(m.start(), m.group(1)) for m in re.finditer(r'<div id="(fig-[A-Za-z0-9_-]+)"', dom)]
    for i, (pos, fid) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else len(dom)
        chunk = dom[pos:end]
        if 'class="main-svg"' in chunk and re.search(r'class="(trace|hm|bars|points)\b', chunk):
            out.append(fid)
    return out


def check_html(path: str | Path, screenshot: str | Path | None = None,
               chromium: str | None = None, timeout: float = 120.0) -> RenderCheck:
    html = Path(path).resolve()
    expected = _FIG.findall(html.read_text(encoding="utf-8"))
    exe = chromium or find_chromium()
    url = html.as_uri()
    dom = _run([exe, "--virtual-time-budget=15000", "--dump-dom", url], timeout)
    shot = None
    if screenshot is not None:
        shot = str(Path(screenshot).resolve())
        _run([exe, "--virtual-time-budget=15000", "--window-size=1400,2400",
              f"--screenshot={shot}", url], timeout)
        if not Path(shot).is_file():
            raise RuntimeError(f"chromium wrote no screenshot to {shot}")
    return RenderCheck(expected, drawn_figures(dom), shot)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("html", help="report.html to load")
    ap.add_argument("--screenshot", help="also save a PNG screenshot here")
    ap.add_argument("--chromium", help="browser binary (default: chromium on PATH)")
    a = ap.parse_args(argv)
    res = check_html(a.html, a.screenshot, a.chromium)
    sys.stdout.write(orjson.dumps(asdict(res) | {"ok": res.ok}).decode() + "\n")
    return 0 if res.ok else 1


if __name__ == "__main__":
    sys.exit(main())
