"""One fact's outcome: a value, the band it should fall in, pass/fail, and why not when not.

A fact never raises on short or missing input: it returns `value=NaN`, `passed=None` and a
`reason`, so one bad series cannot sink a whole report or an Optuna trial.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

Band = tuple[float | None, float | None]


@dataclass(frozen=True)
class Fact:
    """`band=None` means reported only (never judged); a `None` bound is open."""

    name: str
    value: float
    band: Band | None
    passed: bool | None
    reason: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": _num(self.value), "band": _band(self.band),
                "pass": self.passed, "reason": self.reason, "detail": plain(self.detail)}


def in_band(value: float, band: Band | None) -> bool | None:
    """True/False when `value` is finite and a band is set, else None."""
    if band is None or not math.isfinite(value):
        return None
    lo, hi = band
    return (lo is None or value >= lo) and (hi is None or value <= hi)


def judged(name: str, value: float, band: Band | None, detail: dict[str, Any] | None = None,
           reason: str | None = None, extra: bool | None = True) -> Fact:
    """A fact judged by its band; `extra=False` fails it (a second condition, documented per fact)."""
    value = float(value)
    ok = in_band(value, band)
    if not math.isfinite(value) and reason is None:
        reason = "value not computable"
    if band is None and reason is None:
        reason = "reported, not judged"
    if ok is not None and extra is not None:
        ok = ok and bool(extra)
    return Fact(name, value, band, ok, reason, detail or {})


def missing(name: str, band: Band | None, reason: str, detail: dict[str, Any] | None = None) -> Fact:
    """The fact could not be computed: NaN value, no verdict, and the reason."""
    return Fact(name, math.nan, band, None, reason, detail or {})


def _num(v: Any) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def _band(b: Band | None) -> list[float | None] | None:
    return None if b is None else [None if x is None else float(x) for x in b]


def plain(obj: Any) -> Any:
    """JSON-ready copy: numpy scalars/arrays to Python, non-finite floats to None."""
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [plain(v) for v in obj]
    if hasattr(obj, "tolist"):
        return plain(obj.tolist())
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, int):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    return obj
