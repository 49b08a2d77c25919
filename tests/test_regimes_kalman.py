"""Our Kalman filter against statsmodels' on the same DFM parameters and data."""

import warnings

import numpy as np
import pandas as pd
import pytest
from statsmodels.tsa.statespace.dynamic_factor_mq import DynamicFactorMQ

from models.regimes.dfm import flip_states
from models.regimes.kalman import FilterState, StateSpace, run_filter

NAMES = ["m1", "m2", "v1", "v2", "l1", "l2", "l3"]
FACTORS = {
    "m1": ["mood"], "m2": ["mood"], "v1": ["vol"], "v2": ["vol"],
    "l1": ["liq"], "l2": ["liq"], "l3": ["liq", "mood"],
}


def _data(n: int = 500) -> np.ndarray:
    rng = np.random.default_rng(np.random.SeedSequence(7))
    f = np.zeros((n, 3))
    for t in range(1, n):
        f[t] = 0.95 * f[t - 1] + 0.3 * rng.normal(size=3)
    cols = [f[:, 0], f[:, 0], f[:, 1], -f[:, 1], f[:, 2], f[:, 2], f[:, 2] + f[:, 0]]
    y = np.column_stack(cols) + 0.5 * rng.normal(size=(n, len(cols)))
    scattered = rng.random(y.shape) < 0.05
    scattered[350:] = False  # a complete tail lets the filter reach steady state
    y[scattered] = np.nan  # scattered missing entries
    y[[5, 6, 200, 301]] = np.nan  # fully missing rows
    y[100:104, :5] = np.nan  # a stretch with one or two observed series only
    return (y - np.nanmean(y, axis=0)) / np.nanstd(y, axis=0)


def _fitted() -> tuple[DynamicFactorMQ, object, np.ndarray]:
    y = _data()
    model = DynamicFactorMQ(
        pd.DataFrame(y, columns=NAMES), factors=FACTORS,
        factor_orders={("mood",): 2, ("vol",): 1, ("liq",): 1}, standardize=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = model.fit(maxiter=10, disp=False)
    return model, res, y


def _state_space(model: DynamicFactorMQ) -> StateSpace:
    sel = model["selection"]
    return StateSpace(
        np.array(model["transition"]), np.array(model["design"]),
        np.array(sel @ model["state_cov"] @ sel.T), np.array(model["obs_cov"]),
    )


@pytest.mark.parametrize("init", ["em", "stationary", "zero"])
def test_filter_equals_statsmodels_filtered_state(init: str) -> None:
    model, res, y = _fitted()
    k = model.k_states
    if init == "stationary":
        model.ssm.initialize(model._default_initialization())
        res = model.filter(res.params)
    elif init == "zero":  # P_0 = 0 makes F singular at t=0: univariate fallback
        model.ssm.initialize_known(np.zeros(k), np.zeros((k, k)))
        res = model.filter(res.params)
        assert res.filter_results.univariate_filter[0] == 1
    fr = res.filter_results
    state = FilterState.start(fr.initial_state, fr.initial_state_cov, y.shape[1])
    filtered, variances = run_filter(_state_space(model), state, y)

    np.testing.assert_allclose(filtered, res.filtered_state.T, rtol=0, atol=1e-8)
    sm_var = np.diagonal(res.filtered_state_cov, axis1=0, axis2=1)
    np.testing.assert_allclose(variances, sm_var, rtol=0, atol=1e-8)
    np.testing.assert_allclose(state.a, res.predicted_state[:, -1], rtol=0, atol=1e-8)
    np.testing.assert_allclose(state.p, res.predicted_state_cov[:, :, -1], rtol=0, atol=1e-8)


def test_filter_follows_statsmodels_steady_state_freeze() -> None:
    model, res, y = _fitted()
    fr = res.filter_results
    assert fr.converged  # the data end with a long complete stretch
    state = FilterState.start(fr.initial_state, fr.initial_state_cov, y.shape[1])
    filtered, _ = run_filter(_state_space(model), state, y)
    assert state.flags[0] == 1
    tail = slice(fr.period_converged, None)
    # Tighter than 1e-8: ignoring the freeze leaves errors of ~1e-9 here.
    np.testing.assert_allclose(filtered[tail], res.filtered_state.T[tail], rtol=0, atol=1e-12)


def test_row_by_row_equals_one_call_bit_for_bit() -> None:
    model, res, y = _fitted()
    fr = res.filter_results
    ss = _state_space(model)
    whole = FilterState.start(fr.initial_state, fr.initial_state_cov, y.shape[1])
    expected, _ = run_filter(ss, whole, y)
    stepped = FilterState.start(fr.initial_state, fr.initial_state_cov, y.shape[1])
    rows = np.vstack([run_filter(ss, stepped, y[t : t + 1])[0] for t in range(len(y))])
    assert np.array_equal(rows, expected)
    assert np.array_equal(stepped.p, whole.p)


def test_sign_flip_is_the_same_model_in_flipped_coordinates() -> None:
    model, res, y = _fitted()
    fr = res.filter_results
    ss = _state_space(model)
    base = FilterState.start(fr.initial_state, fr.initial_state_cov, y.shape[1])
    expected, expected_var = run_filter(ss, base, y)
    signs = np.ones(model.k_states)
    signs[:2] = -1.0  # mood factor and its lag
    flipped_ss = _state_space(model)
    flipped = FilterState.start(fr.initial_state, fr.initial_state_cov, y.shape[1])
    flip_states(flipped_ss, flipped, signs)
    got, got_var = run_filter(flipped_ss, flipped, y)
    np.testing.assert_allclose(got, expected * signs, rtol=0, atol=1e-10)
    np.testing.assert_allclose(got_var, expected_var, rtol=0, atol=1e-10)
    assert got[50, 0] == pytest.approx(-expected[50, 0])
