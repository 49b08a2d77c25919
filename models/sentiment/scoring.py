"""Score a file of texts and summarise (the body of ``smabm sentiment score FILE``).

Input: one text per line (any extension but .csv/.parquet), or a CSV/Parquet column. Output:
one row per input text with every score column, Parquet or CSV by the output's extension.
With a label column the summary also holds accuracy, macro-F1 and ECE, so users can evaluate
any model on their own labelled set.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .cache import ScoreCache
from .labels import CANONICAL, canonical_label
from .lexicon import LexiconModel
from .metrics import accuracy, expected_calibration_error, macro_f1
from .model import SentimentModel

OUTPUT_COLUMNS = ("p_neg", "p_neu", "p_pos", "score", "label", "entropy", "aleatoric",
                  "epistemic")


def read_texts(
    path: str | Path, text_column: str = "text", label_column: str | None = None
) -> tuple[list[str], list | None]:
    """Texts (and raw labels if asked) from a .csv/.parquet column or a one-per-line file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".csv", ".parquet"):
        table = pq.read_table(path) if suffix == ".parquet" else pacsv.read_csv(path)
        for col in (text_column, label_column):
            if col is not None and col not in table.column_names:
                raise ValueError(f"{path} has no column {col!r} (columns: {table.column_names})")
        texts = ["" if t is None else str(t) for t in table.column(text_column).to_pylist()]
        labels = table.column(label_column).to_pylist() if label_column else None
        return texts, labels
    if label_column is not None:
        raise ValueError(f"label_column needs a .csv or .parquet input, got {path.name}")
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip()], None


def _write(columns: dict[str, object], out_path: Path) -> None:
    table = pa.table(columns)
    suffix = out_path.suffix.lower()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".parquet":
        pq.write_table(table, out_path, compression="zstd")
    elif suffix == ".csv":
        pacsv.write_csv(table, out_path)
    else:
        raise ValueError(f"output must end in .parquet or .csv, got {out_path.name}")


def score_file(
    path: str | Path,
    out_path: str | Path,
    *,
    model: str | Path = "default",
    text_column: str = "text",
    label_column: str | None = None,
    label_map: Mapping[str, str] | None = None,
    T: int = 20,
    seed: int = 0,
    sampled_layers: int = 1,
    max_length: int = 128,
    cache_path: str | Path | None = None,
    batch_size: int = 64,
) -> dict:
    """Score every text of ``path`` into ``out_path`` and return a summary dict.

    ``label_map`` maps raw label values (as strings, e.g. ``{"0": "neg"}``) to names that
    :func:`canonical_label` understands; without it the raw values must be such names.
    """
    out_path = Path(out_path)
    if out_path.suffix.lower() not in (".parquet", ".csv"):
        raise ValueError(f"output must end in .parquet or .csv, got {out_path.name}")
    texts, raw_labels = read_texts(path, text_column, label_column)
    scorer = SentimentModel.load(model, max_length=max_length)
    cache = ScoreCache(cache_path) if cache_path is not None else None
    cols = scorer.score(texts, T=T, seed=seed, sampled_layers=sampled_layers, cache=cache,
                        batch_size=batch_size)
    out: dict[str, object] = {"text": texts}
    out.update({c: cols[c] for c in OUTPUT_COLUMNS})
    summary: dict = {
        "count": len(texts),
        "model": scorer.name,
        "mean_score": float(np.mean(cols["score"])) if texts else float("nan"),
        "label_distribution": {c: float(np.mean(cols["label"] == c)) if texts else 0.0
                               for c in CANONICAL},
    }
    if raw_labels is not None:
        mapping = dict(label_map or {})
        true = [canonical_label(mapping.get(str(v), v)) for v in raw_labels]
        out["label_true"] = true
        y = np.array([CANONICAL.index(c) for c in true])
        pred = np.array([CANONICAL.index(c) for c in cols["label"]])
        probs = np.stack([cols["p_neg"], cols["p_neu"], cols["p_pos"]], axis=1)
        summary["accuracy"] = accuracy(y, pred)
        summary["macro_f1"] = macro_f1(y, pred, len(CANONICAL))
        # VADER's proportions are not class probabilities: a calibration error would mislead.
        summary["ece"] = (None if isinstance(scorer, LexiconModel)
                          else expected_calibration_error(probs, y))
    _write(out, out_path)
    return summary
