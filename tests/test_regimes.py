"""RegimeModel: streaming == batch, causality, sign anchors, labels, refit schedule."""

import warnings

import numpy as np
import pandas as pd
import pytest
from statsmodels.tsa.statespace.dynamic_factor_mq import DynamicFactorMQ

from models.regimes import (
    HIGH,
    LOW,
    NORMAL,
    UNKNOWN,
    RegimeConfig,
    RegimeModel,
    fit_dfm,
    run_filter,
)
from models.regimes.dfm import statsmodels_factors
from models.regimes.labels import label_factors, quantile_thresholds

CONFIG = RegimeConfig(min_history=120, refit_every=60, fit_window=240, em_maxiter=5, min_obs=20)


def _features(n: int = 330, seed: int = 3, mood_trend: float = 0.0) -> np.ndarray:
    """Three AR(1) factors seen through the ten default series, with missing values."""
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    f = np.zeros((n, 3))
    for t in range(1, n):
        f[t] = 0.9 * f[t - 1] + 0.4 * rng.normal(size=3)
    f[:, 0] += mood_trend * np.arange(n)
    load = {
        "sentiment": (0, 1.0), "sentiment_unc": (0, -0.8), "post_rate": (0, 0.6),
        "realized_var": (1, 1.0), "abs_return": (1, 0.9), "hl_range": (1, 0.8),
        "spread": (2, 1.0), "depth": (2, -0.9), "abs_imbalance": (2, 0.5), "ofi": (2, 0.3),
    }
    x = np.column_stack(
        [3.0 + w * f[:, j] + 0.4 * rng.normal(size=n) for j, w in load.values()]
    )
    assert list(load) == list(CONFIG.series)
    x[rng.random(x.shape) < 0.08] = np.nan
    x[[40, 150, 151]] = np.nan
    return x


def _stack(out: dict[str, np.ndarray], suffix: str = "") -> np.ndarray:
    return np.column_stack([out[b + suffix] for b in CONFIG.block_names])


def test_batch_run_equals_step_by_step_updates() -> None:
    x = _features()
    batch = RegimeModel(CONFIG).run(x, list(CONFIG.series))
    stream = RegimeModel(CONFIG)
    steps = [stream.update(row) for row in x]
    factors = np.vstack([f for f, _ in steps])
    labels = np.vstack([lab for _, lab in steps])
    assert np.array_equal(factors, _stack(batch), equal_nan=True)
    assert np.array_equal(labels, _stack(batch, "_label"))
    assert np.isfinite(factors[CONFIG.min_history :]).all()


def test_run_in_pieces_and_with_shuffled_columns_is_identical() -> None:
    x = _features()
    whole = RegimeModel(CONFIG).run(x, list(CONFIG.series))
    order = np.random.default_rng(0).permutation(len(CONFIG.series))
    names = [CONFIG.series[i] for i in order]
    pieces = RegimeModel(CONFIG)
    parts = [pieces.run(x[a:b][:, order], names) for a, b in ((0, 97), (97, 200), (200, 330))]
    for key, col in whole.items():
        assert np.array_equal(np.concatenate([p[key] for p in parts]), col, equal_nan=True)


def test_outputs_do_not_depend_on_future_rows() -> None:
    x = _features()
    base = RegimeModel(CONFIG).run(x, list(CONFIG.series))
    for t in (130, 180, 239):  # between refits and just before one (at 240)
        altered = x.copy()
        altered[t + 1 :] = np.random.default_rng(t).normal(size=altered[t + 1 :].shape) * 50
        out = RegimeModel(CONFIG).run(altered, list(CONFIG.series))
        for key, col in base.items():
            assert np.array_equal(out[key][: t + 1], col[: t + 1], equal_nan=True), (key, t)
        assert not np.array_equal(out["mood"][t + 1 :], base["mood"][t + 1 :])


@pytest.mark.parametrize("trend", [0.1, -0.1])
def test_mood_factor_follows_sentiment_direction(trend: float) -> None:
    x = _features(mood_trend=trend)
    model = RegimeModel(CONFIG)
    out = model.run(x, list(CONFIG.series))
    for fit_id in range(4):  # within each fit: mood rises iff sentiment was built to rise
        rows = np.nonzero(out["fit_id"] == fit_id)[0]
        assert np.corrcoef(rows, out["mood"][rows])[0, 1] * np.sign(trend) > 0.5
    fit = model.fitted
    rows = {s: i for i, s in enumerate(CONFIG.series)}
    for b, j in zip(CONFIG.block_names, fit.factor_index, strict=True):
        assert fit.ss.design[rows[CONFIG.anchors[b]], j] > 0  # anchor loads positively


def test_each_factor_tracks_its_anchor_series() -> None:
    x = _features()
    out = RegimeModel(CONFIG).run(x, list(CONFIG.series))
    live = slice(CONFIG.min_history, None)
    series = {s: x[live, i] for i, s in enumerate(CONFIG.series)}
    for block, anchor in CONFIG.anchors.items():
        ok = ~np.isnan(series[anchor])
        assert np.corrcoef(out[block][live][ok], series[anchor][ok])[0, 1] > 0.6, block


def test_wider_spread_means_liquidity_stress_up() -> None:
    x = _features()
    x[:, CONFIG.series.index("depth")] *= -1.0  # depth now co-moves with the spread
    x[:, CONFIG.series.index("spread")] *= -1.0  # and the spread is inverted
    out = RegimeModel(CONFIG).run(x, list(CONFIG.series))
    live = slice(CONFIG.min_history, None)
    spread = x[live, CONFIG.series.index("spread")]
    ok = ~np.isnan(spread)
    assert np.corrcoef(out["liquidity"][live][ok], spread[ok])[0, 1] > 0.6


