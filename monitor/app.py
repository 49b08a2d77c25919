"""`smabm dashboard`: a Plotly Dash app on 127.0.0.1 with recorder health, a replay run's
timeline and calibration progress, updated live by a `dcc.Interval`.

Each panel re-reads its source on every tick, and the readers (`monitor.sources`) only do work
when something changed. The timeline, the costly figure, is drawn by its own callback that a cheap
per-tick probe fires only when the run's data changed (Dash drops a response overtaken by a newer
request of the same callback, so a draw fired by every tick would never land on a slow machine).
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

import dash
from dash import Input, Output, State, dcc, html
from werkzeug.serving import make_server

from monitor.figures import REGIMES, recorder_figure, recorder_rows, study_figure, timeline_figure
from monitor.settings import DashboardSettings
from monitor.sources import (
    RunFiles,
    RunsInPostgres,
    StatusFile,
    StatusInPostgres,
    StudyReader,
)

log = logging.getLogger("smabm.monitor")
PENDING_TICKS = 20   # a timeline draw not back after this many ticks is given up and asked again

STREAM_COLS = ("source", "stream", "received", "written", "rate_per_s", "feed_lag_ms", "gaps",
               "reconnects", "errors")


def _section(title: str, *children) -> html.Section:
    return html.Section([html.H2(title, style={"fontSize": "18px", "margin": "18px 0 6px"}), *children])


def _table(rows: list[dict], cols) -> html.Table:
    head = html.Tr([html.Th(c, style={"textAlign": "left", "padding": "2px 10px"}) for c in cols])
    body = [html.Tr([html.Td("" if r[c] is None else (f"{r[c]:,.2f}" if isinstance(r[c], float)
                                                       else str(r[c])),
                             style={"padding": "2px 10px"}) for c in cols]) for r in rows]
    return html.Table([html.Thead(head), html.Tbody(body)], style={"fontSize": "13px",
                                                                    "borderCollapse": "collapse"})


def build_app(s: DashboardSettings) -> dash.Dash:
    """The Dash app for settings `s` (no server started)."""
    runs = (RunsInPostgres(s.dsn, s.schema, s.max_points) if s.source == "postgres"
            else RunFiles(s.runs_root, s.max_points))
    status = (StatusInPostgres(s.dsn, s.schema, s.recorder, s.status_history) if s.source == "postgres"
              else StatusFile(s.status_file, s.recorder, s.status_history) if s.status_file else None)
    study = StudyReader(s.study_storage, s.study_name) if s.study_storage else None
    where = ("PostgreSQL (schema " + s.schema + ")" if s.source == "postgres"
             else f"run directories under {s.runs_root}")

    app = dash.Dash(__name__, title="smabm monitor", update_title=None)
    app.layout = html.Div(style={"fontFamily": "system-ui, sans-serif", "margin": "0 18px"}, children=[
        html.H1("smabm monitor", style={"fontSize": "22px", "margin": "12px 0 2px"}),
        html.Div(f"replays from {where}; refresh every {s.refresh_s:g} s", id="source",
                 style={"color": "#555", "fontSize": "13px"}),
        dcc.Interval(id="tick", interval=int(s.refresh_s * 1000), n_intervals=0),
        dcc.Store(id="timeline-want"),     # {"key", "tick"}: what the timeline should show
        dcc.Store(id="timeline-shown"),    # key of the figure on the page
        _section("Recorder", html.Div(id="recorder-summary"), html.Div(id="recorder-table"),
                 dcc.Graph(id="recorder", config={"displaylogo": False})),
        _section("Replay run", html.Div([
            dcc.Dropdown(id="run", clearable=False, style={"width": "420px"}),
            dcc.RadioItems(id="regime", options=[{"label": f"shade {r} regime", "value": r}
                                                 for r in REGIMES],
                           value=REGIMES[0], inline=True, style={"fontSize": "13px"}),
        ], style={"display": "flex", "gap": "18px", "alignItems": "center"}),
            html.Div(id="run-state", style={"fontSize": "13px", "color": "#555", "margin": "4px 0"}),
            dcc.Graph(id="timeline", config={"displaylogo": False})),
        _section("Calibration", html.Div(id="study-summary"),
                 dcc.Graph(id="study", config={"displaylogo": False})),
    ])

    @app.callback(Output("run", "options"), Output("run", "value"), Input("tick", "n_intervals"),
                  State("run", "value"))
    def _runs(_n, current):
        found = runs.runs()
        options = [{"label": f"{r.run_id}  ({r.state})", "value": r.run_id} for r in found]
        if current is None:
            pick = s.run if s.run is not None else (found[0].run_id if found else None)
            if pick is not None and s.source == "files":
                pick = runs.resolve(pick).name if pick not in {r.run_id for r in found} else pick
            return options, pick
        return options, dash.no_update

    def _timeline_key(run, regime) -> tuple[str, object]:
        if not run:
            return "none", None
        tl = runs.timeline(str(run) if s.source == "postgres" else str(runs.resolve(run)))
        return f"{tl.run_id}|{tl.version}|{regime}", tl

    @app.callback(Output("timeline-want", "data"), Input("tick", "n_intervals"), Input("run", "value"),
                  Input("regime", "value"), State("timeline-want", "data"), State("timeline-shown", "data"))
    def _timeline_probe(n, run, regime, want, shown):
        """Cheap, every tick: decide what the timeline should show. Drawing is a separate callback
        fired only when this changes, and not again while a draw is in flight, so a figure slower
        to build than the refresh interval is never superseded by the next tick before it lands."""
        key, _ = _timeline_key(run, regime)
        if key == shown:
            return dash.no_update
        n = n or 0
        drawing = (want is not None and want["key"] != shown and n - want["tick"] < PENDING_TICKS)
        if dash.ctx.triggered_id == "tick" and (drawing or key == (want or {}).get("key")):
            return dash.no_update
        return {"key": key, "tick": n}

    @app.callback(Output("timeline", "figure"), Output("run-state", "children"),
                  Output("timeline-shown", "data"), Input("timeline-want", "data"),
                  State("run", "value"), State("regime", "value"))
    def _timeline(_want, run, regime):
        key, tl = _timeline_key(run, regime)
        if tl is None:
            return dash.no_update, "no run yet: start one with `smabm replay` or `smabm demo`", key
        thin = f", every {tl.stride}th step drawn" if tl.stride > 1 else ""
        return (timeline_figure(tl, regime), f"{tl.run_id}: {tl.state}, {tl.steps:,} steps{thin}", key)

    @app.callback(Output("recorder-summary", "children"), Output("recorder-table", "children"),
                  Output("recorder", "figure"), Input("tick", "n_intervals"))
    def _recorder(_n):
        if status is None:
            return ("no recorder status configured (monitor.dashboard.status_file or "
                    "record.status_file)"), None, {}
        view = status.view()
        if view is None:
            return f"waiting for the recorder's status ({s.status_file or 'PostgreSQL'})", None, {}
        last = view.status.tail(1).to_dicts()[0]
        age = (datetime.now(UTC) - last["ts"]).total_seconds()
        state = "stopped" if view.stopped else f"last status {age:,.1f} s ago"
        summary = (f"{last['recorder']}: {state}; received {last['received'] or 0:,}, written "
                   f"{last['written'] or 0:,}, dropped {last['dropped'] or 0:,}, queue depth "
                   f"{last['queue_depth'] or 0:,}, ack lag {last['ack_lag_ms'] or 0:,.1f} ms "
                   f"(from {view.source})")
        return summary, _table(recorder_rows(view), STREAM_COLS), recorder_figure(view)

    @app.callback(Output("study-summary", "children"), Output("study", "figure"),
                  Input("tick", "n_intervals"))
    def _study(_n):
        if study is None:
            return "no study storage given (monitor.dashboard.study_storage)", {}
        view = study.view()
        if view is None:
            return "the storage holds no study yet", {}
        counts = view.trials.group_by("state").len().sort("state").rows()
        best = "none yet" if view.best_value is None else f"{view.best_value:.6g} with " + ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in view.best_params.items())
        return (f"study {view.name}: " + ", ".join(f"{n} {st.lower()}" for st, n in counts)
                + f"; best {best}"), study_figure(view)

    return app


class DashboardServer:
    """The app on a werkzeug server in a thread (the CLI blocks on it; tests stop it)."""

    def __init__(self, app: dash.Dash, host: str, port: int) -> None:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)   # no line per poll of every panel
        self._server = make_server(host, port, app.server, threaded=True)
        self.url = f"http://{host}:{self._server.server_port}/"
        self._thread = threading.Thread(target=self._server.serve_forever, name="dashboard", daemon=True)

    def start(self) -> DashboardServer:
        self._thread.start()
        return self

    def wait(self) -> None:
        while self._thread.is_alive():
            self._thread.join(0.5)

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join()


def run_dashboard(cfg) -> int:
    """`smabm dashboard`: serve until Ctrl-C; returns the exit status."""
    s = DashboardSettings.from_cfg(cfg)
    server = DashboardServer(build_app(s), s.host, s.port).start()
    log.info("dashboard on %s (replays from %s)", server.url, s.source)
    print(f"smabm dashboard: {server.url}  (Ctrl-C stops it)", flush=True)
    try:
        server.wait()
    except KeyboardInterrupt:
        server.stop()
    return 0
