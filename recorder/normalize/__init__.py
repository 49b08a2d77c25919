"""Normalised views of the raw log: depth levels, trades, bbo, klines and Reddit posts.

Derived from raw with one parser (`parse_events`), cached per segment under `<root>/norm/`
and rebuilt incrementally (`normalize`); read windows with `read_table`. See
docs/concepts/normalize.md.
"""

from recorder.normalize.cache import (
    NormalizeReport,
    conn_headers,
    normalize,
    normalize_segments,
)
from recorder.normalize.parse import Parsed, parse_events
from recorder.normalize.read import read_table
from recorder.normalize.tables import SCHEMAS, TABLE_VERSIONS, TABLES

__all__ = ["SCHEMAS", "TABLES", "TABLE_VERSIONS", "NormalizeReport", "Parsed", "conn_headers",
           "normalize", "normalize_segments", "parse_events", "read_table"]
