"""hftbacktest collector files: `<local_ts> <json>` lines, gzip, one exchange connection each.

Each line is a combined-stream envelope `{"stream": .., "data": {..}}` exactly as received, or
a REST depth snapshot (`lastUpdateId`, no `stream`). The local timestamp is ns in the 2024
collector and µs in the 2023 one: the unit is read per file from the magnitude of the first
line and every other line must agree. The market is not written anywhere in the file: it comes
from `market=` or is inferred (futures depth updates carry `pu`, futures snapshots `E`;
COIN-M symbols contain `_`), and the report says which rule decided.

A spot REST snapshot does not name its symbol. It is given the symbol of the file's depth
stream; if the file holds several, the one whose last update id is closest to the snapshot's
`lastUpdateId` (the diff that straddles a snapshot is logged just before it); if no depth
update precedes it, the first depth stream that follows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from recorder.events import Kind
from recorder.importers.binance_frames import event_ms, snapshot_stream, source_for
from recorder.importers.blocks import Block, binary_ranges
from recorder.importers.fileimport import FileImport
from recorder.importers.timestamps import NS_PER, unit_name, units_of


@dataclass
class _Pending:
    """A snapshot seen before any depth update: held until a depth stream names its symbol."""

    line: int
    recv: int
    event_ms: int | None
    lid: int
    payload: bytes
    symbol: str | None = None


@dataclass
class _State:
    unit: int | None = None
    source: str | None = None
    last_u: dict[str, int] = field(default_factory=dict)
    futures: str | None = None
    symbols: set[str] = field(default_factory=set)
    pending: list[_Pending] = field(default_factory=list)


def _closest_symbol(last_u: dict[str, int], lid: int) -> str:
    return min(sorted(last_u), key=lambda s: abs(last_u[s] - lid))


def read(fi: FileImport) -> None:
    state = _State()
    for block in fi.blocks():
        _read_block(fi, block, state)
    if state.pending:
        fi.reject([p.line for p in state.pending],
                  ["depth snapshot without a symbol and no depth stream in the file"]
                  * len(state.pending))


def _prefix(arr: np.ndarray, starts: np.ndarray, ends: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised `<digits> ` prefix of each line: (space position, integer value, valid)."""
    spaces = np.flatnonzero(arr == 32)
    i = np.searchsorted(spaces, starts)
    sp = spaces[np.minimum(i, len(spaces) - 1)] if len(spaces) else np.zeros_like(starts)
    width = sp - starts
    valid = (i < len(spaces)) & (sp < ends) & (width > 0) & (width <= 19)
    value = np.zeros(len(starts), np.int64)
    for j in range(19):
        m = valid & (j < width)
        if not m.any():
            break
        digit = arr[np.minimum(starts + j, len(arr) - 1)].astype(np.int64) - 48
        valid &= ~m | ((digit >= 0) & (digit <= 9))
        value = np.where(m, value * 10 + digit, value)
    return sp, value, valid


def _read_block(fi: FileImport, block: Block, st: _State) -> None:
    starts, ends, linenos = block.lines()
    mv = memoryview(block.data)
    n = len(starts)
    sp, ts, prefix_ok = _prefix(block.arr, starts, ends)
    ev: list[int | None] = [None] * n
    ok = np.zeros(n, np.bool_)
    streams: list[str | None] = [None] * n
    snap = np.zeros(n, np.bool_)
    bad: list[int] = np.flatnonzero(~prefix_ok).tolist()
    why: list[str] = ["expected '<local_ts> <json>'"] * len(bad)
    resolved: list[_Pending] = []
    loads, JSONDecodeError = orjson.loads, orjson.JSONDecodeError
    todo = np.flatnonzero(prefix_ok)
    for k, a, e in zip(todo.tolist(), (sp[todo] + 1).tolist(), ends[todo].tolist(), strict=True):
        try:
            d = loads(mv[a:e])
        except JSONDecodeError as exc:
            bad.append(k)
            why.append(f"invalid JSON ({exc})")
            continue
        if type(d) is not dict:
            bad.append(k)
            why.append("the JSON is not an object")
            continue
        stream = d.get("stream")
        if type(stream) is str:
            inner = d.get("data")
            if type(inner) is dict:
                t = inner.get("E")
                if type(t) is not int:
                    t = inner.get("T")
                ev[k] = t if type(t) is int else None
                if "@depth" in stream:
                    _depth_seen(st, stream, inner, resolved)
            streams[k] = stream
        elif "lastUpdateId" in d:
            lid = d["lastUpdateId"]
            t = event_ms(d)
            if t is not None:
                ev[k] = t
                st.futures = st.futures or "depth snapshots carry 'E'"
            sym = d.get("symbol")
            if type(sym) is str:
                st.symbols.add(sym.lower())
                streams[k] = snapshot_stream(sym)
            elif st.last_u:
                streams[k] = snapshot_stream(_closest_symbol(st.last_u, lid))
            else:
                st.pending.append(_Pending(int(linenos[k]), int(ts[k]), t, lid,
                                           bytes(mv[a:e])))
                continue
            snap[k] = True
        else:
            bad.append(k)
            why.append("neither a combined-stream envelope nor a REST depth snapshot")
            continue
        ok[k] = True
    _check_units(fi, st, ts, ok, linenos, bad, why)
    fi.reject(linenos[bad], why)
    if st.source is None:
        st.source = _decide_source(fi, st)
    if resolved:
        _add_resolved(fi, st, resolved)
    idx = np.flatnonzero(ok)
    scale = NS_PER[unit_name(st.unit)] if st.unit is not None else 1
    ev_ns = pa.array([ev[i] for i in idx.tolist()], pa.int64())
    fi.add(
        source=st.source,
        stream=[streams[i] for i in idx.tolist()],
        recv_ns=ts[idx] * scale,
        event_ns=pc.multiply(ev_ns, 1_000_000),
        kind=np.where(snap[idx], Kind.SNAPSHOT.value, Kind.MESSAGE.value).tolist(),
        payload=binary_ranges(block.arr, sp[idx] + 1, ends[idx]),
    )


