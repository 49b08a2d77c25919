"""Target bands and estimation settings of the stylized facts, with where each band comes from.

Bands are literature ranges for liquid markets, widened where crypto differs; every one can be
overridden from config (`facts.bands.<name>: [lo, hi]`, `null` for an open side, or `null` for
the whole band to report a fact without judging it). Unknown names are rejected.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from calibrate.facts.result import Band

# name -> (band, one-line definition). Sources: Cont (2001) "Empirical properties of asset
# returns: stylized facts and statistical issues", Quant. Finance 1; Bouchaud, Farmer & Lillo
# (2009) "How markets slowly digest changes in supply and demand"; Lillo & Farmer (2004)
# "The long memory of the efficient market"; Lillo, Farmer & Mantegna (2003) "Master curve
# for price-impact function", Nature 421; Chakraborti et al. (2011) "Econophysics review I".
FACTS: dict[str, tuple[Band | None, str]] = {
    "excess_kurtosis": (
        (1.0, None), "sample excess kurtosis of log returns (heavy tails: > 0; Cont 2001)"),
    "hill_tail_index": (
        (2.5, 4.5), "Hill estimate of the tail index of |r| on a stable k plateau "
                    "(Cont 2001: 2 < alpha <= 5; BTC 1-min about 3)"),
    "linear_autocorrelation": (
        (None, 0.1), "max |ACF(r)| over lags 1..linear_lags (returns are close to "
                     "uncorrelated beyond microstructure lags); Ljung-Box in detail"),
    "volatility_clustering": (
        (0.05, None), "mean ACF(|r|) over lags 1..cluster_lags (positive and slowly decaying)"),
    "volatility_decay_exponent": (
        (0.1, 0.6), "beta in ACF(|r|)(tau) ~ tau^-beta fitted on lags 1..max_lag "
                    "(Cont 2001: 0.2-0.4, widened)"),
    "arch_effect": (
        (None, 0.05), "p-value of Engle's ARCH-LM test with arch_lags lags "
                      "(small = conditional heteroskedasticity present)"),
    "aggregational_gaussianity": (
        (None, 0.5), "excess kurtosis at the longest horizon with >= kurt_min_obs blocks "
                     "divided by the excess kurtosis at the base horizon"),
    "volume_volatility_correlation": (
        (0.1, None), "Spearman correlation of bar volume and |r| (positive; Cont 2001)"),
    "leverage": (
        None, "mean over tau=1..leverage_lags of corr(r_t, r_{t+tau}^2); negative in equities, "
              "weak or inverted in crypto, so reported only"),
    "order_sign_memory": (
        (0.2, 0.9), "gamma in ACF(sign)(tau) ~ tau^-gamma (Lillo & Farmer 2004: about 0.5; "
                    "Bouchaud et al. 2009: 0.2-0.7)"),
    "price_impact_concavity": (
        (0.1, 0.9), "delta in E[sign(v) r | |v|] ~ |v|^delta over impact_bins size bins "
                    "(concave: delta < 1; square-root law about 0.5; Lillo et al. 2003)"),
    "spread_bps": (
        (0.0, 10.0), "median relative spread (ask - bid) / mid in basis points "
                     "(liquid crypto majors quote well under 10 bps)"),
    "depth": (None, "median displayed depth (units of the depth column); reported only"),
    "intraday_seasonality": (
        (1.2, None), "max / min of mean |r| by UTC hour of day; also needs a Kruskal-Wallis "
                     "p-value < seasonality_alpha across hours"),
    "return_ks": (
        (0.05, None), "two-sample Kolmogorov-Smirnov p-value, simulated vs real log returns"),
    "return_ad": (
        (0.05, None), "k-sample Anderson-Darling significance level, simulated vs real log "
                      "returns (scipy caps it to [0.001, 0.25])"),
    "spread_ks": ((0.05, None), "two-sample KS p-value, simulated vs real relative spread"),
    "depth_ks": ((0.05, None), "two-sample KS p-value, simulated vs real depth"),
}

DEFINITIONS: dict[str, str] = {k: v[1] for k, v in FACTS.items()}


def bands(overrides: dict[str, Any] | None = None) -> dict[str, Band | None]:
    """The default bands with `overrides` applied; a bad name or band raises naming it."""
    out: dict[str, Band | None] = {k: v[0] for k, v in FACTS.items()}
    for name, band in (overrides or {}).items():
        if name not in out:
            raise ValueError(f"facts.bands.{name}: unknown fact (known: {', '.join(sorted(out))})")
        if band is None:
            out[name] = None
            continue
        try:
            lo, hi = band
            lo = None if lo is None else float(lo)
            hi = None if hi is None else float(hi)
        except (TypeError, ValueError):
            raise ValueError(f"facts.bands.{name}={band!r}: expected [lo, hi] or null") from None
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"facts.bands.{name}={band!r}: lo > hi")
        out[name] = (lo, hi)
    return out


@dataclass(frozen=True)
class FactParams:
    """Estimation settings.

    min_returns: fewer finite returns than this and a fact is NaN with a reason.
    max_lag: lags of the ACF curves and of the power-law fits (1..max_lag).
    linear_lags, ljung_box_lags, cluster_lags, arch_lags, leverage_lags: lags of those tests.
    hill_k_lo, hill_k_hi: Hill is computed for k in [max(10, lo*n), hi*n] order statistics;
    hill_window: the plateau is the run of hill_window * (that range) consecutive k with the
        smallest coefficient of variation; the value is the median estimate on it.
    kurt_min_obs: a horizon counts for aggregational Gaussianity if it has that many blocks.
    impact_bins: quantile bins of |signed volume| of the impact curve.
    seasonality_min_days, seasonality_alpha: span needed for the intraday profile and the
        Kruskal-Wallis level it must reach.
    """

    min_returns: int = 50
    max_lag: int = 100
    linear_lags: int = 10
    ljung_box_lags: int = 10
    cluster_lags: int = 10
    arch_lags: int = 10
    leverage_lags: int = 10
    hill_k_lo: float = 0.002
    hill_k_hi: float = 0.03
    hill_window: float = 0.25
    kurt_min_obs: int = 250
    impact_bins: int = 10
    seasonality_min_days: float = 2.0
    seasonality_alpha: float = 0.01

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if not v > 0:
                raise ValueError(f"facts.params.{f.name}={v!r}: must be positive")
        if not self.hill_k_lo < self.hill_k_hi <= 0.5:
            raise ValueError(f"facts.params.hill_k_hi={self.hill_k_hi}: need hill_k_lo < hill_k_hi <= 0.5")
        if self.hill_window >= 1:
            raise ValueError(f"facts.params.hill_window={self.hill_window}: must be < 1")
        if self.seasonality_alpha >= 1:
            raise ValueError(f"facts.params.seasonality_alpha={self.seasonality_alpha}: must be < 1")

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> FactParams:
        """Build from config, rejecting unknown keys by name."""
        values = dict(values or {})
        known = {f.name: f.type for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"facts.params.{unknown[0]}: unknown setting (known: {', '.join(known)})")
        out = {}
        for k, v in values.items():
            cast = int if known[k] == "int" else float
            try:
                out[k] = cast(v)
            except (TypeError, ValueError):
                raise ValueError(f"facts.params.{k}={v!r}: expected a number") from None
        return cls(**out)
