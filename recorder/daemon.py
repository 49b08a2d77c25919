"""`run_daemon(cfg)`: the live recorders of `record.*` into the configured backend.

One process runs the Binance and Reddit recorders on one event loop, feeding one `Ingest`
(bounded queue + batching writer) into the Parquet log (`record.backend: parquet`, the `log.*`
settings) or Kafka (`record.backend: kafka`, `record.kafka.*`; the archiver copies Kafka into
Parquet). SIGTERM or SIGINT: recorders close their sockets (disconnect markers), everything
queued is written, the open segment is sealed, exit status 0. A status file (atomically
replaced) and/or `GET /status` on `record.status_port` report counters, per-stream rates and
lag, queue depth, last gap and last reconnect; log lines are JSON.

`python -m recorder.daemon CONFIG.yaml [key=value ...]` runs it from a plain OmegaConf file
(the tests use this; `smabm record` composes the same keys with Hydra).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from collections.abc import Mapping

import orjson
from omegaconf import DictConfig, OmegaConf

from recorder.ingest import Ingest
from recorder.status import serve_status, setup_logging, uptime_s, write_status

log = logging.getLogger("recorder.daemon")

BACKENDS = ("parquet", "kafka")


def _get(cfg, key: str, default=None):
    cur = cfg
    for part in key.split("."):
        if cur is None:
            return default
        cur = cur.get(part) if hasattr(cur, "get") else None
    return default if cur is None else cur


def _backend(cfg):
    name = _get(cfg, "record.backend", "parquet")
    if name == "parquet":
        from recorder.log_backend import ParquetBackend

        age = _get(cfg, "log.segment_max_age_s", 300)
        return ParquetBackend(
            _get(cfg, "log.root", "var/log"), _get(cfg, "record.writer_id", "recorder"),
            fsync=_get(cfg, "log.fsync", "batch"),
            fsync_interval_s=float(_get(cfg, "log.fsync_interval_s", 1.0)),
            segment_max_bytes=int(_get(cfg, "log.segment_max_mb", 64)) << 20,
            segment_max_rows=int(_get(cfg, "log.segment_max_rows", 2_000_000)),
            segment_max_age_s=None if age is None else float(age))
    if name == "kafka":
        from recorder.kafka.producer import KafkaBackend

        kcfg = _get(cfg, "record.kafka", {})
        brokers = _get(cfg, "record.kafka.brokers")
        if not brokers:
            raise ValueError("record.kafka.brokers: required with record.backend=kafka")
        return KafkaBackend(str(brokers), OmegaConf.to_container(kcfg)
                            if isinstance(kcfg, DictConfig) else dict(kcfg))
    raise ValueError(f"record.backend={name!r}: expected one of {', '.join(BACKENDS)}")


class Daemon:
    """The recorders, the ingest and the status reporting of one process."""

    def __init__(self, cfg) -> None:
        self.cfg = cfg
        self.started = time.monotonic()
        self.recorders: dict[str, object] = {}
        self.backend = _backend(cfg)
        self.ingest = Ingest(self.backend, queue_size=int(_get(cfg, "record.queue_size",
                                                               1_000_000)),
                             max_batch=int(_get(cfg, "record.max_batch", 50_000)))
        if _get(cfg, "record.binance.enabled", False):
            from recorder.binance.recorder import BinanceRecorder, BinanceSettings

            self.recorders["binance"] = BinanceRecorder(
                BinanceSettings.from_cfg(_get(cfg, "record.binance")), self.ingest)
        if _get(cfg, "record.reddit.enabled", False):
            from recorder.reddit.recorder import RedditRecorder, RedditSettings

            self.recorders["reddit"] = RedditRecorder(
                RedditSettings.from_cfg(_get(cfg, "record.reddit")), self.ingest)
        if not self.recorders:
            raise ValueError("record: enable record.binance.enabled or record.reddit.enabled")
        if _get(cfg, "record.ack_log", False):
            self.ingest.on_ack = self._log_ack

    def stop(self) -> None:
        """Ask `run()` to stop as SIGTERM does (for embedding and tests)."""
        self._stop.set()

    def _log_ack(self, ingest: Ingest) -> None:
        per = {f"{k[0]}:{k[1]}": v.written for k, v in ingest.streams.items()}
        log.info(orjson.dumps({"event": "ack", "written": ingest.written, "streams": per}).decode())

    def status(self) -> dict:
        out = {"pid_uptime_s": uptime_s(self.started), "backend": _get(self.cfg, "record.backend",
                                                                       "parquet"),
               **self.ingest.snapshot()}
        b = self.recorders.get("binance")
        if b is not None:
            out["binance"] = {"connections": b.connections, "snapshots": b.snapshots,
                              "snapshot_errors": b.snapshot_errors}
        r = self.recorders.get("reddit")
        if r is not None:
            out["reddit"] = {"new_items": r.new_items, "edits": r.edits,
                             "rate_limited": r.rate_limited, "api_errors": r.api_errors}
        return out

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        stop = self._stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        self.ingest.start()
        runner = None
        port = _get(self.cfg, "record.status_port")
        if port:
            runner = await serve_status(int(port), self.status)
        status_file = _get(self.cfg, "record.status_file")
        interval = float(_get(self.cfg, "record.status_interval_s", 1.0))
        tasks = {name: asyncio.create_task(r.run(), name=name)
                 for name, r in self.recorders.items()}
        stopper = asyncio.create_task(stop.wait())
        failed: BaseException | None = None
        try:
            while True:
                done, _ = await asyncio.wait([stopper, *tasks.values()], timeout=interval,
                                             return_when=asyncio.FIRST_COMPLETED)
                if status_file:
                    write_status(status_file, self.status())
                if stopper in done:
                    break
                ended = [t for t in tasks.values() if t.done()]
                if ended:
                    failed = ended[0].exception() or RuntimeError(f"{ended[0].get_name()} ended")
                    break
                if self.ingest.error is not None:
                    failed = self.ingest.error
                    break
        finally:
            log.info(orjson.dumps({"event": "stopping", "reason": "error" if failed
                                   else "signal"}).decode())
            for r in self.recorders.values():
                await r.stop()
            await asyncio.gather(*tasks.values(), return_exceptions=True)
            stopper.cancel()
            await self.ingest.close()
            if status_file:
                write_status(status_file, {**self.status(), "stopped": True})
            if runner is not None:
                await runner.cleanup()
        log.info(orjson.dumps({"event": "stopped", "written": self.ingest.written,
                               "dropped": self.ingest.dropped}).decode())
        if failed is not None:
            log.error(orjson.dumps({"event": "failed", "error": repr(failed)}).decode())
            return 1
        return 0


def run_daemon(cfg: Mapping) -> int:
    """Run the configured recorders until SIGTERM/SIGINT; returns the exit status (0 = clean)."""
    setup_logging(str(_get(cfg, "record.log_level", "INFO")))
    if _get(cfg, "record.backend", "parquet") not in BACKENDS:
        raise ValueError(f"record.backend={_get(cfg, 'record.backend')!r}: expected one of "
                         f"{', '.join(BACKENDS)}")

    async def main() -> int:
        return await Daemon(cfg).run()

    return asyncio.run(main())


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        sys.exit("usage: python -m recorder.daemon CONFIG.yaml [key=value ...]")
    cfg = OmegaConf.merge(OmegaConf.load(argv[0]), OmegaConf.from_dotlist(argv[1:]))
    sys.exit(run_daemon(cfg))


if __name__ == "__main__":
    main()
