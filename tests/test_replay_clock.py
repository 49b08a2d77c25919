"""The clock and runs: deterministic whatever the chunking, speed or live/offline mode."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import orjson
import polars as pl
import pytest

from recorder.events import events_table
from recorder.writer import LogWriter
from replay.pipeline import run_replay, verify_run
from replay.tape import bars
from smabm.config import load_config

T0 = 1_723_161_254_000_000_000


def trade_payloads(n: int, seed: int, t0: int = T0, spacing_ns: int = 37_000_000):
    """Binance spot trade frames (combined-stream envelope) with seeded prices and sizes."""
    rng = np.random.default_rng(seed)
    recv = t0 + np.cumsum(rng.integers(1, 2 * spacing_ns, n))
    price = 60_000 + np.cumsum(rng.normal(0, 2, n)).round(2)
    out = []
    for i in range(n):
        e_ms = int(recv[i] // 1_000_000) + 1270  # exchange clock ahead of the recorder, as in the samples
        d = {"e": "trade", "E": e_ms, "s": "BTCUSDT", "t": 1000 + i, "p": f"{price[i]:.2f}",
             "q": f"{rng.uniform(0.001, 0.5):.5f}", "T": e_ms, "m": bool(rng.integers(0, 2))}
        out.append(orjson.dumps({"stream": "btcusdt@trade", "data": d}))
    return recv.tolist(), out


def write_trades(root, n=3000, seed=1, writer="t", **kw):
    recv, payloads = trade_payloads(n, seed)
    with LogWriter(root, writer, **kw) as w:
        for a in range(0, n, 500):
            w.append(events_table(source=["binance.spot"] * len(recv[a:a + 500]),
                                  stream=["btcusdt@trade"] * len(recv[a:a + 500]),
                                  recv_ts_ns=recv[a:a + 500], payload=payloads[a:a + 500]))
    return recv, payloads


def cfg_for(root, out, *extra):
    return load_config([f"log.root={root}", f"replay.out={out}", "replay.stages=[tape]", *extra])


def outputs(run):
    return orjson.loads((run / "manifest.json").read_bytes())["outputs"]


def test_bars_are_exact_and_lose_no_trade(tmp_path):
    recv, _ = write_trades(tmp_path / "log")
    run = run_replay(cfg_for(tmp_path / "log", tmp_path / "run", "replay.step=250ms"), progress=False)
    tape = pl.read_parquet(run / "tape.parquet")
    assert tape["trade_count"].sum() == len(recv)
    assert tape["step"].to_list() == list(range(tape.height))
    full = tape.filter(pl.col("trade_count") > 0)
    assert (full["low"] <= full["vwap"]).all() and (full["vwap"] <= full["high"]).all()
    assert np.allclose(full["buy_volume"] + full["sell_volume"], full["volume"])


def test_chunking_does_not_change_outputs(tmp_path):
    write_trades(tmp_path / "log")
    a = run_replay(cfg_for(tmp_path / "log", tmp_path / "a", "replay.chunk_steps=600"), progress=False)
    b = run_replay(cfg_for(tmp_path / "log", tmp_path / "b", "replay.chunk_steps=7"), progress=False)
    c = run_replay(cfg_for(tmp_path / "log", tmp_path / "c", "replay.chunk_steps=1"), progress=False)
    assert outputs(a) == outputs(b) == outputs(c)


def test_two_runs_identical_and_verify_passes(tmp_path):
    write_trades(tmp_path / "log")
    a = run_replay(cfg_for(tmp_path / "log", tmp_path / "a"), progress=False)
    b = run_replay(cfg_for(tmp_path / "log", tmp_path / "b"), progress=False)
    assert outputs(a) == outputs(b)
    assert (a / "tape.parquet").read_bytes() == (b / "tape.parquet").read_bytes()
    assert verify_run(a, progress=False)["identical"]


def test_verify_detects_a_changed_output(tmp_path):
    write_trades(tmp_path / "log")
    a = run_replay(cfg_for(tmp_path / "log", tmp_path / "a"), progress=False)
    m = orjson.loads((a / "manifest.json").read_bytes())
    m["outputs"]["tape"]["sha256"] = "0" * 64
    (a / "manifest.json").write_bytes(orjson.dumps(m))
    assert not verify_run(a, progress=False)["identical"]


def test_paced_replay_equals_max_speed(tmp_path):
    write_trades(tmp_path / "log", n=300)  # ~11 s of market time
    fast = run_replay(cfg_for(tmp_path / "log", tmp_path / "max"), progress=False)
    paced = run_replay(cfg_for(tmp_path / "log", tmp_path / "x20", "replay.speed=20", "replay.chunk_steps=2"),
                       progress=False)
    assert outputs(fast) == outputs(paced)
    stats = orjson.loads((paced / "run_stats.json").read_bytes())
    assert stats["wall_s"] >= 11 / 20 * 0.8  # it really waited for the wall clock


def test_event_time_orders_by_exchange_clock(tmp_path):
    # two trades received in the opposite order of their exchange times
    frames = [orjson.dumps({"stream": "btcusdt@trade", "data": {"e": "trade", "E": e, "s": "BTCUSDT", "t": t,
                                                                 "p": p, "q": "1", "T": e, "m": False}})
              for e, t, p in ((T0 // 1_000_000 + 1500, 2, "101"), (T0 // 1_000_000 + 200, 1, "100"))]
    with LogWriter(tmp_path / "log", "w") as w:
        w.append(events_table(source=["binance.spot"] * 2, stream=["btcusdt@trade"] * 2,
                              recv_ts_ns=[T0 + 100, T0 + 200],
                              event_ts_ns=[T0 + 1_500_000_000, T0 + 200_000_000],
                              payload=frames))
    run = run_replay(cfg_for(tmp_path / "log", tmp_path / "run", "replay.time=event", "replay.step=1s",
                             f"replay.window.start={T0}", f"replay.window.end={T0 + 2_000_000_000}"),
                     progress=False)
    tape = pl.read_parquet(run / "tape.parquet")
    assert tape["close"].to_list() == [100.0, 101.0]
    run = run_replay(cfg_for(tmp_path / "log", tmp_path / "recv", "replay.step=1s",
                             f"replay.window.start={T0}", f"replay.window.end={T0 + 2_000_000_000}"),
                     progress=False)
    # by receipt time both trades fall in the first second, the later-received one closing it
    assert pl.read_parquet(run / "tape.parquet")["close"].to_list()[0] == 100.0
    assert pl.read_parquet(run / "tape.parquet")["trade_count"].to_list() == [2, 0]


LIVE_WRITER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {tests!r})
    from test_replay_clock import trade_payloads
    from recorder.events import events_table
    from recorder.writer import LogWriter
    recv, payloads = trade_payloads(600, 5)
    with LogWriter(sys.argv[1], "live", segment_max_rows=150, segment_max_age_s=None) as w:
        for a in range(0, 600, 50):
            w.append(events_table(source=["binance.spot"] * 50, stream=["btcusdt@trade"] * 50,
                                  recv_ts_ns=recv[a:a + 50], payload=payloads[a:a + 50]))
            time.sleep(0.1)
""")


