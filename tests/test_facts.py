"""Each stylized fact on a series whose answer is known by construction."""

from __future__ import annotations

import math

import numpy as np
import pytest

from calibrate.facts import FactParams, MarketSeries, bands, evaluate
from calibrate.facts.liquidity import impact_fact, volume_volatility_fact
from calibrate.facts.memory import (
    acf,
    arch_fact,
    linear_autocorrelation_fact,
    powerlaw_exponent,
    sign_memory_fact,
    volatility_clustering_fact,
    volatility_decay_fact,
)
from calibrate.facts.seasonality import seasonality_fact
from calibrate.facts.suite import aggregational_fact
from calibrate.facts.tails import ad_fact, excess_kurtosis_fact, hill_fact, ks_fact

P = FactParams()
B = bands()


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed))


def garch(n: int, seed: int, a: float = 0.15, b: float = 0.8) -> np.ndarray:
    """GARCH(1,1) with unit unconditional variance (reference loop, test code only)."""
    z = rng(seed).standard_normal(n)
    r = np.empty(n)
    s2 = 1.0
    for i in range(n):
        r[i] = math.sqrt(s2) * z[i]
        s2 = (1 - a - b) + a * r[i] ** 2 + b * s2
    return r


def renewal_signs(n: int, gamma: float, seed: int) -> np.ndarray:
    """Runs of equal signs with P(L >= l) = l^-(1+gamma): ACF(tau) ~ tau^-gamma (Lillo-Farmer)."""
    g = rng(seed)
    lengths = np.floor(g.random(n) ** (-1 / (1 + gamma))).astype(np.int64)
    return np.repeat(g.choice([-1.0, 1.0], n), lengths)[:n]


def test_hill_recovers_student_t_tail_index():
    est = [hill_fact(rng(s).standard_t(3, 20_000), B["hill_tail_index"], P) for s in range(3)]
    for f in est:
        assert abs(f.value - 3.0) < 0.4, f
        assert f.passed is True
        assert 0 < f.detail["k_lo"] < f.detail["k_hi"] <= 0.03 * 20_000


def test_hill_on_exact_pareto_tail():
    g = rng(7)
    x = g.pareto(3.0, 20_000) + 1.0          # P(X > x) = x^-3 exactly
    f = hill_fact(x * g.choice([-1, 1], 20_000), B["hill_tail_index"], P)
    assert abs(f.value - 3.0) < 0.2


def test_gaussian_has_no_fat_tails():
    r = rng(1).standard_normal(20_000)
    assert excess_kurtosis_fact(r, B["excess_kurtosis"], P).passed is False
    hill = hill_fact(r, B["hill_tail_index"], P)
    assert hill.value > 5.0 and hill.passed is False
    agg = aggregational_fact(r, B["aggregational_gaussianity"], P)
    assert agg.passed is None and "Gaussian" in agg.reason


def test_garch_clusters_and_iid_does_not():
    g = garch(20_000, 2)
    iid = rng(2).standard_t(5, 20_000)
    assert volatility_clustering_fact(g, B["volatility_clustering"], P).passed is True
    assert arch_fact(g, B["arch_effect"], P).passed is True
    vc = volatility_clustering_fact(iid, B["volatility_clustering"], P)
    assert vc.passed is False and abs(vc.value) < 0.02
    assert arch_fact(iid, B["arch_effect"], P).passed is False
    # no linear memory in either
    assert linear_autocorrelation_fact(g, B["linear_autocorrelation"], P).passed is True
    lin = linear_autocorrelation_fact(iid, B["linear_autocorrelation"], P)
    assert lin.passed is True and lin.detail["ljung_box_p"] > 0.01


def test_linear_autocorrelation_flags_ar1():
    e = rng(3).standard_normal(10_000)
    x = np.empty_like(e)
    x[0] = e[0]
    for i in range(1, len(e)):
        x[i] = 0.3 * x[i - 1] + e[i]
    f = linear_autocorrelation_fact(x, B["linear_autocorrelation"], P)
    assert f.passed is False and abs(f.detail["acf_lag1"] - 0.3) < 0.03
    assert f.detail["ljung_box_p"] < 1e-6


