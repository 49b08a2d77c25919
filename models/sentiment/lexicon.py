"""VADER lexicon baseline: fast, offline, no uncertainty.

p_neg/p_neu/p_pos are VADER's lexical proportions (they sum to 1 but are not calibrated class
probabilities), score is VADER's compound score in [-1, 1], label follows VADER's documented
rule (compound >= 0.05 pos, <= -0.05 neg, else neu). A lexicon has no sampling, so entropy,
aleatoric and epistemic are NaN (not measured), never 0 (which would claim certainty).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer


class LexiconModel:
    """Same ``score`` interface and output columns as :class:`SentimentModel`."""

    name = "lexicon:vaderSentiment-3.3.2"
    fingerprint = "vader-3.3.2"
    measures_uncertainty = False  # a rule-based score: its uncertainty columns are NaN

    def __init__(self) -> None:
        self._analyzer = SentimentIntensityAnalyzer()

    def score(self, texts: Sequence[str], **_: object) -> dict[str, np.ndarray]:
        """Score texts; MC settings (T, seed, sampled_layers, cache) do not apply and are ignored."""
        pol = [self._analyzer.polarity_scores(t) for t in texts]
        compound = np.array([p["compound"] for p in pol], dtype=np.float64)
        label = np.where(compound >= 0.05, "pos", np.where(compound <= -0.05, "neg", "neu"))
        nan = np.full(len(texts), np.nan)
        return {
            "p_neg": np.array([p["neg"] for p in pol], dtype=np.float64),
            "p_neu": np.array([p["neu"] for p in pol], dtype=np.float64),
            "p_pos": np.array([p["pos"] for p in pol], dtype=np.float64),
            "score": compound,
            "label": label.astype("<U3"),
            "entropy": nan,
            "aleatoric": nan.copy(),
            "epistemic": nan.copy(),
        }
