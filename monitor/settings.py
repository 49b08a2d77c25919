"""`monitor.*` settings, checked once with one-line errors naming the setting."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from monitor.sink import SinkSettings

SOURCES = ("auto", "files", "postgres")


def _get(cfg, key: str, default=None):
    cur = cfg
    for part in key.split("."):
        if cur is None or not hasattr(cur, "get"):
            return default
        cur = cur.get(part)
    return default if cur is None else cur


def _positive(value, name: str, kind=float):
    try:
        v = kind(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}={value!r}: expected a positive number") from None
    if v <= 0:
        raise ValueError(f"{name}={value!r}: expected a positive number")
    return v


def sink_enabled(cfg) -> bool:
    return bool(_get(cfg, "monitor.sink.enabled", False))


def sink_settings(cfg) -> SinkSettings:
    p = "monitor.sink"
    schema = str(_get(cfg, f"{p}.schema", "smabm"))
    if not schema.replace("_", "").isalnum():
        raise ValueError(f"{p}.schema={schema!r}: letters, digits and _ only")
    return SinkSettings(
        schema=schema,
        max_rows=_positive(_get(cfg, f"{p}.max_rows", 500_000), f"{p}.max_rows", int),
        batch_rows=_positive(_get(cfg, f"{p}.batch_rows", 50_000), f"{p}.batch_rows", int),
        flush_interval_s=_positive(_get(cfg, f"{p}.flush_interval_s", 0.5), f"{p}.flush_interval_s"),
        retry_s=_positive(_get(cfg, f"{p}.retry_s", 1.0), f"{p}.retry_s"),
        connect_timeout_s=_positive(_get(cfg, f"{p}.connect_timeout_s", 5), f"{p}.connect_timeout_s"),
        statement_timeout_s=_positive(_get(cfg, f"{p}.statement_timeout_s", 30),
                                      f"{p}.statement_timeout_s"),
        warn_every_s=_positive(_get(cfg, f"{p}.warn_every_s", 10), f"{p}.warn_every_s"))


def status_poll_s(cfg) -> float:
    return _positive(_get(cfg, "monitor.sink.status_poll_s", 1.0), "monitor.sink.status_poll_s")


def close_timeout_s(cfg) -> float:
    return _positive(_get(cfg, "monitor.sink.close_timeout_s", 10), "monitor.sink.close_timeout_s")


def dsn_env(cfg) -> str:
    return str(_get(cfg, "monitor.sink.dsn_env", "SMABM_METRICS_DSN"))


def live_chunks(cfg) -> bool:
    v = _get(cfg, "monitor.live_chunks", "auto")
    if isinstance(v, bool):
        return v
    if str(v) != "auto":
        raise ValueError(f"monitor.live_chunks={v!r}: expected auto, true or false")
    return str(_get(cfg, "replay.speed", "max")) != "max" or bool(_get(cfg, "replay.live", False))


@dataclass(frozen=True)
class DashboardSettings:
    """`monitor.dashboard.*` resolved: where each panel reads from."""

    host: str = "127.0.0.1"
    port: int = 8050
    source: str = "files"                 # files | postgres (auto resolved)
    dsn: str | None = None                # postgres source only; never shown
    schema: str = "smabm"
    runs_root: Path = Path("runs")
    run: str | None = None
    status_file: Path | None = None
    recorder: str = "recorder"
    study_storage: str | None = None
    study_name: str | None = None
    refresh_s: float = 2.0
    max_points: int = 4000
    status_history: int = 600

    @classmethod
    def from_cfg(cls, cfg) -> DashboardSettings:
        p = "monitor.dashboard"
        source = str(_get(cfg, f"{p}.source", "auto"))
        if source not in SOURCES:
            raise ValueError(f"{p}.source={source!r}: expected one of {', '.join(SOURCES)}")
        var = dsn_env(cfg)
        dsn = os.environ.get(var, "").strip() or None
        if source == "auto":
            source = "postgres" if dsn else "files"
        if source == "postgres" and not dsn:
            raise ValueError(f"{p}.source=postgres: environment variable {var} "
                             "(monitor.sink.dsn_env) is not set")
        port = _positive(_get(cfg, f"{p}.port", 8050), f"{p}.port", int)
        if port > 65535:
            raise ValueError(f"{p}.port={port}: expected 1-65535")
        status = _get(cfg, f"{p}.status_file") or _get(cfg, "record.status_file")
        return cls(
            host=str(_get(cfg, f"{p}.host", "127.0.0.1")), port=port, source=source,
            dsn=dsn if source == "postgres" else None, schema=sink_settings(cfg).schema,
            runs_root=Path(str(_get(cfg, f"{p}.runs_root", "runs"))),
            run=None if _get(cfg, f"{p}.run") is None else str(_get(cfg, f"{p}.run")),
            status_file=Path(str(status)) if status else None,
            recorder=recorder_name(cfg),
            study_storage=os.environ.get("SMABM_OPTUNA_STORAGE") or _get(cfg, f"{p}.study_storage"),
            study_name=_get(cfg, f"{p}.study_name"),
            refresh_s=_positive(_get(cfg, f"{p}.refresh_s", 2.0), f"{p}.refresh_s"),
            max_points=_positive(_get(cfg, f"{p}.max_points", 4000), f"{p}.max_points", int),
            status_history=_positive(_get(cfg, f"{p}.status_history", 600), f"{p}.status_history", int))


def recorder_name(cfg) -> str:
    return str(_get(cfg, "monitor.sink.recorder") or _get(cfg, "record.writer_id") or "recorder")
