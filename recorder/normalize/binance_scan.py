"""Compiled scanner for the hot Binance payloads: depth diffs/snapshots, trades, bookTicker.

Why a scanner beside polars' JSON decoder: depth frames carry hundreds of decimal strings each,
and a generic decoder materialises every one as a string before the cast to float. This
numba kernel walks the bytes once, reads only the fields the tables need and converts
decimal strings straight to float64.

Exactness: a decimal string is converted only when its digits fit in 2^53 and it has at
most 22 fractional digits (trailing zeros dropped); then `digits / 10**k` is a quotient of two
exactly representable doubles, which IEEE division rounds correctly, so the float equals the
correctly rounded value polars' parser gives. Anything else (an exponent, a number where a
string is expected, an escape in a key, malformed JSON) marks the message not-ok and the
caller falls back to the polars decoder for the batch, which stays the reference semantics.
The walk is envelope-agnostic: the fields of a `data` object and of the top level are read
alike, so `{"stream":..,"data":{..}}` and a bare event scan the same.

The kernels take a row range and run on one thread. A chunked `prange` version was tried: no
gain measurable on the shared 2-core machine, and numba's OpenMP layer is not fork-safe (a
forked calibration worker could hang); parallelism belongs across segments.
"""

from __future__ import annotations

import numba
import numpy as np
import pyarrow as pa

NULL = np.iinfo(np.int64).min
_MAX_EXACT = 1 << 53
_POW10 = np.array([10.0**k for k in range(23)])

# key codes: one-byte keys use their byte value; longer keys get codes >= 1000
_K_PU, _K_DATA, _K_BIDS, _K_ASKS, _K_LID, _K_SYMBOL = 1000, 1001, 1002, 1003, 1004, 1005
_LID = np.frombuffer(b"lastUpdateId", dtype=np.uint8)
_SYMBOL = np.frombuffer(b"symbol", dtype=np.uint8)
_AGG = np.frombuffer(b"aggTrade", dtype=np.uint8)

_jit = numba.njit(cache=True, nogil=True)


@_jit
def _ws(buf, i, end):
    while i < end and (buf[i] == 32 or buf[i] == 9 or buf[i] == 10 or buf[i] == 13):
        i += 1
    return i


@_jit
def _skip_string(buf, i, end):
    """`i` at the opening quote; returns the index after the closing quote, -1 if unclosed."""
    i += 1
    while i < end:
        c = buf[i]
        if c == 92:
            i += 2
        elif c == 34:
            return i + 1
        else:
            i += 1
    return -1


@_jit
def _skip_value(buf, i, end):
    i = _ws(buf, i, end)
    if i >= end:
        return -1
    c = buf[i]
    if c == 34:
        return _skip_string(buf, i, end)
    if c == 123 or c == 91:
        depth = 0
        while i < end:
            c = buf[i]
            if c == 34:
                i = _skip_string(buf, i, end)
                if i < 0:
                    return -1
                continue
            if c == 123 or c == 91:
                depth += 1
            elif c == 125 or c == 93:
                depth -= 1
                if depth == 0:
                    return i + 1
            i += 1
        return -1
    while i < end and buf[i] != 44 and buf[i] != 125 and buf[i] != 93 and buf[i] != 32:
        i += 1
    return i


@_jit
def _int(buf, i, end):
    """JSON integer -> (value, next index, ok); `null` gives NULL."""
    i = _ws(buf, i, end)
    if i + 4 <= end and buf[i] == 110 and buf[i + 1] == 117 and buf[i + 2] == 108 \
            and buf[i + 3] == 108:
        return NULL, i + 4, True
    neg = False
    if i < end and buf[i] == 45:
        neg = True
        i += 1
    v = 0
    n = 0
    while i < end and 48 <= buf[i] <= 57:
        v = v * 10 + (buf[i] - 48)
        n += 1
        i += 1
    if n == 0 or n > 18 or (i < end and (buf[i] == 46 or buf[i] == 101 or buf[i] == 69)):
        return NULL, i, False
    return (-v if neg else v), i, True


