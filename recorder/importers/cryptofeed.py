"""cryptofeed raw captures (`raw_data_collection=AsyncFileCallback(...)`), Binance exchanges.

cryptofeed writes one file per connection uuid, lines of four shapes:

    <url> <-> <epoch s>                 a websocket connection opens      -> kind=connect
    <epoch s>: <frame>                  a websocket frame                 -> kind=message
    <url> -> <epoch s>: <body>          an HTTP response (REST)           -> snapshot / message
    <url> <- <epoch s>: <data>          a frame we sent (subscriptions)   -> stream `ws/sent`
    configuration: <json>               cryptofeed's feed configuration   -> `cryptofeed/configuration`

Depth REST bodies become `kind=snapshot` on `<symbol>@snapshot` (symbol from the URL's
`symbol=`); any other REST body goes to `rest/<url path>` (e.g. `rest/api/v3/exchangeInfo`).
The exchange is the file name's first part (BINANCE -> binance.spot, BINANCE_FUTURES ->
binance.usdm, BINANCE_DELIVERY -> binance.coinm, BINANCE_US -> binance.us). Each `<->` line after
the first data starts a new connection id (`file:<sha16>.<k>`): a reconnect stays visible.
The configuration line has no time of its own: it takes the time of the line before it (or,
first in the file, the next timestamped line).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import numpy as np
import orjson
import pyarrow as pa

from recorder.events import Kind
from recorder.importers.binance_frames import event_ms, snapshot_stream, source_for
from recorder.importers.blocks import Block, binary_ranges, inner_name
from recorder.importers.fileimport import FileImport
from recorder.importers.timestamps import decimal_seconds_to_ns

EXCHANGES = {"BINANCE": "spot", "BINANCE_FUTURES": "usdm", "BINANCE_DELIVERY": "coinm",
             "BINANCE_US": "us"}
CONFIG_STREAM = "cryptofeed/configuration"
SENT_STREAM = "ws/sent"
_CONFIG = b"configuration: "


@dataclass
class _State:
    source: str
    base_conn: str
    k: int = 0
    conn_used: bool = False
    url: bytes = b""
    last_ns: int | None = None
    pending_config: list[tuple[int, bytes, str]] = field(default_factory=list)

    @property
    def conn(self) -> str:
        return self.base_conn if self.k == 0 else f"{self.base_conn}.{self.k}"


def _source(fi: FileImport) -> str:
    if fi.options.market is not None:
        fi.report.note(f"market {fi.options.market} (given)")
        return source_for(fi.options.market)
    exchange = inner_name(fi.path).split(".", 1)[0].upper()
    if exchange not in EXCHANGES:
        raise fi.fail(None, f"cannot tell the exchange from the file name ({exchange!r}): "
                      f"expected {', '.join(EXCHANGES)} as cryptofeed names its files, "
                      "or give market=spot|usdm|coinm|us")
    fi.report.note(f"market {EXCHANGES[exchange]} from the file name ({exchange})")
    return source_for(EXCHANGES[exchange])


def read(fi: FileImport) -> None:
    st = _State(source=_source(fi), base_conn=fi.conn)
    fi.report.unit = "s"
    for block in fi.blocks():
        _read_block(fi, block, st)
    if st.pending_config:
        fi.reject([p[0] for p in st.pending_config],
                  ["configuration line with no timestamped line in the file"]
                  * len(st.pending_config))


def _http_stream(url: str, body) -> tuple[str, str]:
    parts = urlsplit(url)
    if parts.path.endswith("/depth") and type(body) is dict and "lastUpdateId" in body:
        symbol = (parse_qs(parts.query).get("symbol") or [body.get("symbol")])[0]
        if type(symbol) is str:
            return snapshot_stream(symbol), Kind.SNAPSHOT.value
    return "rest/" + parts.path.lstrip("/"), Kind.MESSAGE.value


def _read_block(fi: FileImport, block: Block, st: _State) -> None:
    starts, ends, linenos = block.lines()
    data = block.data
    mv = memoryview(data)
    rows_i: list[int] = []
    pay: list[int] = []
    recv: list[int] = []
    ev: list[int | None] = []
    streams: list[str] = []
    kinds: list[str] = []
    conns: list[str] = []
    marker: list[bytes] = []
    bad: list[int] = []
    why: list[str] = []
    extra: list[tuple[int, bytes, str, int]] = []  # configuration lines resolved here
    loads, JSONDecodeError = orjson.loads, orjson.JSONDecodeError

    def emit(k, start, ns, t, stream, kind, marker_payload):
        rows_i.append(k)
        pay.append(start)
        recv.append(ns)
        ev.append(None if t is None else t * 1_000_000)
        streams.append(stream)
        kinds.append(kind)
        conns.append(st.conn)
        marker.append(marker_payload)
        st.conn_used = True

    for k, (a, e) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
        try:
            if data.startswith(_CONFIG, a, e):
                payload = bytes(mv[a + len(_CONFIG) : e])
                if st.last_ns is None:
                    st.pending_config.append((int(linenos[k]), payload, st.conn))
                else:
                    extra.append((int(linenos[k]), payload, st.conn, st.last_ns))
                continue
            if 48 <= data[a] <= 57:  # '<epoch>: <frame>'
                colon = data.find(b": ", a, e)
                if colon < 0:
                    raise ValueError("expected '<epoch>: <frame>'")
                ns = decimal_seconds_to_ns(data[a:colon])
                body_at = colon + 2
                d = loads(mv[body_at:e])
                stream = d.get("stream") if type(d) is dict else None
                if type(stream) is not str:
                    raise ValueError("websocket frame is not a combined-stream envelope")
                inner = d.get("data")
                t = event_ms(inner) if type(inner) is dict else None
                _time_seen(st, ns, extra)
                emit(k, body_at, ns, t, stream, Kind.MESSAGE.value, st.url)
                continue
            sp = data.find(b" ", a, e)
            if sp < 0:
                raise ValueError("unrecognised line")
            url = data[a:sp]
            if data.startswith(b" <-> ", sp, e):
                ns = decimal_seconds_to_ns(data[sp + 5 : e])
                if st.conn_used:
                    st.k += 1
                    st.conn_used = False
                st.url = url
                fi.connection(st.conn, url, ns)
                _time_seen(st, ns, extra)
                continue
            arrow = data.startswith(b" -> ", sp, e)
            if not (arrow or data.startswith(b" <- ", sp, e)):
                raise ValueError("unrecognised line (expected '<url> <->', '->' or '<-')")
            colon = data.find(b": ", sp + 4, e)
            if colon < 0:
                raise ValueError("expected '<url> -> <epoch>: <body>'")
            ns = decimal_seconds_to_ns(data[sp + 4 : colon])
            _time_seen(st, ns, extra)
            if arrow:
                body = loads(mv[colon + 2 : e])
                stream, kind = _http_stream(url.decode("utf-8", "replace"), body)
                t = event_ms(body) if type(body) is dict else None
                emit(k, colon + 2, ns, t, stream, kind, url)
            else:
                emit(k, colon + 2, ns, None, SENT_STREAM, Kind.MESSAGE.value, st.url)
        except JSONDecodeError as exc:
            bad.append(k)
            why.append(f"invalid JSON ({exc})")
        except ValueError as exc:
            bad.append(k)
            why.append(str(exc))
    fi.reject(linenos[bad], why)
    if extra:
        fi.add(source=st.source, stream=[CONFIG_STREAM] * len(extra),
               recv_ns=np.array([x[3] for x in extra], np.int64),
               payload=pa.array([x[1] for x in extra], pa.binary()),
               conn=[x[2] for x in extra])
    if rows_i:
        idx = np.array(rows_i, np.int64)
        fi.add(source=st.source, stream=streams, recv_ns=np.array(recv, np.int64),
               event_ns=pa.array(ev, pa.int64()), kind=kinds, conn=conns,
               payload=binary_ranges(block.arr, np.array(pay, np.int64), ends[idx]),
               marker_payload=marker)


def _time_seen(st: _State, ns: int, extra: list) -> None:
    """A timestamped line: configuration lines waiting for a time take this one."""
    st.last_ns = ns
    for line, payload, conn in st.pending_config:
        extra.append((line, payload, conn, ns))
    st.pending_config.clear()
