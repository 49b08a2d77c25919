"""Sentiment scoring: HF classifiers or the shipped MiniLM model, with MC-dropout uncertainty.

Batch API: ``SentimentModel.load(spec).score(texts, T=..., seed=...)`` returns numpy columns
in input order (p_neg, p_neu, p_pos, score, label, entropy, aleatoric, epistemic).
"""

from .cache import ScoreCache
from .labels import CANONICAL, canonical_label, canonical_order
from .lexicon import LexiconModel
from .metrics import accuracy, expected_calibration_error, macro_f1
from .model import SentimentModel
from .scoring import score_file
from .training import train_sentiment
from .uncertainty import decompose

__all__ = [
    "CANONICAL",
    "LexiconModel",
    "ScoreCache",
    "SentimentModel",
    "accuracy",
    "canonical_label",
    "canonical_order",
    "decompose",
    "expected_calibration_error",
    "macro_f1",
    "score_file",
    "train_sentiment",
]