def test_live_tail_equals_offline_replay(tmp_path):
    recv, _ = trade_payloads(600, 5)
    start, end = recv[0], recv[-1] + 1
    log = tmp_path / "log"
    LogWriter(log, "init").close()  # an empty log the replay can open before data arrives
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    script = LIVE_WRITER.format(tests=os.path.dirname(__file__))
    proc = subprocess.Popen([sys.executable, "-c", script, str(log)], env=env)
    try:
        live = run_replay(cfg_for(log, tmp_path / "live", "replay.live=true", f"replay.window.start={start}",
                                  f"replay.window.end={end}", "replay.live_poll=50ms", "replay.live_lag=2s",
                                  "replay.live_idle_timeout=30s"), progress=False)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == 0
    offline = run_replay(cfg_for(log, tmp_path / "offline", f"replay.window.start={start}",
                                 f"replay.window.end={end}"), progress=False)
    assert outputs(live) == outputs(offline)
    assert pl.read_parquet(offline / "tape.parquet")["trade_count"].sum() == 600


def test_corrupt_segment_is_a_one_line_error(tmp_path):
    write_trades(tmp_path / "log")
    seg = next((tmp_path / "log" / "raw").rglob("*.parquet"))
    seg.write_bytes(seg.read_bytes()[:100])
    r = subprocess.run([sys.executable, "-m", "smabm", "replay", f"log.root={tmp_path / 'log'}",
                        f"replay.out={tmp_path / 'run'}", "replay.stages=[tape]"],
                       capture_output=True, text=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert r.returncode == 1
    err = [ln for ln in r.stderr.splitlines() if ln.startswith("smabm")]
    assert len(err) == 1 and seg.name in err[0]


def test_bad_settings_name_the_key(tmp_path):
    write_trades(tmp_path / "log", n=10)
    with pytest.raises(ValueError, match="replay.step='fast'"):
        run_replay(cfg_for(tmp_path / "log", tmp_path / "r", "replay.step=fast"), progress=False)
    with pytest.raises(ValueError, match="replay.time='wall'"):
        run_replay(cfg_for(tmp_path / "log", tmp_path / "r", "replay.time=wall"), progress=False)


def test_bars_carry_realised_variance_across_steps():
    price = np.array([100.0, 101.0, 99.0])
    out = bars(price, np.ones(3), np.array([False, True, False]), np.array([0, 1, 1]), 3, prev_price=100.0)
    r = np.diff(np.log([100.0, 100.0, 101.0, 99.0]))
    assert np.isclose(out["realized_var"][0], r[0] ** 2)
    assert np.isclose(out["realized_var"][1], r[1] ** 2 + r[2] ** 2)
    assert out["realized_var"][2] == 0 and np.isnan(out["close"][2]) and out["last_price"][2] == 99.0
    assert out["signed_volume"].tolist() == [1.0, 0.0, 0.0]
