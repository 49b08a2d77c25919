"""Plotly figures of the report: real (blue) against simulated (red) wherever both exist.

Each function takes the series (the simulated one may be None) and returns a figure, or None
when there is nothing to draw. Long series are thinned for drawing only; facts use all points.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from scipy import stats

from calibrate.facts import FactParams, MarketSeries
from calibrate.facts.liquidity import impact_curve
from calibrate.facts.memory import acf, noise_level
from calibrate.facts.returns import finite, kurtosis_by_horizon
from calibrate.facts.seasonality import DAY_NS, HOUR_NS, hourly_profile
from calibrate.facts.tails import hill_plateau

COLORS = {"real": "#1f77b4", "sim": "#d62728"}
MAX_POINTS = 4000


def _pairs(real: MarketSeries | None, sim: MarketSeries | None) -> list[MarketSeries]:
    return [s for s in (real, sim) if s is not None]


def _layout(fig: go.Figure, title: str, height: int = 420) -> go.Figure:
    fig.update_layout(title=title, height=height, template="plotly_white",
                      margin={"l": 60, "r": 20, "t": 60, "b": 50},
                      legend={"orientation": "h", "y": -0.18})
    return fig


def _thin(n: int) -> np.ndarray:
    return np.arange(0, n, max(1, -(-n // MAX_POINTS)))


def _times(t_ns: np.ndarray | None, n: int) -> np.ndarray:
    return np.arange(n) if t_ns is None else np.asarray(t_ns, np.int64).astype("datetime64[ns]")


def price_paths(real, sim) -> go.Figure | None:
    fig = go.Figure()
    for s in _pairs(real, sim):
        i = _thin(len(s.price))
        if len(i) == 0:
            continue
        fig.add_trace(go.Scatter(x=_times(s.t_ns, len(s.price))[i], y=s.price[i], mode="lines",
                                   name=f"{s.label} price", line={"color": COLORS[s.label]}))
    return _layout(fig, "Price paths") if fig.data else None


def return_distribution(real, sim) -> go.Figure | None:
    series = [(s, finite(s.returns)) for s in _pairs(real, sim)]
    series = [(s, r) for s, r in series if len(r) >= 10 and np.std(r) > 0]
    if not series:
        return None
    allr = np.concatenate([r for _, r in series])
    lo, hi = np.quantile(allr, [0.0005, 0.9995])
    edges = np.linspace(lo, hi, 81)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Density (log scale)", "Normal QQ"))
    for s, r in series:
        dens, _ = np.histogram(r, bins=edges, density=True)
        mid = 0.5 * (edges[1:] + edges[:-1])
        c = COLORS[s.label]
        fig.add_trace(go.Scatter(x=mid, y=np.where(dens > 0, dens, np.nan), mode="lines+markers",
                                 name=f"{s.label} returns", line={"color": c}, marker={"size": 3}),
                      1, 1)
        floor = 0.3 / (len(r) * (edges[1] - edges[0]))     # density of a third of one count
        gauss = stats.norm.pdf(mid, r.mean(), r.std())
        fig.add_trace(go.Scatter(x=mid, y=np.where(gauss >= floor, gauss, np.nan), mode="lines",
                                 name=f"{s.label} Gaussian fit", line={"color": c, "dash": "dot"}),
                      1, 1)
        q = np.linspace(0.001, 0.999, 400)
        z = (r - r.mean()) / r.std()
        fig.add_trace(go.Scatter(x=stats.norm.ppf(q), y=np.quantile(z, q), mode="markers",
                                 name=f"{s.label} QQ", marker={"color": c, "size": 4}), 1, 2)
    fig.add_trace(go.Scatter(x=[-4, 4], y=[-4, 4], mode="lines", name="Gaussian",
                             line={"color": "grey", "dash": "dash"}), 1, 2)
    fig.update_yaxes(type="log", title="density", row=1, col=1)
    fig.update_xaxes(title="log return", row=1, col=1)
    fig.update_xaxes(title="normal quantile", row=1, col=2)
    fig.update_yaxes(title="standardised return quantile", row=1, col=2)
    return _layout(fig, "Return distribution")


def real_vs_sim_qq(real, sim) -> go.Figure | None:
    if real is None or sim is None:
        return None
    a, b = finite(real.returns), finite(sim.returns)
    if min(len(a), len(b)) < 10:
        return None
    q = np.linspace(0.001, 0.999, 400)
    qa, qb = np.quantile(a, q), np.quantile(b, q)
    lim = [float(min(qa[0], qb[0])), float(max(qa[-1], qb[-1]))]
    fig = go.Figure([go.Scatter(x=qa, y=qb, mode="markers", name="quantiles",
                                marker={"color": COLORS["sim"], "size": 4}),
                     go.Scatter(x=lim, y=lim, mode="lines", name="y = x",
                                line={"color": "grey", "dash": "dash"})])
    fig.update_xaxes(title="real return quantile")
    fig.update_yaxes(title="simulated return quantile")
    return _layout(fig, "QQ: simulated vs real returns")


def tails(real, sim, params: FactParams) -> go.Figure | None:
    fig = make_subplots(rows=1, cols=2, subplot_titles=("P(|r|/sd > x)", "Hill estimate alpha(k)"))
    for s in _pairs(real, sim):
        r = finite(s.returns)
        if len(r) < 10 or not np.std(r) > 0:
            continue
        c = COLORS[s.label]
        x = np.sort(np.abs(r) / np.std(r))[::-1]
        p = np.arange(1, len(x) + 1) / len(r)
        keep = x >= 0.1
        x, p = x[keep], p[keep]
        if len(x) == 0:
            continue
        i = np.unique(np.round(np.geomspace(1, len(x), min(len(x), 500))).astype(np.int64) - 1)
        fig.add_trace(go.Scatter(x=x[i], y=p[i], mode="lines", name=f"{s.label} |r|",
                                 line={"color": c}), 1, 1)
        est = hill_plateau(r, params)
        if est is not None:
            fig.add_trace(go.Scatter(x=est.k, y=est.curve, mode="lines", name=f"{s.label} alpha(k)",
                                     line={"color": c}), 1, 2)
            fig.add_trace(go.Scatter(x=[est.k_lo, est.k_hi], y=[est.alpha, est.alpha], mode="lines",
                                     name=f"{s.label} plateau {est.alpha:.2f}",
                                     line={"color": c, "width": 6}, opacity=0.5), 1, 2)
    if not fig.data:
        return None
    n = max(len(finite(s.returns)) for s in _pairs(real, sim))
    g = np.geomspace(0.1, 12, 80)
    tail = 2 * stats.norm.sf(g)
    fig.add_trace(go.Scatter(x=g, y=np.where(tail >= 0.1 / n, tail, np.nan), mode="lines",
                             name="Gaussian", line={"color": "grey", "dash": "dash"}), 1, 1)
    fig.update_xaxes(type="log", title="x (standard deviations)", row=1, col=1)
    fig.update_yaxes(type="log", exponentformat="power", row=1, col=1)
    fig.update_xaxes(title="k (order statistics)", row=1, col=2)
    fig.update_yaxes(title="alpha", row=1, col=2)
    return _layout(fig, "Tails")


def autocorrelations(real, sim, params: FactParams) -> go.Figure | None:
    titles = ("ACF of r", "ACF of |r|", "ACF of r²", "ACF of |r| (log-log)")
    fig = make_subplots(rows=1, cols=4, subplot_titles=titles)
    for s in _pairs(real, sim):
        r = finite(s.returns)
        if len(r) < 20 or not np.std(r) > 0:
            continue
        c = COLORS[s.label]
        for col, x in ((1, r), (2, np.abs(r)), (3, r * r), (4, np.abs(r))):
            rho = acf(x, params.max_lag)
            lags = np.arange(1, len(rho) + 1)
            y = np.where(rho > 0, rho, np.nan) if col == 4 else rho
            fig.add_trace(go.Scatter(x=lags, y=y, mode="lines", name=f"{s.label}",
                                     line={"color": c}, showlegend=col == 1), 1, col)
        band = noise_level(len(r))
        for col in (1, 2, 3):
            fig.add_hline(y=band, line={"color": c, "dash": "dot", "width": 1}, row=1, col=col)
            fig.add_hline(y=-band, line={"color": c, "dash": "dot", "width": 1}, row=1, col=col)
    if not fig.data:
        return None
    fig.update_xaxes(type="log", row=1, col=4)
    fig.update_yaxes(type="log", row=1, col=4)
    fig.update_xaxes(title="lag (bars)")
    return _layout(fig, "Autocorrelations (dotted: 95% noise band)", height=380)


def kurtosis_horizons(real, sim, params: FactParams) -> go.Figure | None:
    fig = go.Figure()
    for s in _pairs(real, sim):
        hs, k = kurtosis_by_horizon(s.returns, params.kurt_min_obs)
        if len(hs) >= 2:
            fig.add_trace(go.Scatter(x=hs, y=k, mode="lines+markers", name=s.label,
                                     line={"color": COLORS[s.label]}))
    if not fig.data:
        return None
    fig.add_hline(y=0, line={"color": "grey", "dash": "dash"})
    fig.update_xaxes(type="log", title="horizon (bars)")
    fig.update_yaxes(title="excess kurtosis")
    return _layout(fig, "Aggregational Gaussianity: kurtosis by horizon")


def liquidity(real, sim) -> go.Figure | None:
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Relative spread (bps)", "Depth"))
    pairs = _pairs(real, sim)
    for col, attr in ((1, "spread_bps"), (2, "depth")):
        xs = [finite(getattr(s, attr)) for s in pairs if getattr(s, attr) is not None]
        if any(len(x) for x in xs):     # the x range shows 99.5% of the mass, not lone outliers
            both = np.concatenate(xs)
            fig.update_xaxes(range=[float(np.min(both)), float(np.quantile(both, 0.995))],
                             row=1, col=col)
    for s in pairs:
        for col, x in ((1, s.spread_bps), (2, s.depth)):
            if x is None:
                continue
            x = finite(x)
            if len(x):
                fig.add_trace(go.Histogram(x=x, name=f"{s.label}", histnorm="probability",
                                           marker={"color": COLORS[s.label]}, opacity=0.6,
                                           nbinsx=60, showlegend=col == 1 or s.spread_bps is None),
                              1, col)
    if not fig.data:
        return None
    fig.update_layout(barmode="overlay")
    return _layout(fig, "Spread and depth distributions", height=380)


def sign_and_impact(real, sim, params: FactParams) -> go.Figure | None:
    fig = make_subplots(rows=1, cols=2, subplot_titles=("ACF of order signs (log-log)",
                                                        "Impact: E[sign(v) r | |v|]"))
    for s in _pairs(real, sim):
        c = COLORS[s.label]
        signs = s.order_signs
        if signs is not None and len(signs) >= 20 and np.std(signs) > 0:
            rho = acf(signs, params.max_lag)
            fig.add_trace(go.Scatter(x=np.arange(1, len(rho) + 1), y=np.where(rho > 0, rho, np.nan),
                                     mode="lines", name=f"{s.label} signs", line={"color": c}), 1, 1)
        sv = s.bar("signed_volume")
        if sv is not None:
            size, imp = impact_curve(s.returns, sv, params.impact_bins)
            if len(size):
                fig.add_trace(go.Scatter(x=size, y=np.where(imp > 0, imp, np.nan),
                                         mode="lines+markers", name=f"{s.label} impact",
                                         line={"color": c}), 1, 2)
    if not fig.data:
        return None
    fig.update_xaxes(type="log")
    fig.update_yaxes(type="log")
    fig.update_xaxes(title="lag", row=1, col=1)
    fig.update_xaxes(title="|signed volume| per bar", row=1, col=2)
    return _layout(fig, "Order flow", height=380)


def intraday(real, sim) -> go.Figure | None:
    fig = go.Figure()
    for s in _pairs(real, sim):
        t = s.bar("t_ns")
        if t is None or len(t) < 2 or (t[-1] - t[0]) < DAY_NS or np.median(np.diff(t)) >= HOUR_NS:
            continue
        prof, _ = hourly_profile(s.returns, t)
        fig.add_trace(go.Bar(x=np.arange(24), y=prof, name=s.label,
                             marker={"color": COLORS[s.label]}, opacity=0.7))
    if not fig.data:
        return None
    fig.update_xaxes(title="hour of day (UTC)")
    fig.update_yaxes(title="mean |r|")
    return _layout(fig, "Intraday seasonality")


def timeline(name: str, table: dict[str, np.ndarray]) -> go.Figure | None:
    n = len(table["step"])
    x = _times(table.get("t_ns"), n)
    cols = [c for c in table if c not in ("step", "t_ns")]
    fig = go.Figure()
    i = _thin(n)
    for c in cols:
        v = np.asarray(table[c])
        if v.dtype.kind in "OU":
            cats, codes = np.unique(v.astype(str), return_inverse=True)
            fig.add_trace(go.Scatter(x=x[i], y=codes[i], mode="lines", line={"shape": "hv"},
                                     name=f"{c} ({', '.join(f'{k}={s}' for k, s in enumerate(cats))})"))
        else:
            fig.add_trace(go.Scatter(x=x[i], y=v.astype(np.float64)[i], mode="lines", name=c,
                                     line={"shape": "hv"} if v.dtype.kind in "biu" else None))
    return _layout(fig, f"{name.capitalize()} timeline") if fig.data else None


def all_figures(real: MarketSeries | None, sim: MarketSeries | None, params: FactParams,
                timelines: dict[str, dict[str, np.ndarray]] | None = None) -> dict[str, go.Figure]:
    """Figure id -> figure, in display order, leaving out the ones with nothing to draw."""
    figs = {
        "prices": price_paths(real, sim),
        "returns": return_distribution(real, sim),
        "qq": real_vs_sim_qq(real, sim),
        "tails": tails(real, sim, params),
        "acf": autocorrelations(real, sim, params),
        "kurtosis": kurtosis_horizons(real, sim, params),
        "liquidity": liquidity(real, sim),
        "orderflow": sign_and_impact(real, sim, params),
        "intraday": intraday(real, sim),
    }
    for name, table in (timelines or {}).items():
        figs[name] = timeline(name, table)
    return {k: v for k, v in figs.items() if v is not None}
