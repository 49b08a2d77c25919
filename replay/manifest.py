"""Run manifests and content hashes: how a run proves it can be reproduced bit for bit.

A table's hash covers its schema and every column's values in row order, serialised as one
Arrow buffer per column, so it does not depend on how the run was chunked or how Parquet laid
the file out. Wall-clock facts (duration, events/s) go to run_stats.json, never the manifest.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import subprocess
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

PACKAGES = ("sentiment-microstructure-abm", "numpy", "pyarrow", "polars", "numba", "orjson", "torch",
            "transformers", "statsmodels", "mesa", "optuna", "hydra-core", "scipy")


def table_hash(table: pa.Table) -> str:
    h = hashlib.sha256(str(table.schema.remove_metadata()).encode())
    for name in table.column_names:
        col = table[name].combine_chunks() if table.num_rows else pa.array([], table[name].type)
        h.update(pa.record_batch([col], names=[name]).serialize())
    return h.hexdigest()


def file_table_hash(path: Path) -> tuple[int, str]:
    t = pq.read_table(path)
    return t.num_rows, table_hash(t)


def package_versions() -> dict[str, str]:
    out = {}
    for p in PACKAGES:
        try:
            out[p] = importlib.metadata.version(p)
        except importlib.metadata.PackageNotFoundError:
            out[p] = "absent"
    return out


def code_version() -> str:
    """`git describe` of the checkout when there is one, else the package version."""
    here = Path(__file__).resolve().parents[1]
    try:
        r = subprocess.run(["git", "-C", str(here), "describe", "--always", "--dirty", "--abbrev=12"],
                           capture_output=True, text=True, timeout=5, check=True)
        return r.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return importlib.metadata.version("sentiment-microstructure-abm")


def write_json(path: Path, obj) -> None:
    """Keys keep their order: a config's order can matter (e.g. factor blocks), so never sort."""
    path.write_bytes(orjson.dumps(obj, option=orjson.OPT_INDENT_2))


def read_json(path: Path):
    return orjson.loads(path.read_bytes())
