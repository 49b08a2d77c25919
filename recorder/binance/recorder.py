"""Live Binance recorder: combined-stream websockets plus REST depth snapshots, raw into the log.

Per market, the configured streams are split over as few connections as the per-connection
stream limit allows. Each connection task:
1. connects (`websockets`, library pings every `ping_interval_s`), writes one `kind=connect`
   marker per stream it feeds (payload: the URL), and asks for a REST depth snapshot of every
   depth symbol (recorded on `<symbol>@snapshot`, payload the REST body verbatim);
2. reads frames and hands each to `Ingest.put` with `recv_ts_ns = time.time_ns()` at receipt;
   `orjson` finds the stream, `E` (else `T`) and the update/trade ids; an unparsable frame is
   kept as `kind=error` (stream `error`) with its raw bytes; a broken id chain writes a
   `kind=gap` marker and, for depth, triggers a fresh snapshot;
3. on disconnect, stall (no frame for `stale_timeout_s`) or planned rotation (before the 24 h
   cut-off) writes `kind=disconnect` markers (payload: the reason) and reconnects, after an
   exponential backoff with jitter unless the rotation was planned.
Snapshots are paced by request weight; a failed snapshot is kept as `kind=error` and retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import aiohttp
import orjson
import websockets
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from recorder.binance.chains import Chain, chain_kind
from recorder.binance.endpoints import Market, market, stream_names
from recorder.binance.pacing import Backoff, WeightBucket
from recorder.events import Kind
from recorder.ingest import Connection, Ingest
from recorder.settings import checked_settings

log = logging.getLogger("recorder.binance")

ERROR_STREAM = "error"


@dataclass
class BinanceSettings:
    """`record.binance.*`: what to record and how hard to push the exchange."""

    markets: list[str] = field(default_factory=lambda: ["spot"])
    symbols: list[str] | dict[str, list[str]] = field(default_factory=lambda: ["btcusdt"])
    streams: list[str] | dict[str, list[str]] = field(
        default_factory=lambda: ["depth@100ms", "trade", "aggTrade", "bookTicker"])
    urls: dict[str, dict[str, str]] = field(default_factory=dict)  # market -> {ws, rest}
    snapshot_limit: int = 1000
    snapshot_timeout_s: float = 10.0
    weight_share: float = 0.5          # fraction of the market's request-weight budget to use
    max_streams_per_conn: int | None = None   # default: the market's limit
    ping_interval_s: float = 20.0
    ping_timeout_s: float = 20.0
    stale_timeout_s: float = 30.0      # no frame for this long: reconnect
    rotate_after_s: float = 23 * 3600.0  # planned reconnect before the 24 h cut-off
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    open_timeout_s: float = 10.0

    @classmethod
    def from_cfg(cls, cfg: Mapping) -> BinanceSettings:
        """Build from `record.binance` (unknown keys are an error naming the key)."""
        out = cls(**checked_settings(cls, cfg, "record.binance"))
        for m in out.markets:
            market(m)
            if not out.symbols_for(m):
                raise ValueError(f"record.binance.symbols: no symbols for market {m!r}")
            if not out.streams_for(m):
                raise ValueError(f"record.binance.streams: no streams for market {m!r}")
        if not 0 < out.weight_share <= 1:
            raise ValueError(f"record.binance.weight_share={out.weight_share}: must be in (0, 1]")
        return out

    def symbols_for(self, m: str) -> list[str]:
        s = self.symbols
        return list(s.get(m, [])) if isinstance(s, dict) else list(s)

    def streams_for(self, m: str) -> list[str]:
        s = self.streams
        return list(s.get(m, [])) if isinstance(s, dict) else list(s)




class BinanceRecorder:
    """Records every configured market into an `Ingest`; `run()` until `stop()`."""

    def __init__(self, settings: BinanceSettings, ingest: Ingest) -> None:
        self.settings = settings
        self.ingest = ingest
        self._stop = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None
        self._sockets: set = set()
        self._chains: dict[tuple[str, str], Chain | None] = {}
        self._pending_snapshots: dict[tuple[str, str], asyncio.Task] = {}
        self._buckets: dict[str, WeightBucket] = {}
        self.connections = 0
        self.snapshots = 0
        self.snapshot_errors = 0

    # -- lifecycle ------------------------------------------------------------------------------
    async def run(self) -> None:
        s = self.settings
        timeout = aiohttp.ClientTimeout(total=s.snapshot_timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            self._session = session
            tasks = []
            for name in s.markets:
                urls = s.urls.get(name, {})
                m = market(name, urls.get("ws"), urls.get("rest"))
                self._buckets[name] = WeightBucket(m.weight_per_min * s.weight_share)
                names = stream_names(s.symbols_for(name), s.streams_for(name))
                per = s.max_streams_per_conn or m.max_streams_per_conn
                for i in range(0, len(names), per):
                    tasks.append(asyncio.create_task(self._connection(m, names[i:i + per]),
                                                     name=f"binance-{name}-{i // per}"))
            try:
                await asyncio.gather(*tasks)
            finally:
                for t in tasks:
                    t.cancel()
                for t in list(self._pending_snapshots.values()):
                    t.cancel()
                await asyncio.gather(*tasks, *self._pending_snapshots.values(),
                                     return_exceptions=True)

    async def stop(self) -> None:
        """Close every socket (writing disconnect markers) and end `run()`."""
        self._stop.set()
        for ws in list(self._sockets):
            await ws.close(code=1000, reason="shutdown")

    # -- one connection -------------------------------------------------------------------------
    async def _connection(self, m: Market, streams: list[str]) -> None:
        s = self.settings
        url = f"{m.ws_url}?streams={'/'.join(streams)}"
        depth_symbols = [n.split("@")[0] for n in streams if chain_kind(n) == "depth"]
        backoff = Backoff(s.backoff_initial_s, s.backoff_max_s)
        while not self._stop.is_set():
            conn: Connection | None = None
            state = {"reason": None}
            try:
                async with websockets.connect(
                        url, ping_interval=s.ping_interval_s, ping_timeout=s.ping_timeout_s,
                        open_timeout=s.open_timeout_s, max_size=None, max_queue=None,
                        compression=None) as ws:
                    conn = Connection("ws")
                    self.connections += 1
                    self._sockets.add(ws)
                    now = time.time_ns()
                    for n in streams:
                        self.ingest.put(m.source, n, now, None, conn, Kind.CONNECT, url.encode())
                    for sym in depth_symbols:
                        self.ingest.put(m.source, f"{sym}@snapshot", now, None, conn,
                                        Kind.CONNECT, m.rest_url.encode())
                    _log("connect", source=m.source, conn=conn.conn, streams=len(streams))
                    for sym in depth_symbols:
                        self._request_snapshot(m, sym, conn)
                    watchdog = asyncio.create_task(self._watch(ws, state))
                    try:
                        await self._read(ws, m, conn, state)
                    finally:
                        watchdog.cancel()
                        self._sockets.discard(ws)
            except ConnectionClosed as exc:
                state["reason"] = state["reason"] or f"closed: {exc}"
            except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
                state["reason"] = f"connect failed: {type(exc).__name__}: {exc}"
            if conn is not None:
                conn.closed = True
                now = time.time_ns()
                reason = (state["reason"] or "closed").encode()
                for n in streams:
                    self.ingest.put(m.source, n, now, None, conn, Kind.DISCONNECT, reason)
                for sym in depth_symbols:
                    self.ingest.put(m.source, f"{sym}@snapshot", now, None, conn,
                                    Kind.DISCONNECT, reason)
            _log("disconnect", source=m.source, conn=conn.conn if conn else None,
                 reason=state["reason"])
            if self._stop.is_set():
                return
            if state["reason"] == "rotation":
                backoff.reset()
                continue
            if conn is not None and time.time_ns() - conn.start_ns > 60e9:
                backoff.reset()  # it had been up a while: this is a fresh failure
            delay = backoff.next()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)

    async def _watch(self, ws, state: dict) -> None:
        """Close a stalled connection, and rotate one before the exchange's 24 h cut-off."""
        s = self.settings
        started = time.monotonic()
        tick = min(1.0, s.stale_timeout_s / 4)
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            if now - state.get("last", started) > s.stale_timeout_s:
                state["reason"] = f"stale: no frame for {s.stale_timeout_s} s"
            elif now - started > s.rotate_after_s:
                state["reason"] = "rotation"
            else:
                continue
            await ws.close(code=1000, reason=state["reason"][:100])
            return

    async def _read(self, ws, m: Market, conn: Connection, state: dict) -> None:
        recv = ws.recv
        put = self.ingest.put
        source = m.source
        chains = self._chains
        loads = orjson.loads
        mono = time.monotonic
        while True:
            raw = await recv(decode=False)
            t = time.time_ns()
            state["last"] = mono()
            try:
                obj = loads(raw)
                stream = obj["stream"]
                data = obj["data"]
                if type(stream) is not str or type(data) is not dict:
                    raise TypeError("not a combined-stream envelope")
            except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
                put(source, ERROR_STREAM, t, None, conn, Kind.ERROR, raw)
                _log("malformed_frame", source=source, conn=conn.conn, bytes=len(raw),
                     error=str(exc)[:120])
                continue
            ev = data.get("E")
            if type(ev) is not int:
                ev = data.get("T")
            ev_ns = ev * 1_000_000 if type(ev) is int else None
            key = (source, stream)
            chain = chains.get(key, False)
            if chain is False:
                kind = chain_kind(stream)
                chain = chains[key] = Chain(kind) if kind else None
            if chain is not None:
                gap = chain.check(data)
                if gap is not None:
                    self._gap(m, stream, chain.kind, gap, t, conn)
            put(source, stream, t, ev_ns, conn, Kind.MESSAGE, raw)

    def _gap(self, m: Market, stream: str, kind: str, gap: tuple[int, int], t: int,
             conn: Connection) -> None:
        info = {"from": gap[0], "to": gap[1]}
        self.ingest.put(m.source, stream, t, None, conn, Kind.GAP, orjson.dumps(info))
        self.ingest.status_of(m.source, stream).last_gap = {**info, "recv_ts_ns": t}
        _log("gap", source=m.source, stream=stream, conn=conn.conn, **info)
        if kind == "depth":
            self._request_snapshot(m, stream.split("@")[0], conn)

    # -- snapshots ------------------------------------------------------------------------------
    def _request_snapshot(self, m: Market, symbol: str, conn: Connection) -> None:
        key = (m.name, symbol)
        if key in self._pending_snapshots:
            return  # one in flight is taken after the gap: it covers this one too
        task = asyncio.create_task(self._snapshot(m, symbol, conn))
        self._pending_snapshots[key] = task
        task.add_done_callback(lambda _t: self._pending_snapshots.pop(key, None))

    async def _snapshot(self, m: Market, symbol: str, conn: Connection) -> None:
        s = self.settings
        stream = f"{symbol}@snapshot"
        params = {"symbol": symbol.upper(), "limit": str(s.snapshot_limit)}
        backoff = Backoff(s.backoff_initial_s, s.backoff_max_s)
        while not conn.closed and not self._stop.is_set():
            await self._buckets[m.name].acquire(m.depth_weight(s.snapshot_limit))
            status, body, retry_after = 0, b"", None
            try:
                async with self._session.get(m.rest_url, params=params) as resp:
                    body = await resp.read()
                    status = resp.status
                    retry_after = resp.headers.get("Retry-After")
            except (aiohttp.ClientError, TimeoutError) as exc:
                body = f"{type(exc).__name__}: {exc}".encode()
            t = time.time_ns()
            if conn.closed:
                return  # the next connection takes its own snapshot
            if status == 200:
                ev_ns = None
                try:
                    obj = orjson.loads(body)
                    ev = obj.get("E") or obj.get("T")
                    ev_ns = ev * 1_000_000 if type(ev) is int else None
                    ok = isinstance(obj.get("lastUpdateId"), int)
                except (orjson.JSONDecodeError, AttributeError):
                    ok = False
                if ok:
                    self.ingest.put(m.source, stream, t, ev_ns, conn, Kind.SNAPSHOT, body)
                    self.snapshots += 1
                    _log("snapshot", source=m.source, stream=stream, conn=conn.conn,
                         bytes=len(body))
                    return
            self.snapshot_errors += 1
            self.ingest.put(m.source, stream, t, None, conn, Kind.ERROR, body)
            delay = backoff.next()
            if retry_after and retry_after.isdigit():
                delay = max(delay, float(retry_after))
            _log("snapshot_error", source=m.source, stream=stream, status=status,
                 retry_in_s=round(delay, 3))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)


def _log(event: str, **fields) -> None:
    """One structured log line (JSON) per recorder event."""
    log.info(orjson.dumps({"event": event, **fields}, default=str).decode())
