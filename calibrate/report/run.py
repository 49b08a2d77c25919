"""Read a replay run directory into a real and (when present) a simulated MarketSeries.

Which table and column feeds which role is explicit and configurable: each role lists
candidates tried in order, written `table:column`, `table:a+b` (sum, e.g. bid + ask depth) or
`table:a-b` (difference, e.g. best_ask - best_bid). Tables that are absent, empty or lack a
column are skipped, so the report works on whatever stages a run had. Rows of different tables
are matched by `step`; the first candidate found for `price` fixes the time grid. Rows of a
table with a boolean `valid` column set false (e.g. a book not yet in sync) count as missing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow.parquet as pq

from calibrate.facts import MarketSeries

ROLES = ("price", "volume", "signed_volume", "spread", "depth")

DEFAULT_COLUMNS: dict[str, dict[str, list[str]]] = {
    "real": {
        "price": ["book:mid", "tape:last_price", "tape:close"],
        "volume": ["tape:volume"],
        "signed_volume": ["tape:signed_volume"],
        "spread": ["book:spread", "book:ask_px-bid_px", "book:best_ask-best_bid"],
        "depth": ["book:depth", "book:bid_depth+ask_depth", "book:depth_bid+depth_ask"],
    },
    "sim": {
        "price": ["sim:mid", "sim:last_price", "sim:price", "sim:close"],
        "volume": ["sim:volume"],
        "signed_volume": ["sim:signed_volume"],
        "spread": ["sim:spread", "sim:ask_px-bid_px", "sim:best_ask-best_bid"],
        "depth": ["sim:depth", "sim:bid_depth+ask_depth", "sim:depth_bid+depth_ask"],
    },
}
TIMELINES = ("sentiment", "regimes")   # tables drawn as timelines when present
_EXPR = re.compile(r"^([A-Za-z0-9_.-]+):([A-Za-z0-9_ ]+)(?:([+-])([A-Za-z0-9_ ]+))?$")


class RunDirError(ValueError):
    """One line naming the run directory, table or setting that is wrong."""


def columns_config(overrides: dict[str, Any] | None = None) -> dict[str, dict[str, list[str]]]:
    """DEFAULT_COLUMNS with `{side: {role: [candidates]}}` overrides; unknown names rejected."""
    out = {side: {r: list(c) for r, c in roles.items()} for side, roles in DEFAULT_COLUMNS.items()}
    for side, roles in (overrides or {}).items():
        if side not in out:
            raise RunDirError(f"report.columns.{side}: unknown side (known: real, sim)")
        for role, cands in (roles or {}).items():
            if role not in ROLES:
                raise RunDirError(f"report.columns.{side}.{role}: unknown role "
                                  f"(known: {', '.join(ROLES)})")
            cands = [cands] if isinstance(cands, str) else list(cands or [])
            for c in cands:
                if not _EXPR.match(str(c)):
                    raise RunDirError(f"report.columns.{side}.{role}: {c!r} is not table:column, "
                                      "table:a+b or table:a-b")
            out[side][role] = [str(c) for c in cands]
    return out


@dataclass
class RunTables:
    """Lazily read Parquet tables of one run directory (absent -> None)."""

    root: Path
    _cache: dict[str, dict[str, np.ndarray] | None] = field(default_factory=dict)

    def get(self, name: str) -> dict[str, np.ndarray] | None:
        if name not in self._cache:
            path = self.root / f"{name}.parquet"
            if not path.is_file():
                self._cache[name] = None
            else:
                try:
                    t = pq.read_table(path)
                except OSError as e:
                    raise RunDirError(f"{path}: cannot read: {str(e).splitlines()[0]}") from None
                if "step" not in t.column_names:
                    raise RunDirError(f"{path}: column 'step' missing")
                self._cache[name] = {c: t[c].to_numpy(zero_copy_only=False) for c in t.column_names}
        return self._cache[name]


def _values(tables: RunTables, expr: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None] | None:
    """(step, values, t_ns) of one candidate, or None when its table/columns are missing."""
    table, a, op, b = _EXPR.match(expr).groups()
    t = tables.get(table)
    if t is None or len(t["step"]) == 0 or a not in t or (b is not None and b not in t):
        return None
    try:
        v = np.asarray(t[a], dtype=np.float64)
        if b is not None:
            w = np.asarray(t[b], dtype=np.float64)
            v = v + w if op == "+" else v - w
        if "valid" in t and np.asarray(t["valid"]).dtype == np.bool_:
            v = np.where(t["valid"], v, np.nan)
    except (TypeError, ValueError):
        raise RunDirError(f"{tables.root / (table + '.parquet')}: column {a!r}"
                          f"{'' if b is None else f' or {b!r}'} is not numeric") from None
    return np.asarray(t["step"], np.int64), v, (np.asarray(t["t_ns"], np.int64) if "t_ns" in t else None)


def _on_steps(steps: np.ndarray, src_steps: np.ndarray, values: np.ndarray) -> np.ndarray:
    order = np.argsort(src_steps, kind="stable")
    s, v = src_steps[order], values[order]
    i = np.clip(np.searchsorted(s, steps), 0, max(len(s) - 1, 0))
    return np.where((len(s) > 0) & (s[i] == steps), v[i], np.nan)


def series_of(tables: RunTables, roles: dict[str, list[str]], label: str
              ) -> tuple[MarketSeries | None, dict[str, str]]:
    """The MarketSeries built from the first available candidate of each role, and which was used."""
    used: dict[str, str] = {}
    base = None
    for expr in roles["price"]:
        base = _values(tables, expr)
        if base is not None:
            used["price"] = expr
            break
    if base is None:
        return None, used
    steps, price, t_ns = base
    order = np.argsort(steps, kind="stable")
    steps, price = steps[order], price[order]
    t_ns = None if t_ns is None else t_ns[order]
    cols: dict[str, np.ndarray] = {}
    for role in ROLES[1:]:
        for expr in roles[role]:
            got = _values(tables, expr)
            if got is not None:
                cols[role] = _on_steps(steps, got[0], got[1])
                used[role] = expr
                break
    return MarketSeries(price, t_ns=t_ns, label=label, **cols), used


def timeline(tables: RunTables, name: str) -> dict[str, np.ndarray] | None:
    """Numeric (and label) columns of a timeline table, keyed by column, with `t_ns`/`step`."""
    t = tables.get(name)
    if t is None or len(t["step"]) == 0:
        return None
    keep = {k: v for k, v in t.items()
            if k in ("step", "t_ns") or np.asarray(v).dtype.kind in "biuf" or
            (np.asarray(v).dtype.kind in "OU" and ("label" in k or "regime" in k))}
    return keep if len(keep) > (1 + ("t_ns" in t)) else None


@dataclass(frozen=True)
class RunData:
    root: Path
    real: MarketSeries | None
    sim: MarketSeries | None
    columns: dict[str, str]                 # "real.price" -> "book:mid", ...
    timelines: dict[str, dict[str, np.ndarray]]
    manifest: dict[str, Any]


def load_run(run_dir: str | Path, columns: dict[str, Any] | None = None) -> RunData:
    root = Path(run_dir)
    if not root.is_dir():
        raise RunDirError(f"{root}: not a run directory")
    manifest: dict[str, Any] = {}
    mpath = root / "manifest.json"
    if mpath.is_file():
        try:
            manifest = orjson.loads(mpath.read_bytes())
        except orjson.JSONDecodeError as e:
            raise RunDirError(f"{mpath}: not valid JSON ({e})") from None
    cfg = columns_config(columns)
    tables = RunTables(root)
    real, used_real = series_of(tables, cfg["real"], "real")
    sim, used_sim = series_of(tables, cfg["sim"], "sim")
    if real is None and sim is None:
        raise RunDirError(f"{root}: no price column found (tried "
                          f"{', '.join(cfg['real']['price'] + cfg['sim']['price'])})")
    used = {f"real.{k}": v for k, v in used_real.items()} | {f"sim.{k}": v for k, v in used_sim.items()}
    lines = {n: tl for n in TIMELINES if (tl := timeline(tables, n)) is not None}
    return RunData(root, real, sim, used, lines, manifest)
