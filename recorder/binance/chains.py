"""Update-id and trade-id chains: detect, per stream, the frames the recorder never received.

Spot depth diffs chain as `U == previous u + 1`, futures diffs as `pu == previous u`; trades as
`t == previous t + 1` and aggregate trades as `a == previous a + 1` (docs/concepts/log.md). A
broken chain is a gap: the recorder writes a `kind=gap` marker `{"from": first missing id,
"to": last missing id}` before the frame that revealed it and, for depth, takes a fresh
snapshot. Chains persist across reconnects, so frames lost while disconnected are gaps too.
"""

from __future__ import annotations


class Chain:
    """The last id seen on one stream; `check` returns the missing id range or None."""

    __slots__ = ("kind", "last")

    def __init__(self, kind: str) -> None:
        self.kind = kind  # "depth" | "trade" | "aggTrade"
        self.last: int | None = None

    def check(self, data: dict) -> tuple[int, int] | None:
        if self.kind == "depth":
            first, last, prev = data.get("U"), data.get("u"), data.get("pu")
            if type(last) is not int:
                return None
            gap = None
            if self.last is not None:
                if type(prev) is int:  # futures: pu names the previous u
                    if prev != self.last and prev > self.last:
                        gap = (self.last + 1, prev)
                elif type(first) is int and first > self.last + 1:
                    gap = (self.last + 1, first - 1)
            if self.last is None or last > self.last:
                self.last = last
            return gap
        tid = data.get("t" if self.kind == "trade" else "a")
        if type(tid) is not int:
            return None
        gap = (self.last + 1, tid - 1) if self.last is not None and tid > self.last + 1 else None
        if self.last is None or tid > self.last:
            self.last = tid
        return gap


def chain_kind(stream: str) -> str | None:
    """Which chain a stream name carries: `btcusdt@depth@100ms` -> "depth"."""
    parts = stream.split("@")
    if len(parts) < 2:
        return None
    k = parts[1]
    if k == "depth":
        return "depth"  # diff streams only: `@depth5`/`@depth20` are partial-book snapshots
    if k == "trade":
        return "trade"
    if k == "aggTrade":
        return "aggTrade"
    return None
