"""Durability: whatever was acknowledged survives a crash, exactly once, in order."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recorder.events import SCHEMA, events_table
from recorder.reader import LogReader
from recorder.writer import LogWriter


def _crash(w: LogWriter, torn: bytes) -> None:
    """Drop a writer the way kill -9 would: no seal, no flush; optionally a torn last frame."""
    if w._journal is not None:
        w._journal.close()
        if torn:
            with open(w._journal.path, "ab") as f:
                f.write(torn)
    w._stop.set()
    w.index.close()
    w._lock_f.close()


ops = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(1, 6), st.sampled_from(["a", "b"]),
                  st.integers(0, 50)),
        st.just(("seal",)),
        st.tuples(st.just("crash"), st.binary(max_size=12)),
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=ops)
def test_reader_returns_exactly_the_acknowledged_events(tmp_path_factory, ops):
    root = tmp_path_factory.mktemp("log")
    w = LogWriter(root, "w", segment_max_rows=7, segment_max_age_s=None)
    acked: list[bytes] = []
    n = 0
    for op in ops:
        if op[0] == "append":
            _, k, stream, ts = op
            payload = [f"e{n + i}".encode() for i in range(k)]
            n += k
            w.append(events_table(source=["s"] * k, stream=[stream] * k, recv_ts_ns=[ts] * k,
                                  payload=payload))
            acked += payload  # fsync=batch: append returned, so it is acknowledged
        elif op[0] == "seal":
            w.seal()
        else:
            _crash(w, op[1])
            w = LogWriter(root, "w", segment_max_rows=7, segment_max_age_s=None)
    w.close()
    t = pa.Table.from_batches(list(LogReader(root).read())) if acked else None
    got = t["payload"].to_pylist() if t is not None else []
    assert sorted(got) == sorted(acked)
    assert len(got) == len(set(got))
    if t is not None:
        keys = list(zip(t["recv_ts_ns"].to_pylist(), t["stream"].to_pylist(), t["seq"].to_pylist()))
        assert keys == sorted(keys)
        for s in ("a", "b"):  # per-stream seq stays strictly increasing and gap-free across crashes
            seqs = sorted(q for (_, st_, q) in keys if st_ == s)
            assert seqs == list(range(len(seqs)))


WRITER = textwrap.dedent("""
    import sys
    from recorder.events import events_table
    from recorder.writer import LogWriter
    root, rows, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    w = LogWriter(root, "rec", fsync="batch", segment_max_rows=rows, segment_max_age_s=None)
    i = 0
    while limit == 0 or i < limit:
        payload = [f"p{i + k}".encode() for k in range(10)]
        w.append(events_table(source=["binance.spot"] * 10, stream=["btcusdt@trade"] * 10,
                              recv_ts_ns=list(range(i, i + 10)), payload=payload))
        print(i + 9, flush=True)  # acknowledged: every payload up to p{i+9}
        i += 10
    w.close()
""")


def test_sigkill_mid_stream_loses_and_duplicates_nothing(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), "300", "0"], stdout=subprocess.PIPE,
                            env=env, text=True)
    last = -1
    for line in proc.stdout:
        last = int(line)
        if last >= 2_000:  # several seals have happened; kill in the middle of the stream
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    w = LogWriter(tmp_path, "rec")  # recovery: seal the journal left behind
    w.close()
    got = pa.Table.from_batches(list(LogReader(tmp_path).read()))["payload"].to_pylist()
    ids = [int(p[1:]) for p in got]
    assert len(ids) == len(set(ids)), "duplicated events"
    assert set(range(last + 1)) <= set(ids), "acknowledged events lost"
    assert ids == sorted(ids)


def test_live_reader_racing_seals_neither_loses_nor_doubles(tmp_path):
    """A reader of the live tail sees every acknowledged row once while segments seal under it."""
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), "40", "3000"],
                            stdout=subprocess.DEVNULL, env=env)
    try:
        while not any((tmp_path / "journal").glob("*.journal")):  # the writer is up
            assert proc.poll() is None and time.monotonic() - t0 < 60, "writer did not start"
            time.sleep(0.01)
        done = False
        while not done:
            done = proc.poll() is not None
            got = pa.Table.from_batches(list(LogReader(tmp_path).read(include_open=True)), SCHEMA)
            ids = [int(p[1:]) for p in got["payload"].to_pylist()]
            assert ids == list(range(len(ids))), "rows lost or doubled"
        assert proc.returncode == 0 and len(ids) == 3000
    finally:
        proc.kill()
        proc.wait()
