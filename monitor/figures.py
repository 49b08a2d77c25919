"""Plotly figures of the dashboard, built from the metric-table frames of `monitor.sources`."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from monitor.sources import RecorderView, StudyView, Timeline

REGIMES = ("volatility", "mood", "liquidity")
# label -> (name, shade); normal (1) and no fit yet (-1) are left unshaded
REGIME_SHADES = {0: ("low", "rgba(31,119,180,0.13)"), 2: ("high", "rgba(214,39,40,0.13)")}
MARKETS = {"real": ("real", "#1f77b4"), "sim": ("simulated", "#ff7f0e")}
LN3 = math.log(3.0)


def _x(f: pl.DataFrame):
    return f["ts"].to_list()


def regime_segments(reg: pl.DataFrame, dim: str) -> list[tuple[object, object, int]]:
    """Runs of equal `<dim>_label` as (start ts, end ts, label), the end being the next run's start."""
    if reg.height == 0:
        return []
    labels = reg[f"{dim}_label"].fill_null(-1).to_numpy()
    ts = reg["ts"].to_list()
    cuts = np.flatnonzero(np.diff(labels)) + 1
    starts = np.concatenate(([0], cuts))
    ends = np.concatenate((cuts, [len(labels) - 1]))
    return [(ts[a], ts[b], int(labels[a])) for a, b in zip(starts, ends)]


def timeline_figure(tl: Timeline, regime: str = "volatility") -> go.Figure:
    """Real vs simulated mid and spread, volume, sentiment with its uncertainty band, agent
    inventories and PnL, on one time axis; the chosen regime's low/high spans shaded."""
    titles = ("mid: real vs simulated", "spread", "traded volume (real)",
              "sentiment (EWMA, band = predictive entropy / ln 3)", "inventory by agent type",
              "PnL by agent type")
    fig = make_subplots(rows=6, cols=1, shared_xaxes=True, vertical_spacing=0.035,
                        subplot_titles=titles, row_heights=[0.26, 0.13, 0.13, 0.16, 0.16, 0.16])
    t = tl.tables
    tob = t["top_of_book"]
    for market, (label, colour) in MARKETS.items():
        f = tob.filter(pl.col("market") == market)
        if f.height:
            fig.add_trace(go.Scatter(x=_x(f), y=f["mid"].to_list(), name=f"{label} mid",
                                     line={"color": colour, "width": 1.3}, legendgroup=market), 1, 1)
            fig.add_trace(go.Scatter(x=_x(f), y=f["spread"].to_list(), name=f"{label} spread",
                                     line={"color": colour, "width": 1}, legendgroup=market,
                                     showlegend=False), 2, 1)
    bars = t["bars"]
    if bars.height:
        fig.add_trace(go.Bar(x=_x(bars), y=bars["buy_volume"].to_list(), name="buy volume",
                             marker_color="#2ca02c"), 3, 1)
        fig.add_trace(go.Bar(x=_x(bars), y=bars["sell_volume"].to_list(), name="sell volume",
                             marker_color="#d62728"), 3, 1)
    sen = t["sentiment"]
    if sen.height:
        score = sen["score_ewma"].to_numpy()
        unc = ((sen["epistemic_ewma"] + sen["aleatoric_ewma"]) / LN3).to_numpy()
        x = _x(sen)
        if np.isfinite(unc).any():
            fig.add_trace(go.Scatter(x=x, y=(score + unc).tolist(), line={"width": 0}, showlegend=False,
                                     hoverinfo="skip", legendgroup="sent"), 4, 1)
            fig.add_trace(go.Scatter(x=x, y=(score - unc).tolist(), line={"width": 0}, fill="tonexty",
                                     fillcolor="rgba(148,103,189,0.25)", name="uncertainty band",
                                     legendgroup="sent"), 4, 1)
        else:
            fig.add_annotation(text="uncertainty not measured by this model (NaN)", xref="x4 domain",
                               yref="y4 domain", x=0.01, y=0.95, showarrow=False,
                               font={"size": 10, "color": "#666"})
        fig.add_trace(go.Scatter(x=x, y=score.tolist(), name="sentiment EWMA",
                                 line={"color": "#9467bd"}, legendgroup="sent"), 4, 1)
        texts = sen.filter(pl.col("n_texts") > 0)
        fig.add_trace(go.Scatter(x=_x(texts), y=texts["score_mean"].to_list(), mode="markers",
                                 marker={"size": 4, "color": "#9467bd", "opacity": 0.5},
                                 name="step mean (texts)", legendgroup="sent"), 4, 1)
    pos = t["agent_positions"]
    for i, (kind, f) in enumerate(sorted(pos.partition_by("agent_type", as_dict=True).items())
                                  if pos.height else []):
        colour = f"hsl({(i * 67) % 360},55%,45%)"
        name = kind[0] if isinstance(kind, tuple) else kind
        fig.add_trace(go.Scatter(x=_x(f), y=f["inventory"].to_list(), name=name, legendgroup=name,
                                 line={"color": colour, "width": 1}), 5, 1)
        fig.add_trace(go.Scatter(x=_x(f), y=f["pnl"].to_list(), name=name, legendgroup=name,
                                 showlegend=False, line={"color": colour, "width": 1}), 6, 1)
    # one shapes list, not add_vrect per span: add_vrect re-validates the layout each call (~30 ms)
    shades = [{"type": "rect", "xref": "x", "yref": "y domain", "x0": x0, "x1": x1, "y0": 0, "y1": 1,
               "fillcolor": REGIME_SHADES[label][1], "line": {"width": 0}, "layer": "below"}
              for x0, x1, label in regime_segments(t["regimes"], regime) if label in REGIME_SHADES]
    fig.update_layout(shapes=shades, height=1100, barmode="stack",
                      margin={"l": 60, "r": 20, "t": 40, "b": 30},
                      legend={"orientation": "v", "x": 1.01, "y": 1}, hovermode="x unified",
                      uirevision=tl.run_id)
    fig.update_yaxes(type="log", row=2, col=1)
    return fig


