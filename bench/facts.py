"""Stylized-fact cost on real 1-minute BTC prices, beside a same-run baseline.

Baseline: the four return moments with scipy.stats.describe (the least any validator does).
Figures: `evaluate` (every fact) and `moment_vector` (the calibration objective's moments),
at the file's length and tiled 10x, as seconds and as multiples of the baseline.
Usage: python bench/facts.py [CSV_GZ]   (default: ../shared/data Binance.US BTCUSDT 1-minute)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import orjson
import polars as pl
from scipy import stats

from calibrate.facts import MarketSeries, evaluate, moment_vector

DEFAULT = (
    Path(__file__).resolve().parents[1]
    / "../shared/data/binanceus_1m_mar2023/binanceus_BTCUSDT_1m_20230301_20230321.csv.gz"
)


def best(fn, arg, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(arg)
        times.append(time.perf_counter() - t0)
    return min(times)


def describe_returns(p: np.ndarray):
    return stats.describe(np.diff(p) / p[:-1])


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    df = pl.read_csv(path)
    price, volume = df["close"].to_numpy().astype(float), df["volume"].to_numpy().astype(float)
    for tile in (1, 10):
        # tiled by chaining returns, so the longer series keeps the real return distribution
        r = np.tile(np.diff(np.log(price)), tile)
        p = price[0] * np.exp(np.concatenate(([0.0], np.cumsum(r))))
        v = np.tile(volume, tile)[: len(p)]
        t = np.arange(len(p), dtype=np.int64) * 60_000_000_000
        s = MarketSeries(price=p, t_ns=t, volume=v, signed_volume=v * np.sign(np.diff(p, prepend=p[0])))
        base = best(describe_returns, p)
        for name, fn in (("evaluate", evaluate), ("moment_vector", moment_vector)):
            sec = best(fn, s)
            print(
                orjson.dumps(
                    {
                        "figure": f"facts_{name}_seconds",
                        "returns": len(p) - 1,
                        "seconds": round(sec, 4),
                        "baseline_describe_seconds": round(base, 5),
                        "ratio_to_baseline": round(sec / base, 1),
                        "source": path.name,
                    }
                ).decode()
            )


if __name__ == "__main__":
    main()
