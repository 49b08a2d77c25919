"""A local Binance exchange serving real recordings: websockets stream + aiohttp REST depth.

`LocalExchange(files, speed=...)` replays hftbacktest recordings (`<recv_ts_ns> <json>` lines,
committed under tests/data/binance) on `ws://127.0.0.1:PORT/stream?streams=a/b/c` and serves
`GET /api/v3/depth` (also `/fapi/v1/depth`, `/dapi/v1/depth`). Like a live exchange it has one
feed position: frames sent while a client is disconnected are lost to it. `speed` scales the
original pacing; `speed=None` sends as fast as the clients read (the feed then waits for a
client); `min_clients` holds the feed until that many are connected. Snapshots: before the
feed passes the recording's own REST snapshot, that body is served verbatim; afterwards the
book is rebuilt server-side (the recording's snapshot plus every diff up to the feed position)
and served with `lastUpdateId` = the last applied `u`, so a client that re-snapshots after a
gap can sync by update ids.

Faults, callable from any thread: `disconnect()`, `drop(n)` (skip n depth frames: update-id
gaps), `malformed(n)` (n truncated frames), `stall(seconds)`, `slow(delay_s, frames)`,
`snapshot_errors(n, status)`. The server runs on its own event loop in a background thread.
"""

from __future__ import annotations

import asyncio
import gzip
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import orjson
import websockets
from aiohttp import web
from websockets.exceptions import ConnectionClosed


@dataclass(slots=True)
class Frame:
    ts: int
    stream: str
    raw: bytes
    depth: dict | None = None   # parsed data of a depth diff (for the server-side book)


@dataclass
class Book:
    """Price level book keyed by the recording's own price strings."""

    last_u: int
    bids: dict[str, str] = field(default_factory=dict)
    asks: dict[str, str] = field(default_factory=dict)
    E: int | None = None
    T: int | None = None

    def apply(self, data: dict) -> None:
        for side, levels in ((self.bids, data["b"]), (self.asks, data["a"])):
            for p, q in levels:
                if float(q) == 0.0:
                    side.pop(p, None)
                else:
                    side[p] = q
        self.last_u = data["u"]
        self.E, self.T = data.get("E"), data.get("T")

    def body(self, limit: int, futures: bool) -> bytes:
        bids = sorted(self.bids.items(), key=lambda kv: -float(kv[0]))[:limit]
        asks = sorted(self.asks.items(), key=lambda kv: float(kv[0]))[:limit]
        out: dict = {"lastUpdateId": self.last_u}
        if futures:
            out.update(E=self.E, T=self.T)
        out.update(bids=[list(x) for x in bids], asks=[list(x) for x in asks])
        return orjson.dumps(out)


@dataclass
class Recording:
    """Frames of one or more recordings in receive order, plus each symbol's REST snapshot."""

    frames: list[Frame]
    snapshots: dict[str, tuple[int, bytes]]   # symbol -> (frame index it was logged at, body)

    @classmethod
    def load(cls, paths: list[str | Path], limit: int | None = None) -> Recording:
        rows: list[tuple[int, bytes]] = []
        for p in paths:
            with gzip.open(p, "rb") as f:
                for i, line in enumerate(f):
                    if limit is not None and i >= limit:
                        break
                    ts, _, body = line.rstrip(b"\n").partition(b" ")
                    rows.append((int(ts), body))
        rows.sort(key=lambda r: r[0])
        frames: list[Frame] = []
        pending: list[bytes] = []
        snapshots: dict[str, tuple[int, bytes]] = {}
        for ts, body in rows:
            obj = orjson.loads(body)
            if "stream" not in obj:
                pending.append(body)  # REST snapshot: symbol = the depth stream near it
                continue
            stream = obj["stream"]
            depth = obj["data"] if "@depth" in stream else None
            frames.append(Frame(ts, stream, body, depth))
            if depth is not None and pending:
                sym = stream.split("@")[0]
                for snap in pending:
                    snapshots.setdefault(sym, (len(frames) - 1, snap))
                pending = []
        return cls(frames, snapshots)


