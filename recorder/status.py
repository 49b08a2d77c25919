"""What a running recorder tells the world: a status file, an HTTP endpoint, JSON log lines.

The status file is written to a temporary name and renamed over the old one, so a reader never
sees half a file. The endpoint (`GET /status`) serves the same JSON. Neither ever holds a
credential: they are built from counters only.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import orjson


def write_status(path: str | Path, status: dict) -> None:
    """Atomically replace `path` with `status` as JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(orjson.dumps(status, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    os.replace(tmp, path)


async def serve_status(port: int, get: Callable[[], dict], host: str = "127.0.0.1"):
    """Start `GET /status` on host:port; returns the aiohttp runner (call `cleanup()`)."""
    from aiohttp import web

    async def handler(_request):
        return web.Response(body=orjson.dumps(get(), option=orjson.OPT_SORT_KEYS),
                            content_type="application/json")

    app = web.Application()
    app.router.add_get("/status", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


class JsonLines(logging.Formatter):
    """One JSON object per line: time, level, logger, and the message's own fields."""

    def format(self, record: logging.LogRecord) -> str:
        msg = record.getMessage()
        try:
            fields = json.loads(msg)
            if not isinstance(fields, dict):
                fields = {"msg": msg}
        except ValueError:
            fields = {"msg": msg}
        out = {"ts": round(record.created, 6), "level": record.levelname,
               "logger": record.name, **fields}
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


def setup_logging(level: str = "INFO") -> None:
    """JSON lines on stderr for the recorder's loggers (idempotent)."""
    root = logging.getLogger("recorder")
    if any(isinstance(h.formatter, JsonLines) for h in root.handlers):
        return
    h = logging.StreamHandler()
    h.setFormatter(JsonLines())
    root.addHandler(h)
    root.setLevel(level)
    root.propagate = False


def uptime_s(started: float) -> float:
    return round(time.monotonic() - started, 3)
