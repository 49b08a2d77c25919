"""Returns and their distribution: log/simple returns, moments, kurtosis across horizons.

Facts use log returns (additive across horizons); the report's `moments` block uses simple
returns because that is what a reader compares with a price chart.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats


def log_returns(price: np.ndarray) -> np.ndarray:
    """log(p_t / p_{t-1}), NaN where either price is missing or not positive (length n - 1)."""
    p = np.asarray(price, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        lp = np.where(p > 0, np.log(p), np.nan)
    return np.diff(lp)


def simple_returns(price: np.ndarray) -> np.ndarray:
    """p_t / p_{t-1} - 1, NaN where either price is missing or not positive."""
    p = np.asarray(price, dtype=np.float64)
    p = np.where(p > 0, p, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        return p[1:] / p[:-1] - 1.0


def finite(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x[np.isfinite(x)]


def moments(r: np.ndarray) -> dict[str, float]:
    """n, mean, std (ddof 1), skew, excess kurtosis, min, max of the finite values of `r`."""
    x = finite(r)
    n = len(x)
    nan = math.nan
    if n == 0:
        return {"n": 0, "mean": nan, "std": nan, "skew": nan, "excess_kurtosis": nan,
                "min": nan, "max": nan}
    std = float(np.std(x, ddof=1)) if n > 1 else nan
    flat = n < 3 or not std > 0
    return {"n": n, "mean": float(np.mean(x)), "std": std,
            "skew": nan if flat else float(stats.skew(x)),
            "excess_kurtosis": nan if flat or n < 4 else float(stats.kurtosis(x)),
            "min": float(np.min(x)), "max": float(np.max(x))}


def aggregate(r: np.ndarray, h: int) -> np.ndarray:
    """Sums of non-overlapping blocks of `h` consecutive log returns (a trailing part is dropped)."""
    m = len(r) // h
    return r[: m * h].reshape(m, h).sum(axis=1)


def horizons(n: int, min_obs: int) -> list[int]:
    """1, 2, 5, 10, 20, 50, ... while at least `min_obs` blocks remain."""
    out, h = [], 1
    while n // h >= min_obs:
        out.append(h)
        h = h * 5 // 2 if str(h)[0] == "2" else h * 2
    return out


def kurtosis_by_horizon(r: np.ndarray, min_obs: int) -> tuple[np.ndarray, np.ndarray]:
    """Horizons (in bars) and the excess kurtosis of returns aggregated over each."""
    x = finite(r)
    hs = horizons(len(x), min_obs)
    k = [float(stats.kurtosis(aggregate(x, h))) if np.std(aggregate(x, h)) > 0 else math.nan
         for h in hs]
    return np.asarray(hs, dtype=np.int64), np.asarray(k, dtype=np.float64)