@_jit
def _dec(buf, i, end):
    """Quoted decimal string -> (float, next index, ok); see the module doc for exactness."""
    i = _ws(buf, i, end)
    if i >= end or buf[i] != 34:
        return np.nan, i, False
    i += 1
    neg = False
    if i < end and buf[i] == 45:
        neg = True
        i += 1
    w = 0
    k = 0
    zeros = 0
    digits = 0
    frac = False
    while i < end:
        c = buf[i]
        if 48 <= c <= 57:
            digits += 1
            d = c - 48
            if frac:
                if d == 0:
                    zeros += 1
                else:
                    for _ in range(zeros):
                        w *= 10
                    w = w * 10 + d
                    k += zeros + 1
                    zeros = 0
            else:
                w = w * 10 + d
            if w >= _MAX_EXACT or k > 22:
                return np.nan, i, False
        elif c == 46 and not frac:
            frac = True
        elif c == 34:
            break
        else:
            return np.nan, i, False
        i += 1
    if i >= end or digits == 0:
        return np.nan, i, False
    v = float(w) / _POW10[k] if k else float(w)
    return (-v if neg else v), i + 1, True


@_jit
def _key(buf, i, end):
    """`i` at a key's quote -> (code, index after ':'); code 0 = a key the scanner ignores."""
    s = i + 1
    j = s
    while j < end and buf[j] != 34:
        if buf[j] == 92:
            return -1, j
        j += 1
    n = j - s
    j = _ws(buf, j + 1, end)
    if j >= end or buf[j] != 58:
        return -1, j
    code = 0
    if n == 1:
        code = buf[s]
    elif n == 2 and buf[s] == 112 and buf[s + 1] == 117:
        code = _K_PU
    elif n == 4:
        if buf[s] == 100 and buf[s + 1] == 97 and buf[s + 2] == 116 and buf[s + 3] == 97:
            code = _K_DATA
        elif buf[s] == 98 and buf[s + 1] == 105 and buf[s + 2] == 100 and buf[s + 3] == 115:
            code = _K_BIDS
        elif buf[s] == 97 and buf[s + 1] == 115 and buf[s + 2] == 107 and buf[s + 3] == 115:
            code = _K_ASKS
    elif n == 12 and np.array_equal(buf[s:s + 12], _LID):
        code = _K_LID
    elif n == 6 and np.array_equal(buf[s:s + 6], _SYMBOL):
        code = _K_SYMBOL
    return code, j + 1


@_jit
def _next_key(buf, i, end, nest):
    """Walk a message object, descending into a combined-stream `data` envelope, to its next key.

    Start with nest=0 at the message's first byte. -> (code, index after ':', nest, state):
    state 1 = a key to handle, 0 = the outer object closed, -1 = malformed.
    """
    while True:
        i = _ws(buf, i, end)
        if i >= end:
            return 0, i, nest, -1
        c = buf[i]
        if nest == 0:
            if c != 123:
                return 0, i, nest, -1
            nest = 1
            i += 1
            continue
        if c == 125:
            nest -= 1
            i += 1
            if nest == 0:
                return 0, i, nest, 0
            continue
        if c == 44:
            i += 1
            continue
        if c != 34:
            return 0, i, nest, -1
        code, i = _key(buf, i, end)
        if code < 0:
            return 0, i, nest, -1
        if code == _K_DATA:
            j = _ws(buf, i, end)
            if j < end and buf[j] == 123:
                i = j + 1
                nest += 1
                continue
        return code, i, nest, 1


@_jit
def _string_span(buf, i, end):
    """Quoted string without escapes -> (start, stop, next index); start -1 if not one."""
    i = _ws(buf, i, end)
    if i >= end or buf[i] != 34:
        return -1, -1, i
    j = i + 1
    while j < end and buf[j] != 34:
        if buf[j] == 92:
            return -1, -1, j
        j += 1
    return i + 1, j, j + 1


