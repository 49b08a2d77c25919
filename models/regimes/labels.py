"""Regime labels per factor: low / normal / high by causal quantile thresholds.

Why quantiles of the filtered factor on the fit window: they need no extra model,
are re-estimated at every refit from data the model has already seen, and give
labels with a known base rate (by default 20 % low, 60 % normal, 20 % high over
the window). A factor that has not been estimated yet (before the first fit)
gets UNKNOWN.
"""

from __future__ import annotations

import numpy as np

UNKNOWN, LOW, NORMAL, HIGH = -1, 0, 1, 2
LABEL_NAMES = {UNKNOWN: "unknown", LOW: "low", NORMAL: "normal", HIGH: "high"}


def quantile_thresholds(window_factors: np.ndarray, quantiles: tuple[float, float]) -> np.ndarray:
    """(2 x blocks) low/high thresholds from the filtered factors of the fit window."""
    return np.quantile(window_factors, quantiles, axis=0)


def label_factors(factors: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """int8 labels (rows x blocks): LOW below the low threshold, HIGH above the high one."""
    labels = np.full(factors.shape, NORMAL, dtype=np.int8)
    labels[factors < thresholds[0]] = LOW
    labels[factors > thresholds[1]] = HIGH
    labels[np.isnan(factors)] = UNKNOWN
    return labels
