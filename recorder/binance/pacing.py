"""Request-weight pacing and reconnect backoff: stay inside Binance's limits.

Snapshot requests spend request weight (a token bucket refilled per minute); reconnects wait
with exponential backoff and jitter so a fleet of recorders does not reconnect in step.
Jitter uses `random` on purpose: this is recording, not replay, so no seed is needed.
"""

from __future__ import annotations

import asyncio
import random
import time


class WeightBucket:
    """Token bucket of request weight: `capacity` per minute, refilled continuously."""

    def __init__(self, per_minute: float) -> None:
        if per_minute <= 0:
            raise ValueError(f"record.binance.weight_per_min={per_minute}: must be > 0")
        self.capacity = float(per_minute)
        self.tokens = float(per_minute)
        self.rate = per_minute / 60.0
        self._t = time.monotonic()
        self._lock = asyncio.Lock()

    async def acquire(self, weight: float) -> None:
        async with self._lock:
            while True:
                now = time.monotonic()
                self.tokens = min(self.capacity, self.tokens + (now - self._t) * self.rate)
                self._t = now
                if self.tokens >= weight:
                    self.tokens -= weight
                    return
                await asyncio.sleep((weight - self.tokens) / self.rate)


class Backoff:
    """Exponential backoff with equal jitter: delay in [d/2, d], d = min(cap, base * 2**n)."""

    def __init__(self, base_s: float, cap_s: float) -> None:
        if base_s <= 0 or cap_s < base_s:
            raise ValueError(f"record.binance.backoff: need 0 < initial_s ({base_s}) <= max_s ({cap_s})")
        self.base, self.cap, self.n = base_s, cap_s, 0

    def next(self) -> float:
        d = min(self.cap, self.base * (2 ** self.n))
        self.n += 1
        return random.uniform(d / 2, d)  # noqa: S311  (jitter, not security)

    def reset(self) -> None:
        self.n = 0