@_jit
def _levels(buf, i, end, px, qty, pos):
    """`[[px, qty], ...]` of decimal strings appended at `pos` -> (next index, new pos, ok)."""
    i = _ws(buf, i, end)
    if i >= end or buf[i] != 91:
        return i, pos, False
    i += 1
    while True:
        i = _ws(buf, i, end)
        if i >= end:
            return i, pos, False
        c = buf[i]
        if c == 93:
            return i + 1, pos, True
        if c == 44:
            i += 1
            continue
        if c != 91:
            return i, pos, False
        p, i, ok1 = _dec(buf, i + 1, end)
        i = _ws(buf, i, end)
        if not ok1 or i >= end or buf[i] != 44:
            return i, pos, False
        q, i, ok2 = _dec(buf, i + 1, end)
        if not ok2:
            return i, pos, False
        i = _ws(buf, i, end)
        while i < end and buf[i] == 44:  # extra elements of a level (old APIs): skip
            i = _skip_value(buf, i + 1, end)
            if i < 0:
                return end, pos, False
            i = _ws(buf, i, end)
        if i >= end or buf[i] != 93:
            return i, pos, False
        px[pos] = p
        qty[pos] = q
        pos += 1
        i += 1


@_jit
def _scan_depth(buf, offsets, r0, r1, base, ints, sym, bid, ask, bnum, anum, bstart, astart, ok):
    """Depth diffs and snapshots of rows [r0, r1); their levels go from `base` on.

    ints[:, j]: E, T, U, u, pu, lastUpdateId; sym[r] = (start, stop) of `s`/`symbol` in buf.
    """
    bpos = base
    apos = base
    for r in range(r0, r1):
        i = offsets[r]
        end = offsets[r + 1]
        bstart[r] = bpos
        astart[r] = apos
        sym[r, 0] = -1
        sym[r, 1] = -1
        ok[r] = True
        for j in range(6):
            ints[r, j] = NULL
        nest = 0
        good = True
        have_sym = False
        while good:
            code, i, nest, state = _next_key(buf, i, end, nest)
            if state <= 0:
                good = state == 0
                break
            col = -1
            if code == 69:
                col = 0
            elif code == 84:
                col = 1
            elif code == 85:
                col = 2
            elif code == 117:
                col = 3
            elif code == _K_PU:
                col = 4
            elif code == _K_LID:
                col = 5
            if col >= 0:
                v, i, good = _int(buf, i, end)
                ints[r, col] = v
            elif code == 98 or code == _K_BIDS:
                i, bpos, good = _levels(buf, i, end, bid[0], bid[1], bpos)
            elif code == 97 or code == _K_ASKS:
                i, apos, good = _levels(buf, i, end, ask[0], ask[1], apos)
            elif (code == 115 or code == _K_SYMBOL) and not have_sym:
                s, e, i = _string_span(buf, i, end)
                if s < 0:
                    good = False
                else:
                    sym[r, 0] = s
                    sym[r, 1] = e
                    have_sym = True
            else:
                i = _skip_value(buf, i, end)
                good = i >= 0
        ok[r] = good
        bnum[r] = bpos - bstart[r]
        anum[r] = apos - astart[r]


@_jit
def _assemble(bid, ask, bnum, anum, bstart, astart, keep):
    """Level rows in message order, bids then asks; a kept message without levels -> side -1."""
    n = len(bnum)
    total = 0
    for r in range(n):
        if keep[r]:
            total += max(bnum[r] + anum[r], 1)
    msg = np.empty(total, dtype=np.int64)
    level = np.empty(total, dtype=np.int32)
    side = np.empty(total, dtype=np.int8)
    price = np.empty(total, dtype=np.float64)
    qty = np.empty(total, dtype=np.float64)
    o = 0
    for r in range(n):
        if not keep[r]:
            continue
        if bnum[r] + anum[r] == 0:
            msg[o] = r
            level[o] = 0
            side[o] = -1
            price[o] = np.nan
            qty[o] = np.nan
            o += 1
            continue
        lv = 0
        for j in range(bnum[r]):
            msg[o] = r
            level[o] = lv
            side[o] = 0
            price[o] = bid[0, bstart[r] + j]
            qty[o] = bid[1, bstart[r] + j]
            o += 1
            lv += 1
        for j in range(anum[r]):
            msg[o] = r
            level[o] = lv
            side[o] = 1
            price[o] = ask[0, astart[r] + j]
            qty[o] = ask[1, astart[r] + j]
            o += 1
            lv += 1
    return msg, level, side, price, qty