def test_refit_schedule_and_fit_ids() -> None:
    model = RegimeModel(CONFIG)
    out = model.run(_features(), list(CONFIG.series))
    assert [r.step for r in model.fits] == [120, 180, 240, 300]
    assert all(r.ok for r in model.fits)
    expected = np.repeat([-1, 0, 1, 2, 3], [120, 60, 60, 60, 30])
    assert np.array_equal(out["fit_id"], expected)
    assert np.isnan(out["mood"][:120]).all() and (out["mood_label"][:120] == UNKNOWN).all()


def test_failed_fit_keeps_waiting_on_schedule_and_keeps_previous_fit() -> None:
    x = _features()
    x[:150, CONFIG.series.index("post_rate")] = np.nan  # too sparse for the first fit
    model = RegimeModel(CONFIG)
    out = model.run(x, list(CONFIG.series))
    assert [(r.step, r.ok) for r in model.fits] == [
        (120, False), (180, True), (240, True), (300, True)
    ]
    assert "post_rate" in model.fits[0].message
    assert np.isnan(out["mood"][:180]).all()
    assert np.isfinite(out["mood"][180:]).all()


def test_fit_window_only_uses_the_most_recent_rows() -> None:
    x = _features()
    model = RegimeModel(CONFIG)
    model.run(x, list(CONFIG.series))
    window = x[300 - CONFIG.fit_window : 300]
    np.testing.assert_allclose(model.fitted.mean, np.nanmean(window, axis=0), rtol=1e-12)
    np.testing.assert_allclose(model.fitted.std, np.nanstd(window, axis=0), rtol=1e-12)


def test_warm_start_needs_fewer_em_iterations() -> None:
    cfg = RegimeConfig(min_history=120, fit_window=240, em_maxiter=200, em_tolerance=1e-6)
    window = _features()[:240]
    cold = fit_dfm(window, cfg)
    warm = fit_dfm(window, cfg, start_params=cold.params)
    assert cold.em_iterations > 5
    assert warm.em_iterations < cold.em_iterations


def test_continuation_after_fit_equals_statsmodels_extend() -> None:
    """The streaming filter is statsmodels' `results.extend`, in anchored signs."""
    x = _features()
    window, new = x[:240], x[240:300]
    fit = fit_dfm(window, CONFIG)
    model = DynamicFactorMQ(
        pd.DataFrame((window - fit.mean) / fit.std, columns=list(CONFIG.series)),
        factors=statsmodels_factors(CONFIG),
        factor_orders={(b,): 1 for b in CONFIG.block_names}, standardize=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = model.fit(maxiter=CONFIG.em_maxiter, tolerance=CONFIG.em_tolerance, disp=False)
    new_std = pd.DataFrame(
        (new - fit.mean) / fit.std, columns=list(CONFIG.series), index=pd.RangeIndex(240, 300)
    )
    extended = res.extend(new_std)
    ours, _ = run_filter(fit.ss, fit.end_state.copy(), new_std.to_numpy())
    state_signs = np.ones(fit.ss.k_states)
    state_signs[fit.factor_index] = fit.signs
    np.testing.assert_allclose(ours, extended.filtered_state.T * state_signs, rtol=0, atol=1e-8)


def test_labels_from_quantile_thresholds() -> None:
    window = np.arange(101, dtype=float).reshape(-1, 1) * np.array([[1.0, -1.0]])
    thresholds = quantile_thresholds(window, (0.2, 0.8))
    np.testing.assert_allclose(thresholds, [[20.0, -80.0], [80.0, -20.0]])
    factors = np.array([[10.0, -90.0], [50.0, -50.0], [90.0, -10.0], [np.nan, -50.0]])
    expected = [[LOW, LOW], [NORMAL, NORMAL], [HIGH, HIGH], [UNKNOWN, NORMAL]]
    assert np.array_equal(label_factors(factors, thresholds), np.array(expected, dtype=np.int8))


def test_labels_in_model_use_thresholds_of_the_fit_in_force() -> None:
    model = RegimeModel(CONFIG)
    out = model.run(_features(), list(CONFIG.series))
    last = out["fit_id"] == 3
    thresholds = quantile_thresholds(model.fitted.window_factors, CONFIG.label_quantiles)
    assert np.array_equal(_stack(out, "_label")[last], label_factors(_stack(out)[last], thresholds))
    window_labels = label_factors(model.fitted.window_factors, thresholds)
    share_high = np.mean(window_labels == HIGH)
    assert 0.15 < share_high < 0.25


def test_bad_config_and_inputs_name_the_setting() -> None:
    with pytest.raises(ValueError, match="regimes.refit_evry"):
        RegimeConfig.from_dict({"refit_evry": 5})
    with pytest.raises(ValueError, match="regimes.anchors.mood"):
        RegimeConfig(anchors={"mood": "spread", "volatility": "realized_var",
                              "liquidity": "spread"})
    with pytest.raises(ValueError, match="regimes.label_quantiles"):
        RegimeConfig(label_quantiles=(0.8, 0.2))
    model = RegimeModel(CONFIG)
    with pytest.raises(ValueError, match="row"):
        model.update(np.zeros(3))
    with pytest.raises(ValueError, match="names"):
        model.run(np.zeros((2, 10)), [f"x{i}" for i in range(10)])
    assert RegimeConfig.from_dict({"refit_every": 7}).refit_every == 7
