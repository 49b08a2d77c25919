"""Regime model per-step cost: our causal Kalman update vs statsmodels `results.extend`.

Builds per-minute features from real data (Binance.US BTC 1-minute candles for
2023-03-01..21, the SVB / USDC de-peg weeks, plus the daily Fear & Greed index
forward-filled as the only real sentiment level available at that time), fits the
block DFM on the first `--window` minutes, then filters the following minutes
three ways in one run: statsmodels `results.extend(row)` chained row by row (the
baseline), our numba kernel one row per call, and the public
`RegimeModel.update(row)`. Also times a warm-started refit against a cold one and a
full causal replay with scheduled refits. One JSON line per figure.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from statsmodels.tsa.statespace.dynamic_factor_mq import DynamicFactorMQ

from models.regimes import RegimeConfig, RegimeModel, fit_dfm, run_filter
from models.regimes.dfm import statsmodels_factors

DEFAULT_DATA = Path(__file__).resolve().parents[1] / "../shared/data"

# What the candles can stand in for; the live pipeline feeds the default blocks.
BLOCKS = {
    "mood": ("fear_greed", "ret_60m"),
    "volatility": ("realized_var", "abs_return", "hl_range"),
    "liquidity": ("cs_spread", "amihud", "log_volume", "usd_usdt_basis"),
}
ANCHORS = {"mood": "fear_greed", "volatility": "realized_var", "liquidity": "cs_spread"}


def _candles(data: Path, pair: str) -> pd.DataFrame:
    path = data / f"binanceus_1m_mar2023/binanceus_{pair}_1m_20230301_20230321.csv.gz"
    frame = pd.read_csv(path)
    frame["open_time"] = pd.to_datetime(frame["open_time"], utc=True)
    return frame.set_index("open_time")


def build_features(data: Path) -> tuple[np.ndarray, list[str]]:
    """Per-minute features in BLOCKS order (NaN where a minute has no trade)."""
    usdt = _candles(data, "BTCUSDT")
    usd = _candles(data, "BTCUSD")
    fng = pd.read_csv(data / "fear_greed/fear_and_greed_index_2018-02-01_2026-03-12.csv")
    fng["date"] = pd.to_datetime(fng["date"], utc=True)
    fng = fng.set_index("date")["value"].sort_index().astype(float)
    traded = usdt["volume"] > 0
    close = usdt["close"].where(traded).ffill()
    ret = np.log(close).diff()
    high, low = usdt["high"].where(traded), usdt["low"].where(traded)
    hl = np.log(high / low)
    # Corwin-Schultz (2012) two-minute high-low spread estimator, floored at zero.
    beta = hl**2 + hl.shift(1) ** 2
    gamma = np.log(high.rolling(2).max() / low.rolling(2).min()) ** 2
    k = 3.0 - 2.0 * np.sqrt(2.0)
    alpha = (np.sqrt(2.0 * beta) - np.sqrt(beta)) / k - np.sqrt(gamma / k)
    cs = (2.0 * (np.exp(alpha) - 1.0) / (1.0 + np.exp(alpha))).clip(lower=0.0)
    dollar_volume = (usdt["volume"] * usdt["close"]).where(traded)
    usd_close = usd["close"].where(usd["volume"] > 0)
    columns = {
        "fear_greed": fng.reindex(usdt.index, method="ffill"),
        "ret_60m": np.log(close).diff(60),
        "realized_var": ret.where(traded) ** 2,
        "abs_return": ret.abs().where(traded),
        "hl_range": hl,
        "cs_spread": cs,
        "amihud": 1e6 * ret.abs().where(traded) / dollar_volume,
        "log_volume": np.log(dollar_volume),
        "usd_usdt_basis": np.log(usd_close / close).abs(),
    }
    names = [s for series in BLOCKS.values() for s in series]
    return np.column_stack([columns[s].to_numpy(dtype=float) for s in names]), names


def emit(figure: str, value: float, unit: str, **extra: object) -> None:
    print(json.dumps({"bench": "regimes", "figure": figure, "value": value, "unit": unit,
                      **extra}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--window", type=int, default=2880, help="rows of the first fit")
    parser.add_argument("--steps", type=int, default=5000, help="rows timed for our filter")
    parser.add_argument("--sm-steps", type=int, default=60, help="rows timed for extend")
    parser.add_argument("--replay-refit-every", type=int, default=720)
    args = parser.parse_args()

    x, names = build_features(args.data)
    emit("rows", x.shape[0], "minutes", series=x.shape[1],
         missing_share=round(float(np.isnan(x).mean()), 4))
    w = args.window
    config = RegimeConfig(blocks=BLOCKS, anchors=ANCHORS, min_history=w, fit_window=w,
                          refit_every=10**9, em_maxiter=30)

    start = time.perf_counter()
    fit = fit_dfm(x[:w], config)
    emit("fit_seconds", time.perf_counter() - start, "s", rows=w, em_iterations=fit.em_iterations,
         k_states=fit.ss.k_states)
    emit("fit_signs", 0, "", signs=dict(zip(config.block_names, fit.signs.tolist(), strict=True)))

    # Baseline: statsmodels' own filter continued with results.extend, one row at a time.
    model = DynamicFactorMQ(
        pd.DataFrame((x[:w] - fit.mean) / fit.std, columns=names),
        factors=statsmodels_factors(config),
        factor_orders={(b,): 1 for b in config.block_names}, standardize=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = model.fit(maxiter=config.em_maxiter, tolerance=config.em_tolerance, disp=False)
    new = (x[w : w + args.steps] - fit.mean) / fit.std
    rows = [pd.DataFrame(new[i : i + 1], columns=names, index=pd.RangeIndex(w + i, w + i + 1))
            for i in range(args.sm_steps)]
    sm_states = []
    current = res
    start = time.perf_counter()
    for row in rows:
        current = current.extend(row)
        sm_states.append(current.filtered_state[:, 0])
    sm_per_row = (time.perf_counter() - start) / args.sm_steps

    # Ours: the numba kernel, one row per call (as a replay stage drives it).
    state = fit.end_state.copy()
    run_filter(fit.ss, state.copy(), new[:1])  # compile / load cache outside the timing
    ours = np.empty((args.steps, fit.ss.k_states))
    start = time.perf_counter()
    for i in range(args.steps):
        ours[i] = run_filter(fit.ss, state, new[i : i + 1])[0][0]
    kernel_per_row = (time.perf_counter() - start) / args.steps
    # Same rows through one statsmodels filter run (chained extends restart its
    # steady-state detection at every row; a single run is what we reproduce).
    one_run = res.extend(pd.DataFrame(new[: args.sm_steps], columns=names,
                                      index=pd.RangeIndex(w, w + args.sm_steps)))
    signs = np.ones(fit.ss.k_states)
    signs[fit.factor_index] = fit.signs
    diff = np.abs(ours[: args.sm_steps] - one_run.filtered_state.T * signs).max()
    diff_chained = np.abs(ours[: args.sm_steps] - np.array(sm_states) * signs).max()

    # Ours: the public streaming API (standardise, filter, z-score, label).
    regime = RegimeModel(config)
    regime.run(x[:w], names)  # history only: the fit happens at the next update
    regime.update(x[w])
    start = time.perf_counter()
    for i in range(w + 1, w + 1 + args.steps):
        regime.update(x[i])
    update_per_row = (time.perf_counter() - start) / args.steps

    emit("statsmodels_extend_per_row", sm_per_row * 1e3, "ms", rows=args.sm_steps)
    emit("kalman_step", kernel_per_row * 1e6, "us", rows=args.steps,
         speedup_vs_extend=round(sm_per_row / kernel_per_row, 1))
    emit("regime_model_update", update_per_row * 1e6, "us", rows=args.steps,
         speedup_vs_extend=round(sm_per_row / update_per_row, 1))
    emit("max_abs_diff_vs_extend", float(diff), "", rows=args.sm_steps,
         vs_chained_extends=float(diff_chained))

    # Warm start: refit the next window from the previous parameters vs from scratch.
    tight = RegimeConfig(blocks=BLOCKS, anchors=ANCHORS, min_history=w, fit_window=w,
                         em_maxiter=300, em_tolerance=1e-6)
    nxt = x[args.replay_refit_every : args.replay_refit_every + w]
    base = fit_dfm(x[:w], tight)
    for label, start_params in (("cold", None), ("warm", base.params)):
        start = time.perf_counter()
        refit = fit_dfm(nxt, tight, start_params=start_params)
        emit(f"refit_{label}", time.perf_counter() - start, "s", em_iterations=refit.em_iterations)

    # Full causal replay of every minute with scheduled refits.
    replay = RegimeConfig(blocks=BLOCKS, anchors=ANCHORS, min_history=w, fit_window=w,
                          refit_every=args.replay_refit_every, em_maxiter=30)
    model_all = RegimeModel(replay)
    start = time.perf_counter()
    out = model_all.run(x, names)
    total = time.perf_counter() - start
    emit("replay_total", total, "s", rows=x.shape[0], fits=len(model_all.fits),
         failed_fits=sum(not f.ok for f in model_all.fits),
         per_row_us=round(total / x.shape[0] * 1e6, 1))
    live = out["fit_id"] >= 0
    for b in replay.block_names:
        shares = np.bincount(out[f"{b}_label"][live], minlength=3) / live.sum()
        emit(f"label_share_{b}", 0, "", low=round(float(shares[0]), 3),
             normal=round(float(shares[1]), 3), high=round(float(shares[2]), 3))
    vol = out["volatility"][live]
    rv = x[live, names.index("realized_var")]
    ok = ~np.isnan(rv)
    emit("corr_volatility_factor_vs_realized_var", float(np.corrcoef(vol[ok], rv[ok])[0, 1]), "")


if __name__ == "__main__":
    main()