def _depth_seen(st: _State, stream: str, inner: dict, resolved: list[_Pending]) -> None:
    """A depth update: remember its symbol's last update id; name any waiting snapshot."""
    sym = stream.split("@", 1)[0]
    st.symbols.add(sym)
    if st.futures is None and "pu" in inner:
        st.futures = "depth updates carry 'pu'"
    u = inner.get("u")
    if type(u) is int:
        st.last_u[sym] = u
    if st.pending:
        for p in st.pending:
            p.symbol = _closest_symbol(st.last_u, p.lid)
        resolved.extend(st.pending)
        st.pending.clear()


def _check_units(fi: FileImport, st: _State, ts: np.ndarray, ok: np.ndarray,
                 linenos: np.ndarray, bad: list[int], why: list[str]) -> None:
    """Fix the file's unit on its first good line; lines in another unit are bad lines."""
    units = units_of(ts)
    good = np.flatnonzero(ok)
    if st.unit is None and len(good):
        st.unit = int(units[good[0]])
        if st.unit < 0:
            raise fi.fail(int(linenos[good[0]]), f"local timestamp {ts[good[0]]} is not an "
                          "epoch time in s, ms, us or ns")
        fi.report.unit = unit_name(st.unit)
        fi.report.note(f"local timestamps are {unit_name(st.unit)} (from their magnitude)")
    if st.unit is None:
        return
    for k in good[units[good] != st.unit].tolist():
        ok[k] = False
        bad.append(k)
        why.append(f"local timestamp {ts[k]} is not in {unit_name(st.unit)} like the file's "
                   "first line")


def _decide_source(fi: FileImport, st: _State) -> str:
    market = fi.options.market
    if market is not None:
        fi.report.note(f"market {market} (given)")
        return source_for(market, ("spot", "usdm", "coinm"))
    if st.futures:
        coin = any("_" in s for s in st.symbols)
        market = "coinm" if coin else "usdm"
        fi.report.note(f"market {market} inferred: {st.futures} (futures); symbols "
                       + ("contain '_' (COIN-M)" if coin else "have no '_' (USD-M)"))
    else:
        market = "spot"
        fi.report.note("market spot inferred: no futures fields ('pu', snapshot 'E') seen")
    return source_for(market)


def _add_resolved(fi: FileImport, st: _State, resolved: list[_Pending]) -> None:
    wrong = [p for p in resolved if units_of(np.array([p.recv]))[0] != st.unit]
    fi.reject([p.line for p in wrong], [f"local timestamp {p.recv} is not in "
                                        f"{unit_name(st.unit)} like the file's first line"
                                        for p in wrong])
    resolved = [p for p in resolved if p not in wrong]
    if not resolved:
        return
    scale = NS_PER[unit_name(st.unit)]
    ev = [p.event_ms for p in resolved]
    fi.add(
        source=st.source,
        stream=[snapshot_stream(p.symbol) for p in resolved],
        recv_ns=np.array([p.recv for p in resolved], np.int64) * scale,
        event_ns=pa.array([None if t is None else t * 1_000_000 for t in ev], pa.int64()),
        kind=Kind.SNAPSHOT.value,
        payload=pa.array([p.payload for p in resolved], pa.binary()),
    )
