"""Causal dynamic-factor regimes: mood, volatility and liquidity factors with labels."""

from models.regimes.config import DEFAULT_ANCHORS, DEFAULT_BLOCKS, RegimeConfig
from models.regimes.dfm import DegenerateWindowError, FittedDFM, fit_dfm
from models.regimes.kalman import FilterState, StateSpace, run_filter
from models.regimes.labels import HIGH, LABEL_NAMES, LOW, NORMAL, UNKNOWN
from models.regimes.model import FitRecord, RegimeModel

__all__ = [
    "DEFAULT_ANCHORS",
    "DEFAULT_BLOCKS",
    "HIGH",
    "LABEL_NAMES",
    "LOW",
    "NORMAL",
    "UNKNOWN",
    "DegenerateWindowError",
    "FilterState",
    "FitRecord",
    "FittedDFM",
    "RegimeConfig",
    "RegimeModel",
    "StateSpace",
    "fit_dfm",
    "run_filter",
]