@_jit
def _scan_flat(buf, offsets, r0, r1, ints, floats, flags, sym, trade, ok):
    """Trades (trade=True) or bookTicker events of rows [r0, r1).

    trade: ints E, T, t, a, f, l; floats p, q; flags m (0/1, -1 missing), e == "aggTrade".
    bookTicker: ints E, T, u; floats b, B, a, A.
    """
    for r in range(r0, r1):
        i = offsets[r]
        end = offsets[r + 1]
        sym[r, 0] = -1
        sym[r, 1] = -1
        ok[r] = True
        for j in range(ints.shape[1]):
            ints[r, j] = NULL
        for j in range(floats.shape[1]):
            floats[r, j] = np.nan
        flags[r, 0] = -1
        flags[r, 1] = -1
        nest = 0
        good = True
        have_sym = False
        while good:
            code, i, nest, state = _next_key(buf, i, end, nest)
            if state <= 0:
                good = state == 0
                break
            icol = -1
            fcol = -1
            if code == 69:
                icol = 0
            elif code == 84:
                icol = 1
            elif trade:
                if code == 116:
                    icol = 2
                elif code == 102:
                    icol = 4
                elif code == 108:
                    icol = 5
                elif code == 112:
                    fcol = 0
                elif code == 113:
                    fcol = 1
            else:
                if code == 117:
                    icol = 2
                elif code == 98:
                    fcol = 0
                elif code == 66:
                    fcol = 1
                elif code == 97:
                    fcol = 2
                elif code == 65:
                    fcol = 3
            if icol >= 0:
                v, i, good = _int(buf, i, end)
                ints[r, icol] = v
            elif fcol >= 0:
                v, i, good = _dec(buf, i, end)
                floats[r, fcol] = v
            elif trade and code == 97:  # aggregate id of aggTrade; an order id on spot 2023
                j = _ws(buf, i, end)
                if j < end and (buf[j] == 45 or 48 <= buf[j] <= 57):
                    v, i, good = _int(buf, i, end)
                    ints[r, 3] = v
                else:
                    i = _skip_value(buf, i, end)
                    good = i >= 0
            elif trade and code == 109:
                j = _ws(buf, i, end)
                if j + 4 <= end and buf[j] == 116:
                    flags[r, 0] = 1
                    i = j + 4
                elif j + 5 <= end and buf[j] == 102:
                    flags[r, 0] = 0
                    i = j + 5
                else:
                    i = _skip_value(buf, i, end)
                    good = i >= 0
            elif trade and code == 101:
                s, e, i = _string_span(buf, i, end)
                if s < 0:
                    good = False
                else:
                    flags[r, 1] = 1 if (e - s == 8 and np.array_equal(buf[s:e], _AGG)) else 0
            elif code == 115 and not have_sym:
                s, e, i = _string_span(buf, i, end)
                if s < 0:
                    good = False
                else:
                    sym[r, 0] = s
                    sym[r, 1] = e
                    have_sym = True
            else:
                i = _skip_value(buf, i, end)
                good = i >= 0
        ok[r] = good


@_jit
def _gather_spans(buf, sym):
    """Arrow offsets and bytes of the symbol spans (empty where there is none)."""
    n = sym.shape[0]
    off = np.empty(n + 1, dtype=np.int64)
    off[0] = 0
    for r in range(n):
        off[r + 1] = off[r] + (sym[r, 1] - sym[r, 0] if sym[r, 0] >= 0 else 0)
    data = np.empty(max(off[n], 1), dtype=np.uint8)
    for r in range(n):
        for j in range(sym[r, 0], sym[r, 1]):
            data[off[r] + j - sym[r, 0]] = buf[j]
    return off, data