def recorder_figure(view: RecorderView) -> go.Figure:
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=("messages/s per stream", "feed lag (ms)", "queue depth"))
    st = view.streams
    if st.height:
        groups = sorted(st.partition_by(["source", "stream"], as_dict=True).items())
        for i, ((source, stream), f) in enumerate(groups):
            name, style = f"{source}:{stream}", {"color": f"hsl({(i * 67) % 360},55%,45%)"}
            fig.add_trace(go.Scatter(x=_x(f), y=f["rate_per_s"].to_list(), name=name, legendgroup=name,
                                     mode="lines+markers", marker={"size": 3}, line=style), 1, 1)
            fig.add_trace(go.Scatter(x=_x(f), y=f["feed_lag_ms"].to_list(), name=name, legendgroup=name,
                                     showlegend=False, mode="lines+markers", marker={"size": 3},
                                     line=style), 2, 1)
    s = view.status
    fig.add_trace(go.Scatter(x=_x(s), y=s["queue_depth"].to_list(), name="queue depth",
                             mode="lines+markers", marker={"size": 3}, line={"color": "#555"}), 3, 1)
    fig.update_layout(height=520, margin={"l": 60, "r": 20, "t": 40, "b": 30})
    return fig


def recorder_rows(view: RecorderView) -> list[dict]:
    """The latest snapshot per stream, as table rows."""
    st = view.streams
    if st.height == 0:
        return []
    last = st.filter(pl.col("ts") == st["ts"].max()).sort(["source", "stream"])
    cols = ("source", "stream", "received", "written", "rate_per_s", "feed_lag_ms", "gaps",
            "reconnects", "errors")
    return last.select(cols).to_dicts()


def study_figure(view: StudyView) -> go.Figure:
    fig = make_subplots(rows=1, cols=2, column_widths=[0.62, 0.38], horizontal_spacing=0.12,
                        subplot_titles=("objective by trial", "parameter importance (PED-ANOVA)"))
    tr = view.trials
    for state, colour in (("COMPLETE", "#1f77b4"), ("PRUNED", "#bbbbbb")):
        f = tr.filter((pl.col("state") == state) & pl.col("value").is_not_null())
        if f.height:
            fig.add_trace(go.Scatter(x=f["number"].to_list(), y=f["value"].to_list(), mode="markers",
                                     name=state.lower(), marker={"color": colour, "size": 6}), 1, 1)
    done = tr.filter(pl.col("state") == "COMPLETE").sort("number")
    if done.height:
        best = done["value"].cum_min() if view.minimize else done["value"].cum_max()
        fig.add_trace(go.Scatter(x=done["number"].to_list(), y=best.to_list(), mode="lines",
                                 name="best so far", line={"color": "#d62728", "shape": "hv"}), 1, 1)
    if view.importances:
        items = sorted(view.importances.items(), key=lambda kv: kv[1])
        fig.add_trace(go.Bar(x=[v for _, v in items], y=[k for k, _ in items], orientation="h",
                             name="importance", marker_color="#2ca02c", showlegend=False), 1, 2)
    elif view.note:
        fig.add_annotation(text=view.note, xref="x2 domain", yref="y2 domain", x=0.5, y=0.5,
                           showarrow=False, font={"size": 11, "color": "#666"})
    fig.update_layout(height=380, margin={"l": 60, "r": 20, "t": 40, "b": 30})
    fig.update_xaxes(title_text="trial", row=1, col=1)
    return fig