def test_acf_matches_direct_formula():
    x = rng(4).standard_normal(500)
    d = x - x.mean()
    direct = [np.sum(d[:-k] * d[k:]) / np.sum(d * d) for k in (1, 2, 3)]
    np.testing.assert_allclose(acf(x, 3), direct, atol=1e-12)


def test_powerlaw_fit_is_exact_on_a_power_law():
    lags = np.arange(1, 101)
    beta, r2, pts = powerlaw_exponent(0.4 * lags ** -0.35)
    assert beta == pytest.approx(0.35, abs=1e-9) and r2 == pytest.approx(1.0) and pts >= 20


def test_volatility_decay_exponent_of_garch_is_fast_and_iid_has_none():
    # GARCH memory is exponential: the power-law fit is steep, outside the long-memory band
    assert volatility_decay_fact(garch(20_000, 5), B["volatility_decay_exponent"], P).value > 0.6
    f = volatility_decay_fact(rng(5).standard_normal(20_000), B["volatility_decay_exponent"], P)
    assert f.passed is None and "noise level" in f.reason


def test_aggregational_gaussianity_on_garch_and_t():
    f = aggregational_fact(rng(6).standard_t(6, 50_000), B["aggregational_gaussianity"], P)
    assert f.passed is True and f.value < 0.3           # i.i.d.: kurtosis falls like 1/h
    assert list(f.detail["horizons"][:4]) == [1, 2, 5, 10]


def test_order_sign_memory_recovers_exponent():
    est = [sign_memory_fact(renewal_signs(200_000, 0.5, s), B["order_sign_memory"], P).value
           for s in range(4)]
    assert abs(float(np.median(est)) - 0.5) < 0.1, est
    assert all(abs(v - 0.5) < 0.2 for v in est), est
    iid = sign_memory_fact(rng(9).choice([-1.0, 1.0], 200_000), B["order_sign_memory"], P)
    assert iid.passed is None and math.isnan(iid.value)


def test_price_impact_concave_vs_linear():
    g = rng(10)
    v = g.choice([-1, 1], 20_000) * g.lognormal(0, 1, 20_000)
    noise = 1e-4 * g.standard_normal(20_000)
    sqrt_law = impact_fact(1e-4 * np.sign(v) * np.abs(v) ** 0.5 + noise, v,
                           B["price_impact_concavity"], P)
    linear = impact_fact(1e-4 * v + noise, v, B["price_impact_concavity"], P)
    assert abs(sqrt_law.value - 0.5) < 0.1 and sqrt_law.passed is True
    assert linear.value > 0.9 and linear.passed is False


def test_volume_volatility_correlation():
    g = rng(11)
    r = garch(5_000, 11)
    vol = np.exp(np.abs(r) + 0.5 * g.standard_normal(5_000))
    assert volume_volatility_fact(r, vol, B["volume_volatility_correlation"], P).passed is True
    other = volume_volatility_fact(r, g.lognormal(0, 1, 5_000), B["volume_volatility_correlation"], P)
    assert other.passed is False


def test_intraday_seasonality_needs_a_profile_and_days():
    n = 5 * 1440
    t = np.arange(n, dtype=np.int64) * 60_000_000_000 + 1_700_000_000_000_000_000
    hour = (t % 86_400_000_000_000) // 3_600_000_000_000
    g = rng(12)
    seasonal = g.standard_normal(n) * (1.0 + 0.8 * np.sin(2 * np.pi * hour / 24))
    f = seasonality_fact(seasonal, t, B["intraday_seasonality"], P)
    assert f.passed is True and f.value > 3
    flat = seasonality_fact(g.standard_normal(n), t, B["intraday_seasonality"], P)
    assert flat.passed is False
    short = seasonality_fact(seasonal[:1440], t[:1440], B["intraday_seasonality"], P)
    assert short.passed is None and "days" in short.reason
    daily = seasonality_fact(seasonal[:100], t[:100] * 1440, B["intraday_seasonality"], P)
    assert "not intraday" in daily.reason


