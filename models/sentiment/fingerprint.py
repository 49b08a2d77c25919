"""Content hashes for texts and model files, and the per-text MC seed derived from them.

Keys are content-based so a cache or a seed never depends on batch order, file names or
wall-clock time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np


def text_hash(text: str) -> str:
    """sha256 hex digest of the UTF-8 text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def files_hash(paths: Iterable[Path], extra: str = "") -> str:
    """sha256 over the bytes of ``paths`` (in the given order) and an extra settings string."""
    h = hashlib.sha256()
    for path in paths:
        h.update(Path(path).name.encode())
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    h.update(extra.encode())
    return h.hexdigest()


def text_seed(seed: int, digest: str) -> int:
    """Torch seed for one text: SeedSequence(seed, text hash), so it ignores batch layout."""
    words = [int(digest[i : i + 8], 16) for i in range(0, 32, 8)]
    state = np.random.SeedSequence([int(seed), *words]).generate_state(2, np.uint32)
    return int(state[0]) << 31 | int(state[1]) >> 1