def _wire_frame(payload: bytes) -> bytes:
    """One unmasked, final text frame (RFC 6455 5.2) as a server writes it."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 1 << 16:
        return bytes((0x81, 126)) + n.to_bytes(2, "big") + payload
    return bytes((0x81, 127)) + n.to_bytes(8, "big") + payload


class _Client:
    __slots__ = ("ws", "streams")

    def __init__(self, ws, streams: set[str]) -> None:
        self.ws, self.streams = ws, streams


class LocalExchange:
    """`with LocalExchange(files) as ex:` -> `ex.ws_url`, `ex.rest_url(market)`, faults."""

    def __init__(self, files: list[str | Path], *, speed: float | None = 1.0,
                 line_limit: int | None = None, futures: bool = False,
                 min_clients: int = 1, wire_batch: int = 0) -> None:
        self.recording = Recording.load(files, line_limit)
        self.speed = speed
        self.futures = futures
        self.min_clients = min_clients
        self.wire_batch = wire_batch
        self.clients: list[_Client] = []
        self.connections = 0
        self.sent = 0
        self.dropped: list[int] = []          # indices of frames dropped on purpose
        self.malformed_sent: list[bytes] = []
        self.snapshots_served: list[tuple[str, int]] = []
        self.snapshot_failures = 0
        self.cursor = 0
        self.done = threading.Event()
        self._drop = 0
        self._malformed = 0
        self._snapshot_errors: list[int] = []
        self._slow = (0.0, 0)
        self._books: dict[str, Book] = {}
        self._applied: dict[str, int] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._pumping = False

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> LocalExchange:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(30)
        return self

    async def _start(self) -> None:
        self._resume = asyncio.Event()
        self._resume.set()
        self._any_client = asyncio.Event()
        self._ws_server = await websockets.serve(self._handler, "127.0.0.1", 0,
                                                 compression=None, max_queue=None)
        self.ws_port = self._ws_server.sockets[0].getsockname()[1]
        app = web.Application()
        for path in ("/api/v3/depth", "/fapi/v1/depth", "/dapi/v1/depth"):
            app.router.add_get(path, self._depth)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.rest_port = site._server.sockets[0].getsockname()[1]
        self._pump_task = asyncio.create_task(self._pump())

    def stop(self) -> None:
        async def _stop():
            self._pump_task.cancel()
            self._ws_server.close()
            for c in list(self.clients):
                c.ws.transport.abort()
            await self._runner.cleanup()

        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(_stop(), self._loop).result(30)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self) -> LocalExchange:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}/stream"

    def rest_url(self, market: str = "spot") -> str:
        path = {"spot": "/api/v3/depth", "usdm": "/fapi/v1/depth", "coinm": "/dapi/v1/depth"}
        return f"http://127.0.0.1:{self.rest_port}{path[market]}"

    # -- faults (thread-safe) -------------------------------------------------------------------
    def _call(self, fn, *args) -> None:
        self._loop.call_soon_threadsafe(fn, *args)

    def disconnect(self, abrupt: bool = False) -> None:
        """Close every client connection (abrupt: drop the TCP connection without a close)."""
        def go():
            for c in list(self.clients):
                if abrupt:
                    c.ws.transport.abort()
                else:
                    asyncio.ensure_future(c.ws.close(1001, "going away"))
        self._call(go)

    def drop(self, n: int) -> None:
        """Skip the next n depth frames (clients see update-id gaps)."""
        def go():
            self._drop += n
        self._call(go)

    def malformed(self, n: int) -> None:
        """Send n truncated (unparsable) frames between real ones."""
        def go():
            self._malformed += n
        self._call(go)

    def stall(self, seconds: float) -> None:
        """Send nothing for `seconds` (the connection stays open, pings are still answered)."""
        def go():
            self._resume.clear()
            self._loop.call_later(seconds, self._resume.set)
        self._call(go)

    def slow(self, delay_s: float, frames: int) -> None:
        """Wait `delay_s` before each of the next `frames` frames (a slow feed)."""
        def go():
            self._slow = (delay_s, frames)
        self._call(go)

    def snapshot_errors(self, n: int, status: int = 500) -> None:
        """Fail the next n REST snapshot requests with `status` (429 adds Retry-After: 1)."""
        def go():
            self._snapshot_errors += [status] * n
        self._call(go)

    # -- websocket side -------------------------------------------------------------------------
    async def _handler(self, ws) -> None:
        q = parse_qs(urlparse(ws.request.path).query)
        streams = set("/".join(q.get("streams", [""])).split("/")) - {""}
        client = _Client(ws, streams)
        self.clients.append(client)
        self.connections += 1
        if len(self.clients) >= self.min_clients or self._pumping:
            self._any_client.set()
        try:
            await ws.wait_closed()
        finally:
            if client in self.clients:
                self.clients.remove(client)
            if not self.clients:
                self._any_client.clear()

    async def _pump(self) -> None:
        frames = self.recording.frames
        await self._any_client.wait()
        self._pumping = True
        if self.speed is None and self.wire_batch > 1:
            await self._pump_wire(frames)
            return
        ts0 = frames[0].ts if frames else 0
        t0 = time.monotonic()
        for i, f in enumerate(frames):
            self.cursor = i
            if self.speed is not None:
                delay = (f.ts - ts0) / 1e9 / self.speed - (time.monotonic() - t0)
                if delay > 0:
                    await asyncio.sleep(delay)
            if not self._resume.is_set():
                await self._resume.wait()
                if self.speed is not None:  # do not catch up in a burst after a stall
                    t0 = time.monotonic() - (f.ts - ts0) / 1e9 / self.speed
            if self._slow[1] > 0:
                await asyncio.sleep(self._slow[0])
                self._slow = (self._slow[0], self._slow[1] - 1)
            if self.speed is None and not self.clients:
                await self._any_client.wait()
            if self._malformed > 0:
                self._malformed -= 1
                bad = f.raw[: len(f.raw) // 2]
                self.malformed_sent.append(bad)
                await self._send_all(bad, None)
            if self._drop > 0 and f.depth is not None:
                self._drop -= 1
                self.dropped.append(i)
                continue
            await self._send_all(f.raw, f.stream)
        self.cursor = len(frames)
        self.done.set()

    async def _pump_wire(self, frames: list[Frame]) -> None:
        """Benchmark mode: pre-encoded websocket frames written `wire_batch` at a time.

        A Python server sending one frame per `send` tops out near 50k frames/s, below what
        the recorder can take; writing ready-made wire frames in chunks (server frames are
        unmasked: header + payload) lets the recorder, not the server, set the pace. Faults
        are not applied in this mode.
        """
        wire = [_wire_frame(f.raw) for f in frames]
        for i in range(0, len(frames), self.wire_batch):
            self.cursor = i
            if not self.clients:
                await self._any_client.wait()
            for c in list(self.clients):
                chunk = b"".join(w for f, w in zip(frames[i:i + self.wire_batch],
                                                   wire[i:i + self.wire_batch], strict=True)
                                 if f.stream in c.streams)
                tr = c.ws.transport
                if tr.is_closing():
                    continue
                tr.write(chunk)
                self.sent += len(chunk) and sum(1 for f in frames[i:i + self.wire_batch]
                                                if f.stream in c.streams)
                while tr.get_write_buffer_size() > (4 << 20) and not tr.is_closing():
                    await asyncio.sleep(0.001)
        self.cursor = len(frames)
        self.done.set()

    async def _send_all(self, raw: bytes, stream: str | None) -> None:
        for c in list(self.clients):
            if stream is None or stream in c.streams:
                try:
                    await c.ws.send(raw, text=True)
                    self.sent += 1
                except ConnectionClosed:
                    pass

    # -- REST side ------------------------------------------------------------------------------
    async def _depth(self, request: web.Request) -> web.Response:
        symbol = request.query.get("symbol", "").lower()
        limit = int(request.query.get("limit", "1000"))
        if self._snapshot_errors:
            status = self._snapshot_errors.pop(0)
            self.snapshot_failures += 1
            headers = {"Retry-After": "1"} if status == 429 else {}
            return web.Response(status=status, headers=headers,
                                body=b'{"code":-1003,"msg":"injected snapshot error"}',
                                content_type="application/json")
        body = self._snapshot_body(symbol, limit)
        if body is None:
            return web.Response(status=400, body=b'{"code":-1121,"msg":"Invalid symbol."}',
                                content_type="application/json")
        self.snapshots_served.append((symbol, orjson.loads(body)["lastUpdateId"]))
        return web.Response(body=body, content_type="application/json")

    def _snapshot_body(self, symbol: str, limit: int) -> bytes | None:
        snap = self.recording.snapshots.get(symbol)
        if snap is None:
            return None
        _, raw = snap
        lid = orjson.loads(raw)["lastUpdateId"]
        book = self._books.get(symbol)
        if book is None:
            obj = orjson.loads(raw)
            book = Book(lid, dict(map(tuple, obj["bids"])), dict(map(tuple, obj["asks"])),
                        obj.get("E"), obj.get("T"))
            self._books[symbol] = book
            self._applied[symbol] = 0
        frames = self.recording.frames
        upto = min(self.cursor, len(frames))
        for i in range(self._applied[symbol], upto):
            f = frames[i]
            if f.depth is not None and f.stream.split("@")[0] == symbol and f.depth["u"] > lid:
                book.apply(f.depth)
        self._applied[symbol] = max(self._applied[symbol], upto)
        if book.last_u == lid:
            return raw  # the feed has not passed the recorded snapshot yet: serve it verbatim
        return book.body(limit, self.futures)


def main() -> None:
    """`python -m tests.harness.exchange FILE...`: serve recordings on 127.0.0.1 until Ctrl-C."""
    import argparse
    import time

    p = argparse.ArgumentParser(description="A local Binance exchange replaying real recordings.")
    p.add_argument("files", nargs="+", help="hftbacktest-format recordings (e.g. tests/data/binance/*.gz)")
    p.add_argument("--speed", type=float, default=1.0, help="x real time (0 = as fast as read)")
    args = p.parse_args()
    with LocalExchange(args.files, speed=args.speed or None) as ex:
        print(f"websocket {ex.ws_url}\nREST      {ex.rest_url('spot')}\nrecord it with:\n"
              f"  smabm record log.root=var/local-log record.binance.symbols=[btcusdt] "
              f"record.binance.urls.spot.ws={ex.ws_url} record.binance.urls.spot.rest={ex.rest_url('spot')}",
              flush=True)
        try:
            while not ex.done.is_set():
                time.sleep(0.5)
            print("recording served to the end; Ctrl-C to stop", flush=True)
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
