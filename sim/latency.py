"""Order-entry latency models for backtest mode: when an order sent at t reaches the venue.

Swappable like hftbacktest's latency models: anything with ``delay_ns(send_ts_ns) -> ndarray``.
Only the entry leg is modelled; agents learn fills at the venue time (no response latency).
"""

from __future__ import annotations

import numpy as np


class ConstantLatency:
    """Every order arrives ``delay_ns`` after it is sent."""

    def __init__(self, delay_ns: int = 0):
        if delay_ns < 0:
            raise ValueError(f"sim.backtest.latency.delay_ns must be >= 0, got {delay_ns}")
        self.delay = int(delay_ns)

    def delay_ns(self, send_ts_ns: np.ndarray) -> np.ndarray:
        return np.full(np.shape(send_ts_ns), self.delay, dtype=np.int64)


class RecordedLatency:
    """Delays measured on the real connection: the last recorded delay at or before send time
    applies (the first one before the recording starts)."""

    def __init__(self, ts_ns: np.ndarray, delay_ns: np.ndarray):
        ts = np.asarray(ts_ns, dtype=np.int64)
        d = np.asarray(delay_ns, dtype=np.int64)
        if ts.size == 0 or ts.shape != d.shape:
            raise ValueError("sim.backtest.latency: ts_ns and delay_ns must be equal, non-empty")
        if np.any(np.diff(ts) < 0) or np.any(d < 0):
            raise ValueError("sim.backtest.latency: ts_ns must be sorted and delays >= 0")
        self.ts = ts
        self.delays = d

    def delay_ns(self, send_ts_ns: np.ndarray) -> np.ndarray:
        k = np.searchsorted(self.ts, np.asarray(send_ts_ns, dtype=np.int64), side="right") - 1
        return self.delays[np.clip(k, 0, self.ts.size - 1)]
