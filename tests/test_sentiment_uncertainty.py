"""Pure numpy parts: entropy decomposition, metrics, label mapping."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.sentiment import (
    accuracy,
    canonical_label,
    canonical_order,
    decompose,
    expected_calibration_error,
    macro_f1,
)


def test_identical_samples_have_no_epistemic_uncertainty():
    p = np.array([0.2, 0.5, 0.3])
    out = decompose(np.tile(p, (1, 10, 1)))
    h = -np.sum(p * np.log(p))
    assert out["epistemic"][0] == pytest.approx(0.0, abs=1e-12)
    assert out["aleatoric"][0] == pytest.approx(h)
    assert out["entropy"][0] == pytest.approx(h)
    np.testing.assert_allclose(out["mean"][0], p)


def test_confident_opposite_samples_are_epistemic_not_aleatoric():
    eps = 1e-3
    a = np.array([1 - 2 * eps, eps, eps])
    b = np.array([eps, eps, 1 - 2 * eps])
    out = decompose(np.stack([a, b] * 5)[None])
    assert out["aleatoric"][0] < 0.02
    assert out["epistemic"][0] > 0.65  # close to ln 2 = 0.693: two equally likely classes
    assert out["entropy"][0] == pytest.approx(out["aleatoric"][0] + out["epistemic"][0])


def test_uniform_samples_are_purely_aleatoric():
    out = decompose(np.full((2, 4, 3), 1 / 3))
    np.testing.assert_allclose(out["aleatoric"], np.log(3))
    np.testing.assert_allclose(out["epistemic"], 0.0, atol=1e-12)


def test_zero_probabilities_are_handled():
    out = decompose(np.array([[[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]]))
    assert out["aleatoric"][0] == 0.0
    assert out["epistemic"][0] == pytest.approx(np.log(2))


def test_decompose_rejects_wrong_rank():
    with pytest.raises(ValueError, match="n_texts, T, n_classes"):
        decompose(np.ones((3, 3)))


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 30))
def test_mutual_information_is_nonnegative_and_bounded(seed, t):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet([0.3, 0.3, 0.3], size=(5, t))
    out = decompose(p)
    assert np.all(out["epistemic"] >= 0)
    assert np.all(out["entropy"] <= np.log(3) + 1e-12)
    np.testing.assert_allclose(out["entropy"], out["aleatoric"] + out["epistemic"], atol=1e-12)


def test_accuracy_and_macro_f1_by_hand():
    y = np.array([0, 0, 1, 1, 2, 2])
    pred = np.array([0, 1, 1, 1, 2, 0])
    assert accuracy(y, pred) == pytest.approx(4 / 6)
    # per-class F1: c0 tp1 fp1 fn1 -> .5, c1 tp2 fp1 fn0 -> .8, c2 tp1 fp0 fn1 -> 2/3
    assert macro_f1(y, pred, 3) == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)


def test_ece_zero_when_confidence_matches_accuracy_and_known_when_overconfident():
    probs = np.array([[0.75, 0.25, 0.0]] * 4)
    assert expected_calibration_error(probs, np.array([0, 0, 0, 1])) == pytest.approx(0.0)
    confident = np.array([[1.0, 0.0, 0.0]] * 4)
    assert expected_calibration_error(confident, np.array([0, 1, 1, 1])) == pytest.approx(0.75)


def test_labels_map_by_name_in_any_order():
    idx = canonical_order({0: "Bullish", 1: "Bearish", 2: "Neutral"})
    np.testing.assert_array_equal(idx, [1, 2, 0])
    assert canonical_label("NEGATIVE") == "neg"


def test_unmappable_and_duplicate_labels_are_named():
    with pytest.raises(ValueError, match="'joy'"):
        canonical_order({0: "joy", 1: "negative", 2: "neutral"})
    with pytest.raises(ValueError, match="two outputs"):
        canonical_order({0: "positive", 1: "bullish", 2: "neutral"})
    with pytest.raises(ValueError, match="exactly neg, neu and pos"):
        canonical_order({0: "positive", 1: "negative"})
