"""Timestamps as files write them, to int64 ns since the Unix epoch (UTC), exactly.

Recorders disagree on units (hftbacktest wrote ns in 2024 and µs in 2023; data.binance.vision
switched spot files from ms to µs in 2025), so units are detected per file from the magnitude
of the values and reported. Decimal seconds (cryptofeed, Reddit) are converted through
`Decimal`, never through a float, so the same text always gives the same nanosecond.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone, tzinfo
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

NS_PER = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
# Lower bounds of each unit's magnitude (dates from 1973 on; int64 ns ends in 2262).
_BOUNDS = np.array([10**8, 10**11, 10**14, 10**17], np.int64)
_UNITS = ("s", "ms", "us", "ns")


def units_of(values: np.ndarray) -> np.ndarray:
    """Index into ("s", "ms", "us", "ns") of each epoch value, -1 where none fits."""
    v = np.asarray(values, np.int64)
    idx = np.searchsorted(_BOUNDS, v, side="right") - 1
    idx[idx < 0] = -1
    return idx


def unit_name(index: int) -> str:
    return _UNITS[index]


def decimal_seconds_to_ns(text: str | bytes) -> int:
    """'1633998512.0633569' -> 1633998512063356900, exactly; ValueError if not a number."""
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    try:
        d = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"not a number of seconds: {text!r}") from None
    if not d.is_finite():
        raise ValueError(f"not a number of seconds: {text!r}")
    return int(d.scaleb(9).to_integral_value())


def parse_tz(tz: str | None) -> tzinfo:
    """A UTC offset ('+01:00', '-0530', 'Z', 'UTC') or an IANA zone name; None means UTC."""
    if tz is None or tz.strip().upper() in ("Z", "UTC", "GMT"):
        return UTC
    text = tz.strip()
    if text[:1] in "+-":
        digits = text[1:].replace(":", "")
        if digits.isdigit() and len(digits) in (2, 4):
            minutes = int(digits[:2]) * 60 + (int(digits[2:]) if len(digits) == 4 else 0)
            sign = -1 if text[0] == "-" else 1
            return timezone(sign * timedelta(minutes=minutes))
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"import.tz={tz!r}: expected a UTC offset such as '+01:00' or an IANA zone "
            "name such as 'Europe/Paris'") from None


def iso_to_ns(text: str, tz: tzinfo) -> int:
    """ISO 8601 date-time to ns; a time without an offset is read in `tz`."""
    try:
        t = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"not an ISO date-time: {text!r}") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=tz)
    delta = t - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000
