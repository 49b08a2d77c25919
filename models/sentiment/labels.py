"""Canonical sentiment classes and the mapping from a model's own label names.

Models name their classes differently (negative/bearish/LABEL_0...). Every output of this
package is in one canonical order so downstream code never has to know the source model.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

CANONICAL: tuple[str, str, str] = ("neg", "neu", "pos")

_SYNONYMS: dict[str, str] = {
    "neg": "neg",
    "negative": "neg",
    "bearish": "neg",
    "bear": "neg",
    "neu": "neu",
    "neutral": "neu",
    "none": "neu",
    "pos": "pos",
    "positive": "pos",
    "bullish": "pos",
    "bull": "pos",
}


def canonical_label(name: object) -> str:
    """Map one label name (any case) to neg/neu/pos, or raise naming the label."""
    key = str(name).strip().lower()
    if key not in _SYNONYMS:
        raise ValueError(
            f"sentiment label {name!r} cannot be mapped to neg/neu/pos "
            f"(known names: {sorted(_SYNONYMS)})"
        )
    return _SYNONYMS[key]


def canonical_order(id2label: Mapping[int | str, str]) -> np.ndarray:
    """Model output index for each canonical class, read from a config's ``id2label``.

    Returns ``idx`` such that ``probs[..., idx]`` is in (neg, neu, pos) order.
    """
    by_class: dict[str, int] = {}
    for raw_id, name in id2label.items():
        cls = canonical_label(name)
        if cls in by_class:
            raise ValueError(f"id2label maps two outputs to {cls!r}: {dict(id2label)}")
        by_class[cls] = int(raw_id)
    missing = [c for c in CANONICAL if c not in by_class]
    if missing or len(by_class) != len(id2label):
        raise ValueError(f"id2label {dict(id2label)} must name exactly neg, neu and pos")
    return np.array([by_class[c] for c in CANONICAL], dtype=np.int64)
