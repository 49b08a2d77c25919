"""The book stage: Binance L2 rebuilt from REST snapshots + depth diffs, synced by update ids.

The hot path is one numba kernel (`_run`) over a chunk of normalised depth rows: it applies
every message in order, follows the Binance sync rules (docs/concepts/book.md), and writes one
output row per replay step. No Python runs per message or per level.

Book representation (hftbacktest's ROIVector idea, made exact): each side is a dense array of
quantities indexed by price tick inside a window of `window_ticks` ticks around the mid, plus an
open-addressing hash table for the few levels outside the window. The window recentres when the
mid drifts a quarter window off centre, moving levels between the two. Prices and quantities
are integers (ticks and lots of 10**-decimals), so best levels and depth sums are exact;
outputs are converted back to floats as `int / 10**decimals`, which is the float the decimal
string parses to, whatever the decimals, so outputs do not depend on the chosen grid.

All state lives in numpy arrays (`_State`); the kernel returns early when a table needs to
grow, the wrapper grows it and resumes at the same message. Feeding a window in chunks gives
the same outputs as feeding it whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numba as nb
import numpy as np
import polars as pl
import pyarrow as pa

from replay.stage import Chunk

# -- constants shared by the kernel and the wrapper ------------------------------------------------
NO_BID = np.int64(-1)
NO_ASK = np.int64(np.iinfo(np.int64).max)
EMPTY = np.int64(-1)  # free slot of an overflow hash table (prices are >= 0)

UNSYNCED, PENDING, SYNCED = 0, 1, 2  # book states; only SYNCED is valid
SPOT, FUTURES = 0, 1  # sync rules
DROP, APPLY, GAP = 0, 1, 2
GAP_DIFF, GAP_SNAPSHOT = 1, 2  # a diff broke the chain | no diff continues the snapshot
OK, NEED_OVF, NEED_BUF = 0, 1, 2  # kernel return status

# registers: the kernel's scalar state, one int64 array
R_LO, R_BB, R_BA, R_STATE, R_LAST, R_RULE = 0, 1, 2, 3, 4, 5
R_OFI, R_PBB, R_PBQ, R_PBA, R_PAQ, R_PREV_OK = 6, 7, 8, 9, 10, 11
R_NMSG, R_NGAP, R_NCROSS = 12, 13, 14
R_USED = 15  # used overflow slots: bids 15, asks 16
R_OHI = 17  # live overflow levels above the window: bids 17, asks 18
R_OLO = 19  # live overflow levels below the window: bids 19, asks 20
R_BUF_M, R_BUF_R, R_NGAPOUT, R_NEED = 21, 22, 23, 24
R_T_MSGS, R_T_APPLIED, R_T_STALE, R_T_GAPS, R_T_CROSSED = 25, 26, 27, 28, 29
R_T_SNAP_USED, R_T_SNAP_IGN, R_T_BUFDROP, R_T_RECENTRE = 30, 31, 32, 33
N_REGS = 34
COUNTERS = {"messages": R_T_MSGS, "applied": R_T_APPLIED, "stale": R_T_STALE, "gaps": R_T_GAPS,
            "crossed": R_T_CROSSED, "snapshots_used": R_T_SNAP_USED,
            "snapshots_ignored": R_T_SNAP_IGN, "buffer_dropped": R_T_BUFDROP,
            "recentres": R_T_RECENTRE}

# per-step output columns (int64 matrix)
S_VALID, S_BB, S_BQ, S_BA, S_AQ, S_BDEP, S_ADEP, S_OFI, S_NMSG, S_NGAP, S_NCROSS = range(11)
N_SCOL = 11
# per-message output columns
M_VALID, M_BB, M_BQ, M_BA, M_AQ = range(5)
N_MCOL = 5
# buffered message columns
B_FIRST, B_LAST, B_PREV, B_REND, B_TS = range(5)
N_BCOL = 5

_HASH = np.uint64(0x9E3779B97F4A7C15)


# -- overflow hash tables (linear probing; a deleted level keeps its key with qty 0) -------------
@nb.njit(cache=True)
def _slot(p, mask):
    h = np.uint64(p) * _HASH
    h ^= h >> np.uint64(29)
    return np.int64(h & np.uint64(mask))


@nb.njit(cache=True)
def _ovf_get(side, p, ok, oq):
    mask = ok.shape[1] - 1
    i = _slot(p, mask)
    while True:
        k = ok[side, i]
        if k == p:
            return oq[side, i]
        if k == EMPTY:
            return 0
        i = (i + 1) & mask


@nb.njit(cache=True)
def _ovf_set(side, p, q, regs, W, ok, oq):
    mask = ok.shape[1] - 1
    i = _slot(p, mask)
    while True:
        k = ok[side, i]
        if k == p:
            break
        if k == EMPTY:
            if q == 0:
                return
            ok[side, i] = p
            oq[side, i] = 0
            regs[R_USED + side] += 1
            break
        i = (i + 1) & mask
    old = oq[side, i]
    oq[side, i] = q
    if (old > 0) != (q > 0):
        d = 1 if q > 0 else -1
        if p >= regs[R_LO] + W:
            regs[R_OHI + side] += d
        else:
            regs[R_OLO + side] += d


@nb.njit(cache=True)
def _ovf_extreme(side, ok, oq, lo_incl, hi_excl, want_max):
    """Max (or min) live overflow price in [lo_incl, hi_excl); NO_BID / NO_ASK when none."""
    best = NO_BID if want_max else NO_ASK
    for i in range(ok.shape[1]):
        k = ok[side, i]
        if k != EMPTY and oq[side, i] > 0 and lo_incl <= k < hi_excl:
            if want_max:
                if k > best:
                    best = k
            elif k < best:
                best = k
    return best


@nb.njit(cache=True)
def _ovf_sum_best(side, ok, oq, lo_incl, hi_excl, n, desc):
    """(sum, count) of the best `n` live overflow levels in [lo_incl, hi_excl)."""
    m = 0
    for i in range(ok.shape[1]):
        k = ok[side, i]
        if k != EMPTY and oq[side, i] > 0 and lo_incl <= k < hi_excl:
            m += 1
    if m == 0 or n <= 0:
        return 0, 0
    keys = np.empty(m, np.int64)
    qtys = np.empty(m, np.int64)
    j = 0
    for i in range(ok.shape[1]):
        k = ok[side, i]
        if k != EMPTY and oq[side, i] > 0 and lo_incl <= k < hi_excl:
            keys[j] = k
            qtys[j] = oq[side, i]
            j += 1
    order = np.argsort(keys)
    acc = 0
    cnt = 0
    for j in range(m):
        o = order[m - 1 - j] if desc else order[j]
        acc += qtys[o]
        cnt += 1
        if cnt == n:
            break
    return acc, cnt


# -- levels ---------------------------------------------------------------------------------------
@nb.njit(cache=True)
def _qty(side, p, regs, win, ok, oq):
    W = win.shape[1]
    idx = p - regs[R_LO]
    if 0 <= idx < W:
        return win[side, idx]
    return _ovf_get(side, p, ok, oq)


@nb.njit(cache=True)
def _next_bid(p, regs, win, ok, oq):
    """Best live bid strictly below `p` (the best bid `p` was just deleted)."""
    W = win.shape[1]
    lo = regs[R_LO]
    if regs[R_OHI] > 0:
        b = _ovf_extreme(0, ok, oq, lo + W, p, True)
        if b != NO_BID:
            return b
    idx = min(p - lo, W) - 1
    while idx >= 0:
        if win[0, idx] > 0:
            return lo + idx
        idx -= 1
    if regs[R_OLO] > 0:
        return _ovf_extreme(0, ok, oq, 0, min(lo, p), True)
    return NO_BID


@nb.njit(cache=True)
def _next_ask(p, regs, win, ok, oq):
    """Best live ask strictly above `p` (the best ask `p` was just deleted)."""
    W = win.shape[1]
    lo = regs[R_LO]
    if regs[R_OLO + 1] > 0:
        a = _ovf_extreme(1, ok, oq, p + 1, lo, False)
        if a != NO_ASK:
            return a
    idx = max(p - lo + 1, 0)
    while idx < W:
        if win[1, idx] > 0:
            return lo + idx
        idx += 1
    if regs[R_OHI + 1] > 0:
        return _ovf_extreme(1, ok, oq, max(lo + W, p + 1), NO_ASK, False)
    return NO_ASK


@nb.njit(cache=True)
def _apply_rows(r_side, r_px, r_qty, a, b, regs, win, ok, oq):
    """Set the levels of rows a..b (qty 0 deletes), keeping the best bid and ask.

    The common case (a level inside the window, the best unchanged or found by a short scan)
    stays in this loop; the overflow table and long searches are calls.
    """
    W = win.shape[1]
    lo = regs[R_LO]
    bb = regs[R_BB]
    ba = regs[R_BA]
    for r in range(a, b):
        s = r_side[r]
        if s < 0:
            continue
        p = r_px[r]
        q = r_qty[r]
        idx = p - lo
        inside = 0 <= idx < W
        if inside:
            win[s, idx] = q
        else:
            _ovf_set(s, p, q, regs, W, ok, oq)
        if s == 0:
            if q > 0:
                if p > bb:
                    bb = p
            elif p == bb:
                nxt = NO_BID
                if inside and regs[R_OHI] == 0:
                    i = idx - 1
                    while i >= 0 and win[0, i] == 0:
                        i -= 1
                    if i >= 0:
                        nxt = lo + i
                    elif regs[R_OLO] > 0:
                        nxt = _next_bid(p, regs, win, ok, oq)
                else:
                    nxt = _next_bid(p, regs, win, ok, oq)
                bb = nxt
        else:
            if q > 0:
                if p < ba:
                    ba = p
            elif p == ba:
                nxt = NO_ASK
                if inside and regs[R_OLO + 1] == 0:
                    i = idx + 1
                    while i < W and win[1, i] == 0:
                        i += 1
                    if i < W:
                        nxt = lo + i
                    elif regs[R_OHI + 1] > 0:
                        nxt = _next_ask(p, regs, win, ok, oq)
                else:
                    nxt = _next_ask(p, regs, win, ok, oq)
                ba = nxt
    regs[R_BB] = bb
    regs[R_BA] = ba


@nb.njit(cache=True)
def _depth(side, n, regs, win, ok, oq):
    """Total quantity of the best `n` levels of one side."""
    W = win.shape[1]
    lo = regs[R_LO]
    acc = 0
    cnt = 0
    if side == 0:
        if regs[R_BB] == NO_BID:
            return 0
        if regs[R_OHI] > 0:
            acc, cnt = _ovf_sum_best(0, ok, oq, lo + W, NO_ASK, n, True)
        idx = min(regs[R_BB] - lo, W - 1)
        while idx >= 0 and cnt < n:
            q = win[0, idx]
            if q > 0:
                acc += q
                cnt += 1
            idx -= 1
        if cnt < n and regs[R_OLO] > 0:
            a2, c2 = _ovf_sum_best(0, ok, oq, 0, lo, n - cnt, True)
            acc += a2
    else:
        if regs[R_BA] == NO_ASK:
            return 0
        if regs[R_OLO + 1] > 0:
            acc, cnt = _ovf_sum_best(1, ok, oq, 0, lo, n, False)
        idx = max(regs[R_BA] - lo, 0)
        while idx < W and cnt < n:
            q = win[1, idx]
            if q > 0:
                acc += q
                cnt += 1
            idx += 1
        if cnt < n and regs[R_OHI + 1] > 0:
            a2, c2 = _ovf_sum_best(1, ok, oq, lo + W, NO_ASK, n - cnt, False)
            acc += a2
    return acc


@nb.njit(cache=True)
def _recount(regs, W, ok, oq):
    lo = regs[R_LO]
    for side in range(2):
        hi = 0
        low = 0
        for i in range(ok.shape[1]):
            k = ok[side, i]
            if k != EMPTY and oq[side, i] > 0:
                if k >= lo + W:
                    hi += 1
                elif k < lo:
                    low += 1
        regs[R_OHI + side] = hi
        regs[R_OLO + side] = low


@nb.njit(cache=True)
def _centre(bb, ba):
    if bb != NO_BID and ba != NO_ASK:
        return (bb + ba) >> 1
    if bb != NO_BID:
        return bb
    return ba


@nb.njit(cache=True)
def _recentre(regs, win, ok, oq):
    """Move the window so the mid sits in its middle half; False when the overflow must grow."""
    if regs[R_STATE] == UNSYNCED:
        return True
    bb = regs[R_BB]
    ba = regs[R_BA]
    if bb == NO_BID and ba == NO_ASK:
        return True
    W = win.shape[1]
    lo = regs[R_LO]
    c = _centre(bb, ba)
    if lo + W // 4 <= c < lo + 3 * (W // 4):
        return True
    new_lo = c - W // 2
    delta = new_lo - lo
    cap = ok.shape[1]
    for side in range(2):  # live levels leaving the window go to the overflow
        leaving = 0
        for idx in range(W):
            p = lo + idx
            if win[side, idx] > 0 and (p < new_lo or p >= new_lo + W):
                leaving += 1
        if regs[R_USED + side] + leaving > cap // 2:
            regs[R_NEED] = leaving
            return False
    for side in range(2):
        for idx in range(W):
            p = lo + idx
            q = win[side, idx]
            if q > 0 and (p < new_lo or p >= new_lo + W):
                _ovf_set(side, p, q, regs, W, ok, oq)
        if delta >= W or delta <= -W:
            win[side, :] = 0
        elif delta > 0:
            for idx in range(W - delta):
                win[side, idx] = win[side, idx + delta]
            win[side, W - delta:] = 0
        elif delta < 0:
            for idx in range(W - 1, -delta - 1, -1):
                win[side, idx] = win[side, idx + delta]
            win[side, :-delta] = 0
    regs[R_LO] = new_lo
    for side in range(2):  # overflow levels now inside the window move in
        for i in range(cap):
            k = ok[side, i]
            if k != EMPTY and oq[side, i] > 0 and new_lo <= k < new_lo + W:
                win[side, k - new_lo] = oq[side, i]
                oq[side, i] = 0
    _recount(regs, W, ok, oq)
    regs[R_T_RECENTRE] += 1
    return True


# -- sync rules -----------------------------------------------------------------------------------
@nb.njit(cache=True)
def _accept(state, last, rule, first, u, prev):
    """What to do with a diff [first, u] (prev = pu on futures) given the book's state."""
    if state == SYNCED:
        if u <= last:
            return DROP
        if rule == SPOT:
            return APPLY if first == last + 1 else GAP
        return APPLY if prev == last else GAP
    # PENDING: the book holds a snapshot with lastUpdateId = last
    if rule == SPOT:
        if u <= last:
            return DROP
        return APPLY if first <= last + 1 else GAP
    if u < last:
        return DROP
    return APPLY if first <= last else GAP


