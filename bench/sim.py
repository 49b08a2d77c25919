"""Benchmark of the simulator: matching engine vs the reference engine, and a simulated day.

Prints one JSON line per figure. Usage:
    python bench/sim.py                 # 86,400 steps (1/10 day), extrapolated to a day
    python bench/sim.py --steps 864000  # a full day at 100 ms steps
Agent mix: the defaults of sim.config.AgentParams (10 market makers, 20 informed, 165 noise
traders, 5 arbitrageurs = 200 agents).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import numpy as np

if not __package__:  # run as a file: this folder's sim.py would shadow the sim package
    _here = pathlib.Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if pathlib.Path(p or ".").resolve() != _here]
    sys.path.insert(0, str(_here.parent))

from sim.book import OrderBook  # noqa: E402
from sim.config import AgentParams, EngineParams  # noqa: E402
from sim.exog import make_exog  # noqa: E402
from sim.market import MarketModel  # noqa: E402
from sim.orders import (  # noqa: E402
    BUY,
    CANCEL,
    FOK,
    GTC,
    IOC,
    LIMIT,
    MARKET,
    MODIFY,
    ORDER_DTYPE,
    SELL,
)
from sim.reference_book import ReferenceBook  # noqa: E402

DAY_STEPS = 864_000
STEP_NS = 100_000_000
MID = 6_000_000


def order_stream(n: int, seed: int) -> np.ndarray:
    """Random mixed flow around a mid: 60% limit, 10% market, 20% cancel, 10% modify."""
    rng = np.random.default_rng(seed)
    o = np.zeros(n, dtype=ORDER_DTYPE)
    kind = rng.choice([LIMIT, MARKET, CANCEL, MODIFY], size=n, p=[0.6, 0.1, 0.2, 0.1])
    side = rng.choice([BUY, SELL], size=n)
    o["kind"] = kind
    o["side"] = side
    o["tif"] = rng.choice([GTC, IOC, FOK], size=n, p=[0.9, 0.07, 0.03])
    o["tif"][kind != LIMIT] = GTC
    o["owner"] = rng.integers(0, 200, size=n)
    o["price"] = MID - side * rng.geometric(0.2, size=n) + side * 2
    o["qty"] = rng.integers(1, 10, size=n)
    # ids: each LIMIT/MARKET takes the next one; cancels/modifies aim at recent ones
    n_ids = np.cumsum(np.isin(kind, (LIMIT, MARKET)))
    target = np.maximum(n_ids - rng.integers(0, 200, size=n), 1)
    o["order_id"] = np.where(np.isin(kind, (CANCEL, MODIFY)), target, -1)
    # a cancel must come from the owner: give targeted orders their owner's id
    ids_owner = o["owner"][np.isin(kind, (LIMIT, MARKET))]
    tgt = np.isin(kind, (CANCEL, MODIFY))
    o["owner"][tgt] = ids_owner[np.minimum(target[tgt], ids_owner.size) - 1]
    return o


def emit(name: str, value: float, unit: str, **extra) -> None:
    print(json.dumps({"figure": name, "value": round(value, 3), "unit": unit, **extra}))


def bench_engine(n: int, n_ref: int) -> None:
    """Same orders through both engines (the first n_ref), then the compiled one on all n."""
    orders = order_stream(n, 1)
    OrderBook().submit_many(orders[:1000])  # compile outside the timing
    head = orders[:n_ref]
    fast_head = []
    for _ in range(5):  # best of 5: the compiled run is short
        book = OrderBook(capacity=1 << 16)
        t = time.perf_counter()
        book.submit_many(head)
        fast_head.append(time.perf_counter() - t)
    ref = ReferenceBook()
    t = time.perf_counter()
    ref.submit_many(head)
    ref_s = time.perf_counter() - t
    book = OrderBook(capacity=1 << 16)
    t = time.perf_counter()
    ev = book.submit_many(orders)
    fast_s = time.perf_counter() - t
    fast_head_rate = n_ref / min(fast_head)
    ref_rate = n_ref / ref_s
    emit("engine_orders_per_s", fast_head_rate, "orders/s", orders=n_ref)
    emit("reference_engine_orders_per_s", ref_rate, "orders/s", orders=n_ref)
    emit("engine_speedup_vs_reference", fast_head_rate / ref_rate, "x", orders=n_ref)
    emit("engine_orders_per_s_long_stream", n / fast_s, "orders/s", orders=n,
         events=int(ev.size), resting_at_end=int(book.resting().shape[0]))


def bench_day(steps: int, block: int) -> None:
    rng = np.random.default_rng(2)
    agents = AgentParams()
    n_agents = sum(getattr(agents, k).count for k in ("market_maker", "informed", "noise",
                                                       "arbitrageur"))
    levels = 20
    bids = (MID - 1 - np.arange(levels), np.full(levels, 20))
    asks = (MID + 1 + np.arange(levels), np.full(levels, 20))
    ref = MID * 0.01 * np.exp(np.cumsum(rng.normal(0, 2e-5, steps)))
    exog = make_exog(steps, ts_ns=np.arange(steps) * STEP_NS, ref_mid=ref,
                     sentiment=np.tanh(np.cumsum(rng.normal(0, 0.01, steps))),
                     epistemic=np.abs(rng.normal(0.1, 0.05, steps)),
                     regime=(np.arange(steps) // 36_000) % 3)
    warm = MarketModel(EngineParams(), agents, 0, initial_bids=bids, initial_asks=asks)
    warm.run(exog[:100])  # compile outside the timing
    model = MarketModel(EngineParams(), agents, 0, initial_bids=bids, initial_asks=asks)
    t = time.perf_counter()
    cpu = time.process_time()
    for s in range(0, steps, block):
        model.run(exog[s:s + block])
    wall = time.perf_counter() - t
    cpu = time.process_time() - cpu
    out = model.outputs()
    emit("sim_wall_measured", wall, "s", steps=steps, agents=n_agents, cpu_s=round(cpu, 3),
         trades=int(out["trades"]["step"].size), block_steps=block)
    emit("sim_wall_one_day_extrapolated" if steps < DAY_STEPS else "sim_wall_one_day",
         wall * DAY_STEPS / steps, "s", day_steps=DAY_STEPS, target_s=60)
    emit("agent_steps_per_s", steps * n_agents / wall, "agent-steps/s")
    emit("steps_per_s", steps / wall, "steps/s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=86_400)
    ap.add_argument("--block", type=int, default=10_000, help="steps per compiled call")
    ap.add_argument("--orders", type=int, default=1_000_000)
    ap.add_argument("--ref-orders", type=int, default=20_000)
    args = ap.parse_args()
    bench_engine(args.orders, args.ref_orders)
    bench_day(args.steps, args.block)


if __name__ == "__main__":
    main()