def _buffers(payload: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Bytes and int64 offsets of a binary column, without copying when it is large_binary."""
    arr = payload.cast(pa.large_binary())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    _, off, data = arr.buffers()
    offsets = np.frombuffer(off, dtype=np.int64, count=len(arr) + 1, offset=arr.offset * 8)
    buf = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
    return buf, offsets


def _symbols(buf: np.ndarray, sym: np.ndarray) -> pa.Array:
    off, data = _gather_spans(buf, sym)
    valid = sym[:, 0] >= 0
    return pa.LargeStringArray.from_buffers(
        len(sym), pa.py_buffer(off), pa.py_buffer(data[:off[-1]]),
        pa.py_buffer(np.packbits(valid, bitorder="little")))


def _ints(col: np.ndarray) -> pa.Array:
    return pa.array(col, mask=col == NULL)


def scan_depth(payload: pa.Array):
    """-> (message columns, level arrays), or None when some message needs the fallback."""
    buf, offsets = _buffers(payload)
    n = len(offsets) - 1
    # a level takes at least 9 bytes (["1","2"]), so the payload size bounds the level count
    cap = int(offsets[-1] - offsets[0]) // 9 + 1
    ints = np.empty((n, 6), dtype=np.int64)
    sym = np.empty((n, 2), dtype=np.int64)
    bid = np.empty((2, cap), dtype=np.float64)
    ask = np.empty((2, cap), dtype=np.float64)
    bnum, anum = np.empty(n, np.int64), np.empty(n, np.int64)
    bstart, astart = np.empty(n, np.int64), np.empty(n, np.int64)
    ok = np.empty(n, dtype=np.bool_)
    _scan_depth(buf, offsets, 0, n, 0, ints, sym, bid, ask, bnum, anum, bstart, astart, ok)
    if not ok.all():
        return None
    cols = {name: _ints(ints[:, j]) for j, name in enumerate(["E", "T", "U", "u", "pu",
                                                              "lastUpdateId"])}
    cols["s"] = _symbols(buf, sym)
    return cols, (bid, ask, bnum, anum, bstart, astart)


def assemble_levels(levels, keep: np.ndarray):
    """Row arrays (message index, level, side, price, qty) for the kept messages."""
    bid, ask, bnum, anum, bstart, astart = levels
    return _assemble(bid, ask, bnum, anum, bstart, astart, keep)


def scan_flat(payload: pa.Array, trade: bool):
    """Trade or bookTicker fields as Arrow arrays, or None when the fallback is needed."""
    buf, offsets = _buffers(payload)
    n = len(offsets) - 1
    ints = np.empty((n, 6 if trade else 3), dtype=np.int64)
    floats = np.empty((n, 2 if trade else 4), dtype=np.float64)
    flags = np.empty((n, 2), dtype=np.int8)
    sym = np.empty((n, 2), dtype=np.int64)
    ok = np.empty(n, dtype=np.bool_)
    _scan_flat(buf, offsets, 0, n, ints, floats, flags, sym, trade, ok)
    if not ok.all():
        return None
    inames = ["E", "T", "t", "a", "f", "l"] if trade else ["E", "T", "u"]
    fnames = ["p", "q"] if trade else ["b", "B", "a", "A"]
    cols = {name: _ints(ints[:, j]) for j, name in enumerate(inames)}
    for j, name in enumerate(fnames):
        cols[name] = pa.array(floats[:, j], mask=np.isnan(floats[:, j]))
    if trade:
        cols["m"] = pa.array(flags[:, 0] == 1, mask=flags[:, 0] < 0)
        cols["is_agg"] = pa.array(flags[:, 1] == 1, mask=flags[:, 1] < 0)
    cols["s"] = _symbols(buf, sym)
    return cols
