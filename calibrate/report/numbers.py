"""How numbers, bands and verdicts are written in the HTML and Markdown tables."""

from __future__ import annotations

from typing import Any


def fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    v = float(v)
    return f"{v:.4g}" if 1e-3 <= abs(v) < 1e5 or v == 0 else f"{v:.3e}"


def band_text(band: list[float | None] | None) -> str:
    if band is None:
        return "reported"
    lo, hi = band
    if lo is None:
        return f"≤ {fmt(hi)}"
    if hi is None:
        return f"≥ {fmt(lo)}"
    return f"[{fmt(lo)}, {fmt(hi)}]"


def verdict(passed: bool | None) -> str:
    return "–" if passed is None else ("pass" if passed else "FAIL")


def note(real: dict[str, Any], sim: dict[str, Any] | None = None) -> str:
    """The reason(s) a fact has no value or verdict; one text when both sides share it."""
    if sim is None or sim["reason"] == real["reason"]:
        return real["reason"] or ""
    return "; ".join(f"{side}: {f['reason']}" for side, f in (("real", real), ("sim", sim))
                     if f["reason"])