def test_two_sample_tests_tell_distributions_apart():
    g = rng(13)
    a, b = g.standard_t(3, 5_000), g.standard_t(3, 5_000)
    assert ks_fact("return_ks", a, b, B["return_ks"], P).passed is True
    assert ad_fact(a, b, B["return_ad"], P).passed is True
    c = g.standard_normal(5_000)
    assert ks_fact("return_ks", c, a, B["return_ks"], P).passed is False
    assert ad_fact(c, a, B["return_ad"], P).passed is False


@pytest.mark.parametrize("n", [0, 1, 2, 10])
def test_short_inputs_degrade_to_nan_with_a_reason(n):
    price = 100 + np.arange(n, dtype=float)
    facts = evaluate(MarketSeries(price, volume=np.ones(n), signed_volume=np.ones(n),
                                  spread=np.full(n, 0.01), t_ns=np.arange(n)),
                     reference=MarketSeries(price))
    assert len({f.name for f in facts}) == len(facts) == 18
    for f in facts:
        if f.name in ("spread_bps", "depth") and n:
            continue
        assert math.isnan(f.value) and f.passed is None and f.reason, f


def test_missing_prices_and_constant_series():
    price = np.full(500, 100.0)
    price[::7] = np.nan
    facts = {f.name: f for f in evaluate(MarketSeries(price))}
    assert facts["excess_kurtosis"].reason == "returns are constant"
    assert facts["volatility_clustering"].reason == "series is constant"
    assert facts["order_sign_memory"].reason == "no trade signs or signed volume"


def test_bands_are_configurable_and_validated():
    f = {x.name: x for x in evaluate(MarketSeries(np.exp(np.cumsum(garch(3_000, 14)) * 0.01)),
                                     band_overrides={"hill_tail_index": [None, 100],
                                                     "excess_kurtosis": None})}
    assert f["hill_tail_index"].passed is True and f["hill_tail_index"].band == (None, 100.0)
    assert f["excess_kurtosis"].passed is None and f["excess_kurtosis"].reason == "reported, not judged"
    with pytest.raises(ValueError, match="facts.bands.hill: unknown fact"):
        bands({"hill": [1, 2]})
    with pytest.raises(ValueError, match=r"facts.bands.spread_bps=\[3, 1\]: lo > hi"):
        bands({"spread_bps": [3, 1]})
    with pytest.raises(ValueError, match="facts.params.max_lags: unknown setting"):
        FactParams.from_dict({"max_lags": 3})
    with pytest.raises(ValueError, match="facts.params.max_lag=0"):
        FactParams.from_dict({"max_lag": 0})


def test_market_series_rejects_misaligned_columns():
    with pytest.raises(ValueError, match=r"sim.volume: 3 values for 4 prices"):
        MarketSeries(np.ones(4), volume=np.ones(3), label="sim")


def test_moment_vector_is_named_deterministic_and_matches_the_facts():
    from calibrate.facts import MOMENT_NAMES, moment_vector, moments_of

    g = rng(15)
    r = garch(5_000, 15) * 1e-3
    s = MarketSeries(100 * np.exp(np.cumsum(r)), volume=g.lognormal(0, 1, 5_000),
                     signed_volume=g.standard_normal(5_000), spread=np.full(5_000, 0.01))
    v = moment_vector(s)
    assert v.shape == (len(MOMENT_NAMES),) and v.dtype == np.float64
    np.testing.assert_array_equal(v, moment_vector(s))
    named = moments_of(s)
    facts = {f.name: f for f in evaluate(s)}
    assert named["hill_tail_index"] == facts["hill_tail_index"].value
    assert named["excess_kurtosis"] == pytest.approx(facts["excess_kurtosis"].value)
    assert named["acf_abs_1"] == pytest.approx(facts["volatility_clustering"].detail["acf_abs_lag1"])
    assert named["spread_bps_median"] == pytest.approx(1e4 * 0.01 / 100, rel=0.1)
    assert np.isfinite(v).all()
    short = moment_vector(MarketSeries(np.array([1.0, 1.1, 1.2])))
    assert np.isnan(short[2:]).all() and np.isfinite(short[:2]).all()
