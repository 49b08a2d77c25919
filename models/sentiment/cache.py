"""Parquet cache of MC scores keyed by (text hash, model hash, T, sampled layers, seed).

A re-run over the same texts scores nothing twice. The file is rewritten whole (sorted by
key, written to a temporary name then renamed), so it stays readable by any Parquet reader
and is never left half-written.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

KEY_COLUMNS = ("text_hash", "model_hash", "T", "sampled_layers", "seed")
VALUE_COLUMNS = ("p_neg", "p_neu", "p_pos", "score", "entropy", "aleatoric", "epistemic")

Key = tuple[str, str, int, int, int]


class ScoreCache:
    """In-memory dict of cached rows, loaded from and flushed to one Parquet file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._rows: dict[Key, tuple[float, ...]] = {}
        self._dirty = False
        if self.path.exists():
            table = pq.read_table(self.path).to_pydict()
            keys = zip(*(table[c] for c in KEY_COLUMNS), strict=True)
            values = zip(*(table[c] for c in VALUE_COLUMNS), strict=True)
            self._rows = {tuple(k): tuple(v) for k, v in zip(keys, values, strict=True)}

    def __len__(self) -> int:
        return len(self._rows)

    def get(self, key: Key) -> tuple[float, ...] | None:
        return self._rows.get(key)

    def put(self, keys: list[Key], columns: dict[str, np.ndarray]) -> None:
        """Store one row per key from value columns of the same length."""
        for i, key in enumerate(keys):
            self._rows[key] = tuple(float(columns[c][i]) for c in VALUE_COLUMNS)
        self._dirty = self._dirty or bool(keys)

    def flush(self) -> None:
        """Write the file if anything changed."""
        if not self._dirty:
            return
        items = sorted(self._rows.items())
        data: dict[str, list] = {c: [k[j] for k, _ in items] for j, c in enumerate(KEY_COLUMNS)}
        for j, c in enumerate(VALUE_COLUMNS):
            data[c] = [v[j] for _, v in items]
        schema = pa.schema(
            [("text_hash", pa.string()), ("model_hash", pa.string()), ("T", pa.int32()),
             ("sampled_layers", pa.int32()), ("seed", pa.int64())]
            + [(c, pa.float64()) for c in VALUE_COLUMNS]
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        pq.write_table(pa.table(data, schema=schema), tmp, compression="zstd")
        os.replace(tmp, self.path)
        self._dirty = False
