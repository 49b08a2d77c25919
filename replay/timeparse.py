"""Parse times and durations from config: ISO-8601 strings, epoch numbers, `100ms`/`1s`/`1min`."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
          "min": 60_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000, "d": 86_400_000_000_000}
_DUR = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(ns|us|µs|ms|s|min|m|h|d)\s*$")


def duration_ns(value: str | int | float, name: str, allow_zero: bool = False) -> int:
    """`100ms` -> 100_000_000; a bare number is seconds. Errors name the setting."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        ns = int(round(float(value) * 1e9))
    else:
        m = _DUR.match(str(value))
        if not m:
            raise ValueError(f"{name}={value!r}: expected a duration like 100ms, 1s, 1min")
        ns = int(round(float(m.group(1)) * _UNITS[m.group(2)]))
    if ns < 0 or (ns == 0 and not allow_zero):
        raise ValueError(f"{name}={value!r}: must be positive")
    return ns


def time_ns(value: str | int | float | None, name: str) -> int | None:
    """ISO-8601 (naive = UTC) or epoch seconds/ms/µs/ns by magnitude; None stays None."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        v = float(value)
        scale = 1e9 if v < 1e11 else 1e6 if v < 1e14 else 1e3 if v < 1e17 else 1.0
        return int(round(v * scale))
    s = str(value).strip()
    if re.fullmatch(r"[0-9]+(\.[0-9]+)?", s):
        return time_ns(float(s) if "." in s else int(s), name)
    try:
        dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{name}={value!r}: expected ISO-8601 time or epoch number") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1_000
