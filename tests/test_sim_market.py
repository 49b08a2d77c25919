"""MarketModel behaviour: determinism, emergent prices, agent rules, shocks, backtest venue."""

import numpy as np
import pytest

from sim.backtest import BacktestVenue
from sim.config import AgentParams, EngineParams
from sim.exog import Shock, make_exog
from sim.latency import ConstantLatency, RecordedLatency
from sim.market import MarketModel
from sim.orders import BUY, GTC, LIMIT, SELL, make_orders
from sim.queue_models import ProbQueue, RiskAverseQueue

MID = 6_000_000  # ticks (60,000.00 at tick 0.01)
STEP_NS = 100_000_000
NONE = {"market_maker": {"count": 0}, "informed": {"count": 0}, "noise": {"count": 0},
        "arbitrageur": {"count": 0}}


def _book(half_spread=1, levels=20, size=10):
    bids = (MID - half_spread - np.arange(levels), np.full(levels, size))
    asks = (MID + half_spread + np.arange(levels), np.full(levels, size))
    return bids, asks


def _agents(**over):
    d = {k: dict(v) for k, v in NONE.items()}
    for k, v in over.items():
        d[k].update(v)
    return d


def _exog(n, **cols):
    cols.setdefault("ref_mid", MID * 0.01)
    return make_exog(n, ts_ns=np.arange(n) * STEP_NS, **cols)


def _synthetic(seed=7, agents=None, n=300, **kw):
    bids, asks = _book()
    m = MarketModel(EngineParams(), agents, seed, initial_bids=bids, initial_asks=asks, **kw)
    m.run(_exog(n, sentiment=np.sin(np.arange(n) / 30.0), epistemic=0.2))
    return m


def _flat(m):
    return {f"{t}.{c}": v for t, cols in m.outputs().items() for c, v in cols.items()}


def test_same_seed_same_outputs_different_seed_different():
    a, b, c = _flat(_synthetic(7)), _flat(_synthetic(7)), _flat(_synthetic(8))
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k], equal_nan=a[k].dtype.kind == "f"), k
    assert len(a["trades.step"]) > 50
    assert not np.array_equal(a["trades.price"], c["trades.price"]) or not np.array_equal(
        a["trades.step"], c["trades.step"])


def test_stepping_one_by_one_equals_one_block():
    bids, asks = _book()
    ex = _exog(60, sentiment=0.3, epistemic=0.1)
    block = MarketModel(None, None, 3, initial_bids=bids, initial_asks=asks)
    block.run(ex)
    single = MarketModel(None, None, 3, initial_bids=bids, initial_asks=asks)
    for row in ex:
        single.step(row)
    assert single.steps == block.steps == 60
    fa, fb = _flat(block), _flat(single)
    for k in fa:
        assert np.array_equal(fa[k], fb[k], equal_nan=fa[k].dtype.kind == "f"), k


def test_without_agents_the_book_never_changes():
    m = _synthetic(agents=NONE, n=200, shocks=(Shock("sentiment", 5.0, 10, 50),))
    out = m.outputs()
    assert len(out["trades"]["step"]) == 0
    assert np.all(out["steps"]["mid"] == MID * 0.01)
    assert np.array_equal(m.book.resting(), m.initial_book)


def test_prices_are_emergent_not_pulled_to_the_reference():
    # the reference mid jumps 10% while no agent looks at it: the simulated mid must not follow
    bids, asks = _book()
    m = MarketModel(None, _agents(noise={"count": 50}, market_maker={"count": 3}), 1,
                    initial_bids=bids, initial_asks=asks)
    m.run(_exog(300, ref_mid=MID * 0.011))
    mid = m.outputs()["steps"]["mid"]
    assert np.nanmax(np.abs(mid / (MID * 0.01) - 1)) < 0.01
    assert len(np.unique(mid[np.isfinite(mid)])) > 3  # it did move, by agents' orders


def _mm_spread(m):
    o = m.agents_by_type  # Mesa's per-class AgentSets
    (mm,) = [a for cls, s in o.items() if cls.__name__ == "MarketMaker" for a in s]
    rows = mm.open_orders
    return rows[rows[:, 1] == SELL, 2].min() - rows[rows[:, 1] == BUY, 2].max()


def test_market_maker_widens_when_epistemic_uncertainty_rises():
    bids, asks = _book(half_spread=200)
    m = MarketModel(None, _agents(market_maker={"count": 1}), 5, initial_bids=bids,
                    initial_asks=asks, shocks=(Shock("epistemic", 2.0, 10, 10),))
    spreads = []
    for row in _exog(30, epistemic=0.05):
        m.step(row)
        spreads.append(_mm_spread(m))
    before, during, after = spreads[5], spreads[15], spreads[25]
    assert during >= 3 * before
    assert after == before