@nb.njit(cache=True)
def _gap_event(ts, first, prev, regs, out_gap, kind):
    g = regs[R_NGAPOUT]
    last = regs[R_LAST]
    out_gap[g, 0] = ts
    if regs[R_RULE] == SPOT:  # the next diff had to start at last + 1
        out_gap[g, 1] = last + 1
        out_gap[g, 2] = first
    elif kind == GAP_DIFF:  # futures: its pu had to be the previous u
        out_gap[g, 1] = last
        out_gap[g, 2] = prev
    else:  # futures: the first diff had to start at or before the snapshot's id
        out_gap[g, 1] = last
        out_gap[g, 2] = first
    out_gap[g, 3] = kind
    regs[R_NGAPOUT] = g + 1
    regs[R_NGAP] += 1
    regs[R_T_GAPS] += 1


@nb.njit(cache=True)
def _buffer_drop_front(k, regs, bmsg, b_side, b_px, b_qty):
    """Forget the first `k` buffered messages (the rest stay a chain)."""
    nm = regs[R_BUF_M]
    nr = regs[R_BUF_R]
    r0 = bmsg[k - 1, B_REND] if k > 0 else 0
    for j in range(k, nm):
        for c in range(N_BCOL):
            bmsg[j - k, c] = bmsg[j, c]
        bmsg[j - k, B_REND] -= r0
    for r in range(r0, nr):
        b_side[r - r0] = b_side[r]
        b_px[r - r0] = b_px[r]
        b_qty[r - r0] = b_qty[r]
    regs[R_BUF_M] = nm - k
    regs[R_BUF_R] = nr - r0
    regs[R_T_BUFDROP] += k


