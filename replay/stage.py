"""The stage interface: what the clock hands a stage per chunk of steps, and what it returns.

A stage sees every event of its streams for a run of consecutive steps (in the log's total
order, split per step by `offsets`), plus what upstream stages emitted for those same steps,
and returns one value per step per output column. Chunks are a batching device only: a stage
must give identical outputs however the steps are chunked (the clock's tests check this), so
paced, live and offline replays of one window agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import pyarrow as pa


@dataclass(frozen=True)
class Chunk:
    """Consecutive steps `[step0, step0 + n)`; events of step i are rows offsets[i]:offsets[i+1]."""

    step0: int
    starts_ns: np.ndarray          # int64, start of each step
    step_ns: int
    events: pa.Table               # raw events (recorder.events.SCHEMA) of the stage's streams
    offsets: np.ndarray            # int64, len n + 1
    upstream: Mapping[str, Mapping[str, np.ndarray]] = field(default_factory=dict)

    @property
    def n_steps(self) -> int:
        return len(self.starts_ns)

    @property
    def ends_ns(self) -> np.ndarray:
        return self.starts_ns + self.step_ns

    def step_index(self) -> np.ndarray:
        """Relative step of every event (vectorised inverse of `offsets`)."""
        return np.repeat(np.arange(self.n_steps), np.diff(self.offsets))


@runtime_checkable
class Stage(Protocol):
    """A replay stage. `streams` are log stream patterns (see LogReader.read)."""

    name: str
    streams: Sequence[str]
    needs: Sequence[str]   # names of upstream stages whose step outputs it reads

    def process(self, chunk: Chunk) -> dict[str, np.ndarray]:
        """One array per output column, each of length `chunk.n_steps`."""
        ...

    def tables(self) -> dict[str, pa.Table]:
        """Extra outputs accumulated over the run (e.g. gap events); may be empty."""
        ...