def _arb_model(ask_gap_ticks):
    # only an arbitrageur; the simulated ask sits ask_gap_ticks below the reference mid
    ask = MID - ask_gap_ticks
    bids = (np.array([ask - 10]), np.array([5]))
    asks = (np.array([ask]), np.array([5]))
    arb = {"count": 1, "fee_bps": 1.0, "threshold_bps": 1.0, "act_prob": 1.0, "size_lots": 2}
    m = MarketModel({"taker_fee_bps": 1.0}, _agents(arbitrageur=arb), 0, initial_bids=bids,
                    initial_asks=asks)
    m.run(_exog(1))
    return m.outputs()


def test_arbitrageur_trades_only_beyond_fee_plus_threshold():
    band = MID * 2 / 10_000  # (fee 1 bp + threshold 1 bp) of the reference = 1200 ticks
    out = _arb_model(band + 5)
    assert out["trades"]["taker_type"].tolist() == ["arbitrageur"]
    assert out["trades"]["aggressor_side"].tolist() == [BUY]
    assert _arb_model(band - 5)["trades"]["step"].size == 0


def _bt_model(queue=None, latency=None):
    venue = BacktestVenue(queue_model=queue or RiskAverseQueue(), latency=latency)
    # one agent that never acts, to own the scripted order
    return MarketModel(None, _agents(noise={"count": 1, "rate_per_step": 0.0}), 0,
                       mode="backtest", venue=venue)


def _real(bid_qty, trades=()):
    px = [p for p, _, _ in trades]
    return {"bid_px": [100, 99], "bid_qty": [bid_qty, 50], "ask_px": [101, 102],
            "ask_qty": [30, 30], "trade_px": px, "trade_qty": [q for _, q, _ in trades],
            "trade_side": [s for _, _, s in trades]}


def test_backtest_fills_only_after_the_queue_ahead_is_consumed():
    m = _bt_model()
    ex = _exog(4)
    m.step(ex[0], _real(10))
    m.venue.submit(make_orders([(LIMIT, BUY, GTC, 0, 100, 2, -1)]), int(ex[0]["ts_ns"]))
    m.step(ex[1], _real(10))  # arrives: 10 lots ahead of it
    assert m.venue.r_ahead.tolist() == [10.0]
    m.step(ex[2], _real(4, [(100, 6, SELL)]))  # 6 traded: 4 still ahead, no fill
    assert m.outputs()["trades"]["step"].size == 0
    assert m.venue.r_ahead.tolist() == [4.0]
    m.step(ex[3], _real(0, [(100, 5, SELL)]))  # 5 more: queue gone, 1 lot reaches us
    tr = m.outputs()["trades"]
    assert tr["size"].tolist() == [1 * m.engine.lot_size]
    assert tr["maker_type"].tolist() == ["noise"] and tr["taker_type"].tolist() == ["real_market"]
    assert list(m.agents)[0].inventory == 1


def test_queue_models_treat_cancellations_differently():
    ahead, behind = np.array([10.0]), np.array([10.0])
    cancelled, new_depth = np.array([6.0]), np.array([14.0])
    assert RiskAverseQueue().after_cancels(ahead, behind, cancelled, new_depth).tolist() == [10]
    assert ProbQueue(2.0).after_cancels(ahead, behind, cancelled, new_depth).tolist() == [7.0]


def test_latency_delays_arrival():
    m = _bt_model(latency=ConstantLatency(250_000_000))  # 2.5 steps
    ex = _exog(5)
    m.step(ex[0], _real(10))
    m.venue.submit(make_orders([(LIMIT, BUY, GTC, 0, 100, 2, -1)]), int(ex[0]["ts_ns"]))
    arrived = []
    for row in ex[1:]:
        m.step(row, _real(10))
        arrived.append(m.venue.r_id.size)
    assert arrived == [0, 0, 1, 1]
    rec = RecordedLatency([0, 10], [5, 7])
    assert rec.delay_ns(np.array([-1, 0, 9, 10, 99])).tolist() == [5, 5, 5, 7, 7]


def test_backtest_run_with_agents_is_deterministic():
    def go():
        venue = BacktestVenue(latency=ConstantLatency(STEP_NS))
        m = MarketModel(None, AgentParams(), 11, mode="backtest", venue=venue)
        n = 40
        books = [_real(20 + (t % 5), [(100, 3, SELL)] if t % 3 == 0 else []) for t in range(n)]
        m.run(_exog(n, ref_mid=1.005, fundamental=1.02), books)
        return _flat(m)

    a, b = go(), go()
    assert len(a["trades.step"]) > 0
    for k in a:
        assert np.array_equal(a[k], b[k], equal_nan=a[k].dtype.kind == "f"), k


def test_bad_settings_name_the_field():
    with pytest.raises(ValueError, match="sim.agents.noise.rate"):
        AgentParams.from_dict({"noise": {"rate": 1.0}})
    with pytest.raises(ValueError, match="sim.mode"):
        MarketModel(mode="live")
    with pytest.raises(ValueError, match="crossed"):
        MarketModel(initial_bids=([10], [1]), initial_asks=([9], [1]))
    with pytest.raises(ValueError, match="sim.shock.field"):
        Shock("price", 1.0, 0, 1)