@nb.njit(cache=True)
def _buffer(i, m_start, m_ts, m_first, m_last, m_prev, r_side, r_px, r_qty, regs,
            bmsg, b_side, b_px, b_qty):
    """Keep an unsynced diff: the buffer is the latest unbroken chain of diffs."""
    nm = regs[R_BUF_M]
    if nm > 0:
        lastu = bmsg[nm - 1, B_LAST]
        if m_last[i] <= lastu:
            regs[R_T_STALE] += 1
            return
        chained = m_first[i] == lastu + 1 if regs[R_RULE] == SPOT else m_prev[i] == lastu
        if not chained:
            regs[R_T_BUFDROP] += nm
            regs[R_BUF_M] = 0
            regs[R_BUF_R] = 0
    a = m_start[i]
    b = m_start[i + 1]
    rows = b - a
    while regs[R_BUF_M] > 0 and (regs[R_BUF_R] + rows > b_px.shape[0]
                                 or regs[R_BUF_M] + 1 > bmsg.shape[0]):
        _buffer_drop_front(max(regs[R_BUF_M] // 2, 1), regs, bmsg, b_side, b_px, b_qty)
    nm = regs[R_BUF_M]
    nr = regs[R_BUF_R]
    for r in range(rows):
        b_side[nr + r] = r_side[a + r]
        b_px[nr + r] = r_px[a + r]
        b_qty[nr + r] = r_qty[a + r]
    bmsg[nm, B_FIRST] = m_first[i]
    bmsg[nm, B_LAST] = m_last[i]
    bmsg[nm, B_PREV] = m_prev[i]
    bmsg[nm, B_REND] = nr + rows
    bmsg[nm, B_TS] = m_ts[i]
    regs[R_BUF_M] = nm + 1
    regs[R_BUF_R] = nr + rows


@nb.njit(cache=True)
def _clear(regs, win, ok, oq):
    """Empty the book (window, overflow slots, best levels) before it is rebuilt."""
    win[:, :] = 0
    ok[:, :] = EMPTY
    oq[:, :] = 0
    for side in range(2):
        regs[R_USED + side] = 0
        regs[R_OHI + side] = 0
        regs[R_OLO + side] = 0
    regs[R_BB] = NO_BID
    regs[R_BA] = NO_ASK


@nb.njit(cache=True)
def _load_snapshot(a, b, last_id, r_side, r_px, r_qty, regs, win, ok, oq):
    bb = NO_BID
    ba = NO_ASK
    for r in range(a, b):
        if r_qty[r] > 0:
            if r_side[r] == 0 and r_px[r] > bb:
                bb = r_px[r]
            elif r_side[r] == 1 and r_px[r] < ba:
                ba = r_px[r]
    W = win.shape[1]
    if bb != NO_BID or ba != NO_ASK:
        regs[R_LO] = _centre(bb, ba) - W // 2
    _clear(regs, win, ok, oq)
    _apply_rows(r_side, r_px, r_qty, a, b, regs, win, ok, oq)
    regs[R_STATE] = PENDING
    regs[R_LAST] = last_id


@nb.njit(cache=True)
def _replay_buffer(ts, regs, win, ok, oq, bmsg, b_side, b_px, b_qty, out_gap):
    """Run the buffered diffs (those logged before the snapshot) through the sync rules."""
    nm = regs[R_BUF_M]
    r0 = 0
    for j in range(nm):
        act = _accept(regs[R_STATE], regs[R_LAST], regs[R_RULE], bmsg[j, B_FIRST],
                      bmsg[j, B_LAST], bmsg[j, B_PREV])
        r1 = bmsg[j, B_REND]
        if act == DROP:
            regs[R_T_STALE] += 1
        elif act == APPLY:
            _apply_rows(b_side, b_px, b_qty, r0, r1, regs, win, ok, oq)
            regs[R_STATE] = SYNCED
            regs[R_LAST] = bmsg[j, B_LAST]
            regs[R_T_APPLIED] += 1
        else:
            _gap_event(ts, bmsg[j, B_FIRST], bmsg[j, B_PREV], regs, out_gap,
                       GAP_SNAPSHOT if regs[R_STATE] == PENDING else GAP_DIFF)
            regs[R_STATE] = UNSYNCED
            regs[R_T_BUFDROP] -= j  # the dropped ones were consumed, not lost
            _buffer_drop_front(j, regs, bmsg, b_side, b_px, b_qty)
            return
        r0 = r1
    regs[R_BUF_M] = 0
    regs[R_BUF_R] = 0


@nb.njit(cache=True)
def _emit(s, n_levels, regs, win, ok, oq, out_step):
    valid = regs[R_STATE] == SYNCED
    out_step[s, S_VALID] = 1 if valid else 0
    if valid:
        bb = regs[R_BB]
        ba = regs[R_BA]
        out_step[s, S_BB] = bb
        out_step[s, S_BA] = ba
        out_step[s, S_BQ] = _qty(0, bb, regs, win, ok, oq) if bb != NO_BID else 0
        out_step[s, S_AQ] = _qty(1, ba, regs, win, ok, oq) if ba != NO_ASK else 0
        out_step[s, S_BDEP] = _depth(0, n_levels, regs, win, ok, oq)
        out_step[s, S_ADEP] = _depth(1, n_levels, regs, win, ok, oq)
    else:
        out_step[s, S_BB] = NO_BID
        out_step[s, S_BA] = NO_ASK
        out_step[s, S_BQ] = 0
        out_step[s, S_AQ] = 0
        out_step[s, S_BDEP] = 0
        out_step[s, S_ADEP] = 0
    out_step[s, S_OFI] = regs[R_OFI]
    out_step[s, S_NMSG] = regs[R_NMSG]
    out_step[s, S_NGAP] = regs[R_NGAP]
    out_step[s, S_NCROSS] = regs[R_NCROSS]
    regs[R_OFI] = 0
    regs[R_NMSG] = 0
    regs[R_NGAP] = 0
    regs[R_NCROSS] = 0


@nb.njit(cache=True)
def _after_message(i, regs, win, ok, oq, out_msg):
    """Crossed-book count, order-flow imbalance and the per-message record, at a boundary."""
    synced = regs[R_STATE] == SYNCED
    bb = regs[R_BB]
    ba = regs[R_BA]
    both = bb != NO_BID and ba != NO_ASK
    bq = 0
    aq = 0
    if synced and both:
        bq = _qty(0, bb, regs, win, ok, oq)
        aq = _qty(1, ba, regs, win, ok, oq)
        if bb >= ba:
            regs[R_NCROSS] += 1
            regs[R_T_CROSSED] += 1
        if regs[R_PREV_OK] == 1:
            # Cont, Kukanov & Stoikov (2014): e = dq_bid - dq_ask at the best quotes
            pbb = regs[R_PBB]
            pba = regs[R_PBA]
            e = 0
            if bb >= pbb:
                e += bq
            if bb <= pbb:
                e -= regs[R_PBQ]
            if ba <= pba:
                e -= aq
            if ba >= pba:
                e += regs[R_PAQ]
            regs[R_OFI] += e
        regs[R_PBB] = bb
        regs[R_PBQ] = bq
        regs[R_PBA] = ba
        regs[R_PAQ] = aq
        regs[R_PREV_OK] = 1
    else:
        regs[R_PREV_OK] = 0
    if out_msg.shape[0] > 0:
        out_msg[i, M_VALID] = 1 if synced else 0
        if synced:
            out_msg[i, M_BB] = bb
            out_msg[i, M_BA] = ba
            out_msg[i, M_BQ] = bq if both else (_qty(0, bb, regs, win, ok, oq) if bb != NO_BID else 0)
            out_msg[i, M_AQ] = aq if both else (_qty(1, ba, regs, win, ok, oq) if ba != NO_ASK else 0)
        else:
            out_msg[i, M_BB] = NO_BID
            out_msg[i, M_BA] = NO_ASK
            out_msg[i, M_BQ] = 0
            out_msg[i, M_AQ] = 0


@nb.njit(cache=True)
def _run(m_start, m_ts, m_step, m_first, m_last, m_prev, m_snap, r_side, r_px, r_qty,
         i0, s0, n_steps, n_levels, regs, win, ok, oq, bmsg, b_side, b_px, b_qty,
         out_step, out_msg, out_gap):
    """Apply messages i0.. in order, emitting steps s0..n_steps-1 as their ends are passed.

    Message i belongs to step m_step[i] (nondecreasing; < 0 = before the first step).
    Returns (next message, next step, status); status != OK asks the caller to grow a table
    and call again from there.
    """
    n = m_start.shape[0] - 1
    s = s0
    cap = ok.shape[1]
    for i in range(i0, n):
        while s < n_steps and s < m_step[i]:
            _emit(s, n_levels, regs, win, ok, oq, out_step)
            s += 1
        if not _recentre(regs, win, ok, oq):
            return i, s, NEED_OVF
        a = m_start[i]
        b = m_start[i + 1]
        rows = b - a
        if m_snap[i]:
            if regs[R_STATE] == SYNCED:
                regs[R_T_SNAP_IGN] += 1
            else:
                if rows + regs[R_BUF_R] > cap // 2:
                    regs[R_NEED] = rows + regs[R_BUF_R]
                    return i, s, NEED_OVF
                _load_snapshot(a, b, m_last[i], r_side, r_px, r_qty, regs, win, ok, oq)
                regs[R_T_SNAP_USED] += 1
                _replay_buffer(m_ts[i], regs, win, ok, oq, bmsg, b_side, b_px, b_qty, out_gap)
        elif regs[R_STATE] == UNSYNCED:
            if rows > b_px.shape[0] // 2:
                regs[R_NEED] = rows
                return i, s, NEED_BUF
            _buffer(i, m_start, m_ts, m_first, m_last, m_prev, r_side, r_px, r_qty, regs,
                    bmsg, b_side, b_px, b_qty)
        else:
            if regs[R_USED] + rows > cap // 2 or regs[R_USED + 1] + rows > cap // 2:
                regs[R_NEED] = rows
                return i, s, NEED_OVF
            act = _accept(regs[R_STATE], regs[R_LAST], regs[R_RULE], m_first[i], m_last[i],
                          m_prev[i])
            if act == APPLY:
                _apply_rows(r_side, r_px, r_qty, a, b, regs, win, ok, oq)
                regs[R_STATE] = SYNCED
                regs[R_LAST] = m_last[i]
                regs[R_T_APPLIED] += 1
            elif act == DROP:
                regs[R_T_STALE] += 1
            else:
                _gap_event(m_ts[i], m_first[i], m_prev[i], regs, out_gap,
                           GAP_DIFF if regs[R_STATE] == SYNCED else GAP_SNAPSHOT)
                regs[R_STATE] = UNSYNCED
                regs[R_BUF_M] = 0
                regs[R_BUF_R] = 0
                _buffer(i, m_start, m_ts, m_first, m_last, m_prev, r_side, r_px, r_qty, regs,
                        bmsg, b_side, b_px, b_qty)
        regs[R_NMSG] += 1
        regs[R_T_MSGS] += 1
        _after_message(i, regs, win, ok, oq, out_msg)
    while s < n_steps:
        _emit(s, n_levels, regs, win, ok, oq, out_step)
        s += 1
    return n, s, OK


@nb.njit(cache=True)
def _rehash(ok, oq, cap):
    """Live overflow levels in fresh tables of `cap` slots; returns (keys, qtys, used per side)."""
    nk = np.full((2, cap), EMPTY, np.int64)
    nq = np.zeros((2, cap), np.int64)
    used = np.zeros(2, np.int64)
    mask = cap - 1
    for side in range(2):
        for i in range(ok.shape[1]):
            k = ok[side, i]
            if k != EMPTY and oq[side, i] > 0:
                j = _slot(k, mask)
                while nk[side, j] != EMPTY:
                    j = (j + 1) & mask
                nk[side, j] = k
                nq[side, j] = oq[side, i]
                used[side] += 1
    return nk, nq, used


@nb.njit(cache=True)
def _rescale(regs, win, ok, oq, b_px, b_qty, fp, fq):
    """Multiply every price by fp and quantity by fq (finer decimals seen); rebuild the book."""
    W = win.shape[1]
    lo = regs[R_LO]
    n_live = 0
    for side in range(2):
        for idx in range(W):
            if win[side, idx] > 0:
                n_live += 1
        for i in range(ok.shape[1]):
            if ok[side, i] != EMPTY and oq[side, i] > 0:
                n_live += 1
    sides = np.empty(n_live, np.int8)
    pxs = np.empty(n_live, np.int64)
    qts = np.empty(n_live, np.int64)
    j = 0
    for side in range(2):
        for idx in range(W):
            if win[side, idx] > 0:
                sides[j] = side
                pxs[j] = (lo + idx) * fp
                qts[j] = win[side, idx] * fq
                j += 1
        for i in range(ok.shape[1]):
            if ok[side, i] != EMPTY and oq[side, i] > 0:
                sides[j] = side
                pxs[j] = ok[side, i] * fp
                qts[j] = oq[side, i] * fq
                j += 1
    bb = regs[R_BB] * fp if regs[R_BB] != NO_BID else NO_BID
    ba = regs[R_BA] * fp if regs[R_BA] != NO_ASK else NO_ASK
    if bb != NO_BID or ba != NO_ASK:
        regs[R_LO] = _centre(bb, ba) - W // 2
    else:
        regs[R_LO] = lo * fp
    _clear(regs, win, ok, oq)
    _apply_rows(sides, pxs, qts, 0, n_live, regs, win, ok, oq)
    nr = regs[R_BUF_R]
    for r in range(nr):
        b_px[r] *= fp
        b_qty[r] *= fq
    regs[R_OFI] *= fq
    if regs[R_PBB] != NO_BID:
        regs[R_PBB] *= fp
    if regs[R_PBA] != NO_ASK:
        regs[R_PBA] *= fp
    regs[R_PBQ] *= fq
    regs[R_PAQ] *= fq


# -- the typed wrapper ------------------------------------------------------------------------------
MARKET_RULES = {"spot": SPOT, "us": SPOT, "usdm": FUTURES, "coinm": FUTURES}
MARKET_SOURCES = {"spot": "binance.spot", "us": "binance.us", "usdm": "binance.usdm",
                  "coinm": "binance.coinm"}
MAX_DECIMALS = 12
STEP_COLUMNS = ("valid", "bid_px", "bid_qty", "ask_px", "ask_qty", "mid", "spread", "microprice",
                "imbalance", "bid_depth", "ask_depth", "depth_imbalance", "ofi", "n_messages",
                "n_gaps", "n_crossed")
GAP_SCHEMA = pa.schema([("recv_ts_ns", pa.int64()), ("expected_id", pa.int64()),
                        ("got_id", pa.int64()), ("kind", pa.string())])
_GAP_KINDS = {GAP_DIFF: "diff", GAP_SNAPSHOT: "snapshot"}


def _off_grid(x: np.ndarray) -> np.ndarray:
    """Where scaled values are not integers (beyond float rounding of the decimal string)."""
    return np.abs(x - np.rint(x)) > 1e-6 + np.abs(x) * 1e-12


def decimals_needed(values: np.ndarray, what: str) -> int:
    """The fewest decimals d with every value an integer multiple of 10**-d (NaN ignored)."""
    v = np.unique(np.abs(values[np.isfinite(values)]))
    if v.size == 0:
        return 0
    for d in range(MAX_DECIMALS + 1):
        x = v * 10.0**d
        if x.max() >= 2.0**53:
            break
        if not _off_grid(x).any():
            return d
    raise ValueError(f"book: {what} values need more than {MAX_DECIMALS} decimals or exceed the "
                     f"exact integer range (e.g. {v[-1]!r}); set book.{what}_decimals")


@nb.njit(cache=True)
def _scaled_ints(values, scale, out):
    """out = values * scale as int64 (NaN -> 0); False if a value is off the grid or too big."""
    for i in range(values.shape[0]):
        x = values[i] * scale
        if x != x:
            out[i] = 0
            continue
        r = np.rint(x)
        if abs(x - r) > 1e-6 + abs(x) * 1e-12 or abs(x) >= 9007199254740992.0:
            return False
        out[i] = np.int64(r)
    return True


def exact_units(values: np.ndarray, decimals: int | None) -> np.ndarray | None:
    """Values as integers of 10**-decimals (NaN, a level-less row, becomes 0), or None when
    some value is not on that grid."""
    if decimals is None:
        return None
    out = np.empty(values.shape[0], np.int64)
    ok = _scaled_ints(np.ascontiguousarray(values, np.float64), 10.0**decimals, out)
    return out if ok else None


@dataclass
class _State:
    regs: np.ndarray
    win: np.ndarray
    ok: np.ndarray
    oq: np.ndarray
    bmsg: np.ndarray
    b_side: np.ndarray
    b_px: np.ndarray
    b_qty: np.ndarray

    @classmethod
    def new(cls, rule: int, window_ticks: int, overflow_slots: int, buffer_rows: int,
            buffer_messages: int) -> _State:
        regs = np.zeros(N_REGS, np.int64)
        regs[R_BB] = NO_BID
        regs[R_BA] = NO_ASK
        regs[R_PBB] = NO_BID
        regs[R_PBA] = NO_ASK
        regs[R_RULE] = rule
        return cls(regs, np.zeros((2, window_ticks), np.int64),
                   np.full((2, overflow_slots), EMPTY, np.int64),
                   np.zeros((2, overflow_slots), np.int64),
                   np.zeros((buffer_messages, N_BCOL), np.int64), np.zeros(buffer_rows, np.int8),
                   np.zeros(buffer_rows, np.int64), np.zeros(buffer_rows, np.int64))


def _pow2_at_least(n: int) -> int:
    return 1 << max(int(n) - 1, 1).bit_length()


class BookStage:
    """One instrument's L2 book as a replay stage: per-step quotes, depth, imbalance and OFI.

    `process(chunk)` follows replay.stage.Stage (raw events of the chunk's steps);
    `process_depth(depth, step, n_steps)` takes normalised depth rows (recorder.normalize)
    with each row's step. Both keep the book between calls, so a window fed in chunks gives
    the same outputs as fed whole. `warm_up(depth)` applies rows before the window (e.g. from
    the last snapshot on) without emitting steps.
    """

    name = "book"
    needs: Sequence[str] = ()

    def __init__(self, symbol: str, market: str, depth_levels: int = 10, *, source: str | None = None,
                 time: str = "recv", window_ticks: int = 1 << 17, price_decimals: int | None = None,
                 qty_decimals: int | None = None, buffer_rows: int = 1 << 18) -> None:
        if market not in MARKET_RULES:
            raise ValueError(f"book.market={market!r}: expected one of {sorted(MARKET_RULES)}")
        if depth_levels < 1:
            raise ValueError(f"book.depth_levels={depth_levels}: must be >= 1")
        if window_ticks < 64 or window_ticks & (window_ticks - 1):
            raise ValueError(f"book.window_ticks={window_ticks}: must be a power of two >= 64")
        if time not in ("recv", "event"):
            raise ValueError(f"replay.time={time!r}: expected recv or event")
        for key, d in (("price_decimals", price_decimals), ("qty_decimals", qty_decimals)):
            if d is not None and not 0 <= d <= MAX_DECIMALS:
                raise ValueError(f"book.{key}={d}: expected 0..{MAX_DECIMALS}")
        if buffer_rows < 1024:
            raise ValueError(f"book.buffer_rows={buffer_rows}: must be >= 1024")
        self.symbol = symbol.upper()
        self.market = market
        self.depth_levels = int(depth_levels)
        self.source = source or MARKET_SOURCES[market]
        self.time = time
        sym = symbol.lower()
        self.streams = (f"{self.source}:{sym}@depth*", f"{self.source}:{sym}@snapshot")
        self.price_decimals = price_decimals
        self.qty_decimals = qty_decimals
        self._fixed = (price_decimals is not None, qty_decimals is not None)
        self._st = _State.new(MARKET_RULES[market], window_ticks, 1 << 12, buffer_rows,
                              max(buffer_rows // 8, 64))
        self._gaps: list[np.ndarray] = []

    # -- Stage protocol ---------------------------------------------------------------------------
    def process(self, chunk: Chunk) -> dict[str, np.ndarray]:
        from recorder.normalize.parse import parse_events

        depth = parse_events(chunk.events, tables=("depth",)).tables["depth"]
        depth = self._mine(depth)
        if self.time == "event":
            t = depth["event_ts_ns"].fill_null(depth["recv_ts_ns"]).to_numpy()
            order = np.argsort(t, kind="stable")
            depth, t = depth[order], t[order]
        else:
            t = depth["recv_ts_ns"].to_numpy()
        step = np.clip(np.searchsorted(chunk.starts_ns, t, side="right") - 1, 0, chunk.n_steps - 1)
        return self.process_depth(depth, step, chunk.n_steps)

    def tables(self) -> dict[str, pa.Table]:
        """Gap events of the run: when the book went invalid, and the ids around the hole."""
        g = np.concatenate(self._gaps) if self._gaps else np.zeros((0, 4), np.int64)
        return {"book_gaps": pa.table({
            "recv_ts_ns": g[:, 0], "expected_id": g[:, 1], "got_id": g[:, 2],
            "kind": [_GAP_KINDS[int(k)] for k in g[:, 3]]}, schema=GAP_SCHEMA)}

    # -- normalised-table API ---------------------------------------------------------------------
    def process_depth(self, depth: pl.DataFrame, step: np.ndarray, n_steps: int
                      ) -> dict[str, np.ndarray]:
        """Apply `depth` rows (log order, this instrument) and emit `n_steps` step outputs.

        `step[j]` is row j's step in [0, n_steps), nondecreasing; outputs describe the book at
        the end of each step (valid = synced), OFI and counts cover the messages in the step.
        """
        msgs = self._messages(depth, np.asarray(step, np.int64))
        out_step = np.zeros((n_steps, N_SCOL), np.int64)
        self._drive(msgs, n_steps, out_step, np.zeros((0, N_MCOL), np.int64))
        return self._step_columns(out_step)

    def warm_up(self, depth: pl.DataFrame) -> None:
        """Apply rows before the window (from a snapshot on) without emitting steps."""
        msgs = self._messages(depth, np.zeros(depth.height, np.int64))
        self._drive(msgs, 0, np.zeros((0, N_SCOL), np.int64), np.zeros((0, N_MCOL), np.int64))
        regs = self._st.regs
        regs[[R_OFI, R_NMSG, R_NGAP, R_NCROSS]] = 0

    def replay_messages(self, depth: pl.DataFrame) -> dict[str, np.ndarray]:
        """The book after every message of `depth`: last_id, recv_ts_ns, valid, best levels."""
        msgs = self._messages(depth, np.zeros(depth.height, np.int64))
        out_msg = np.zeros((len(msgs["m_ts"]), N_MCOL), np.int64)
        self._drive(msgs, 0, np.zeros((0, N_SCOL), np.int64), out_msg)
        bid, ask = self._prices(out_msg[:, M_BB], out_msg[:, M_BA])
        qd = 10.0 ** (self.qty_decimals or 0)
        return {"last_id": msgs["m_last"], "recv_ts_ns": msgs["m_ts"],
                "valid": out_msg[:, M_VALID].astype(bool), "bid_px": bid,
                "bid_qty": out_msg[:, M_BQ] / qd, "ask_px": ask, "ask_qty": out_msg[:, M_AQ] / qd}

    def counters(self) -> dict[str, int]:
        """Totals since construction: messages, applied, stale, gaps, crossed, snapshots ..."""
        return {k: int(self._st.regs[r]) for k, r in COUNTERS.items()}

    @property
    def valid(self) -> bool:
        return int(self._st.regs[R_STATE]) == SYNCED

    # -- internals ----------------------------------------------------------------------------------
    def _mine(self, depth: pl.DataFrame) -> pl.DataFrame:
        return depth.filter((pl.col("symbol") == self.symbol) & (pl.col("market") == self.market))

    def _messages(self, depth: pl.DataFrame, step: np.ndarray) -> dict[str, np.ndarray]:
        """Row arrays in integer units and message arrays (a message starts at level 0)."""
        if step.shape[0] != depth.height:
            raise ValueError(f"book: {step.shape[0]} step indices for {depth.height} depth rows")
        if step.size and np.any(np.diff(step) < 0):
            raise ValueError("book: depth rows must come in step order (sorted by the replay time)")
        starts = np.flatnonzero(depth["level"].to_numpy() == 0)
        if depth.height and (starts.size == 0 or starts[0] != 0):
            raise ValueError("book: depth rows must start at a message's first level (level 0)")
        r_px, r_qty = self._grid(depth["price"].to_numpy(), depth["qty"].to_numpy())
        snap = depth["is_snapshot"].to_numpy()[starts]
        prev = depth["prev_id"].fill_null(-2).to_numpy()[starts]
        if MARKET_RULES[self.market] == FUTURES and np.any((prev == -2) & ~snap):
            raise ValueError(f"book: {self.market} {self.symbol} depth diffs lack prev_id (pu); "
                             "futures books sync on pu")
        return {
            "m_start": np.append(starts, depth.height).astype(np.int64),
            "m_ts": depth["recv_ts_ns"].to_numpy()[starts].astype(np.int64),
            "m_step": step[starts], "m_first": depth["first_id"].to_numpy()[starts].astype(np.int64),
            "m_last": depth["last_id"].to_numpy()[starts].astype(np.int64),
            "m_prev": prev.astype(np.int64), "m_snap": snap.astype(np.bool_),
            "r_side": depth["side"].to_numpy().astype(np.int8, copy=False),
            "r_px": r_px, "r_qty": r_qty,
        }

    def _grid(self, price: np.ndarray, qty: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Prices and quantities as exact integers; picks or refines the decimals when needed.

        Fast path: the values fit the decimals in use (one pass each). Otherwise the decimals
        are derived from the values (or a fixed setting is reported) and the book rescaled.
        """
        px = exact_units(price, self.price_decimals)
        qt = exact_units(qty, self.qty_decimals)
        if px is not None and qt is not None:
            return px, qt
        dp = decimals_needed(price, "price")
        dq = decimals_needed(qty, "qty")
        for fixed, have, need, what in ((self._fixed[0], self.price_decimals, dp, "price"),
                                        (self._fixed[1], self.qty_decimals, dq, "qty")):
            if fixed and need > have:
                raise ValueError(f"book.{what}_decimals={have}: {self.symbol} has {what}s with "
                                 f"{need} decimals")
        old_p = self.price_decimals if self.price_decimals is not None else dp
        old_q = self.qty_decimals if self.qty_decimals is not None else dq
        new_p, new_q = max(old_p, dp), max(old_q, dq)
        if (new_p, new_q) != (old_p, old_q):
            st = self._st
            _rescale(st.regs, st.win, st.ok, st.oq, st.b_px, st.b_qty,
                     np.int64(10 ** (new_p - old_p)), np.int64(10 ** (new_q - old_q)))
        self.price_decimals, self.qty_decimals = new_p, new_q
        return exact_units(price, new_p), exact_units(qty, new_q)

    def _drive(self, m: dict[str, np.ndarray], n_steps: int, out_step: np.ndarray,
               out_msg: np.ndarray) -> None:
        st = self._st
        out_gap = np.zeros((len(m["m_ts"]) + 1, 4), np.int64)
        st.regs[R_NGAPOUT] = 0
        i, s = 0, 0
        while True:
            i, s, status = _run(m["m_start"], m["m_ts"], m["m_step"], m["m_first"], m["m_last"],
                                m["m_prev"], m["m_snap"], m["r_side"], m["r_px"], m["r_qty"],
                                i, s, n_steps, self.depth_levels, st.regs, st.win, st.ok, st.oq,
                                st.bmsg, st.b_side, st.b_px, st.b_qty, out_step, out_msg, out_gap)
            if status == OK:
                break
            need = int(st.regs[R_NEED])
            if status == NEED_OVF:
                live = int(max(st.regs[R_USED], st.regs[R_USED + 1]))
                cap = max(st.ok.shape[1], _pow2_at_least(4 * (live + need)))
                st.ok, st.oq, used = _rehash(st.ok, st.oq, cap)
                st.regs[R_USED:R_USED + 2] = used
            else:
                rows = _pow2_at_least(4 * need)
                for name in ("b_side", "b_px", "b_qty"):
                    arr = getattr(st, name)
                    grown = np.zeros(rows, arr.dtype)
                    grown[:arr.shape[0]] = arr
                    setattr(st, name, grown)
        if st.regs[R_NGAPOUT]:
            self._gaps.append(out_gap[:st.regs[R_NGAPOUT]].copy())

    def _prices(self, bb: np.ndarray, ba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pd = 10.0 ** (self.price_decimals or 0)
        bid = np.where(bb == NO_BID, np.nan, bb / pd)
        ask = np.where(ba == NO_ASK, np.nan, ba / pd)
        return bid, ask

    def _step_columns(self, o: np.ndarray) -> dict[str, np.ndarray]:
        valid = o[:, S_VALID].astype(bool)
        bid, ask = self._prices(o[:, S_BB], o[:, S_BA])
        qd = 10.0 ** (self.qty_decimals or 0)
        bq = np.where(valid, o[:, S_BQ] / qd, np.nan)
        aq = np.where(valid, o[:, S_AQ] / qd, np.nan)
        bdep = np.where(valid, o[:, S_BDEP] / qd, np.nan)
        adep = np.where(valid, o[:, S_ADEP] / qd, np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            micro = (bid * aq + ask * bq) / (bq + aq)
            imb = (bq - aq) / (bq + aq)
            dimb = (bdep - adep) / (bdep + adep)
        return {"valid": valid, "bid_px": bid, "bid_qty": bq, "ask_px": ask, "ask_qty": aq,
                "mid": (bid + ask) / 2, "spread": ask - bid, "microprice": micro, "imbalance": imb,
                "bid_depth": bdep, "ask_depth": adep, "depth_imbalance": dimb,
                "ofi": o[:, S_OFI] / qd, "n_messages": o[:, S_NMSG], "n_gaps": o[:, S_NGAP],
                "n_crossed": o[:, S_NCROSS]}


def book_steps(depth: pl.DataFrame, symbol: str, market: str, start_ns: int, step_ns: int,
               n_steps: int, depth_levels: int = 10, **kw) -> dict[str, np.ndarray]:
    """Per-step book outputs of a whole window in one call (rows before start_ns warm up)."""
    if step_ns <= 0 or n_steps < 0:
        raise ValueError(f"book: step_ns={step_ns} must be > 0 and n_steps={n_steps} >= 0")
    stage = BookStage(symbol, market, depth_levels, **kw)
    depth = stage._mine(depth)
    t = depth["recv_ts_ns"].to_numpy()
    end = start_ns + n_steps * step_ns
    before = int(np.searchsorted(t, start_ns, side="left"))
    inside = int(np.searchsorted(t, end, side="left"))
    if before:
        stage.warm_up(depth.slice(0, before))
    part = depth.slice(before, inside - before)
    step = (part["recv_ts_ns"].to_numpy() - start_ns) // step_ns
    return stage.process_depth(part, step, n_steps)
