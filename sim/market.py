"""MarketModel: the Mesa model of one venue, stepped by the replay with each step's exogenous state.

Two modes:
- ``synthetic``: a compiled order book seeded from the real book at window start evolves only by
  the agents' orders (``sim.synthetic``); prices are emergent.
- ``backtest``: the real book replays (handed in every step); agents' orders rest in it through a
  queue-position model and arrive after a latency (``sim.backtest``). The real market does not
  react to them.

Randomness: the run's SeedSequence spawns one child for the model (activation order; Mesa's
``model.rng``) and one per agent (``agent.generator``), in agent index order.
"""

from __future__ import annotations

import mesa
import numpy as np

from sim.accounts import Accounts
from sim.agents.arbitrageur import FIELDS as ARB_FIELDS
from sim.agents.arbitrageur import Arbitrageur
from sim.agents.base import INITIAL, TYPE_NAMES, param_vector
from sim.agents.informed import FIELDS as INF_FIELDS
from sim.agents.informed import InformedTrader
from sim.agents.market_maker import FIELDS as MM_FIELDS
from sim.agents.market_maker import MarketMaker
from sim.agents.noise import FIELDS as NOISE_FIELDS
from sim.agents.noise import NoiseTrader
from sim.book import FREE_HEAD, N_LIVE, POOL_CAP, OrderBook, grow
from sim.config import AgentParams, EngineParams
from sim.exog import EXOG_DTYPE, Shock, shocked, to_rule_inputs
from sim.orders import BUY, EVENT_DTYPE, GTC, LIMIT, ORDER_DTYPE, REJECTED, SELL
from sim.streams import spawn_generators, stream_addresses
from sim.synthetic import MAX_ORDERS_PER_AGENT, run_steps

MODES = ("synthetic", "backtest")


def step_columns() -> list[str]:
    """Names of the per-step output columns (besides step and ts_ns), in output order."""
    cols = ["best_bid", "best_ask", "mid", "spread", "bid_depth", "ask_depth", "last_price"]
    for name in TYPE_NAMES:
        cols += [f"inventory_{name}", f"pnl_{name}"]
    return cols


class MarketModel(mesa.Model):
    """One simulated venue with market makers, informed, noise traders and arbitrageurs."""

    def __init__(
        self,
        engine: EngineParams | dict | None = None,
        agents: AgentParams | dict | None = None,
        seed: int | np.random.SeedSequence = 0,
        *,
        mode: str = "synthetic",
        initial_bids: tuple[np.ndarray, np.ndarray] | None = None,
        initial_asks: tuple[np.ndarray, np.ndarray] | None = None,
        shocks: tuple[Shock, ...] = (),
        venue=None,
    ):
        """initial_bids/asks: (price ticks, size lots) integer arrays (synthetic mode);
        venue: a ``sim.backtest.BacktestVenue`` (backtest mode)."""
        if mode not in MODES:
            raise ValueError(f"sim.mode must be one of {MODES}, got {mode!r}")
        self.engine = engine if isinstance(engine, EngineParams) else EngineParams.from_dict(engine)
        self.agent_params = agents if isinstance(agents, AgentParams) else AgentParams.from_dict(
            agents)
        self.mode = mode
        self.shocks = tuple(shocks)
        ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        kinds = (
            (MarketMaker, self.agent_params.market_maker, MM_FIELDS),
            (InformedTrader, self.agent_params.informed, INF_FIELDS),
            (NoiseTrader, self.agent_params.noise, NOISE_FIELDS),
            (Arbitrageur, self.agent_params.arbitrageur, ARB_FIELDS),
        )
        n = sum(p.count for _, p, _ in kinds)
        children = ss.spawn(n + 1)
        model_gen = spawn_generators(children[:1])[0]
        super().__init__(rng=model_gen)
        self.n_agents = n
        self.quote_per_tick_lot = self.engine.tick_size * self.engine.lot_size
        self.accounts = Accounts(n + 1)  # row n: the seeded initial book (no agent)
        self.a_type = np.full(n + 1, INITIAL, dtype=np.int64)
        self.a_param = np.zeros((n + 1, 16), dtype=np.float64)
        self.a_scratch = np.zeros((n + 1, 4), dtype=np.float64)
        self._generators = spawn_generators(children[1:])
        idx = 0
        for cls, params, names in kinds:
            vec = param_vector(params, names)
            for _ in range(params.count):
                gen = self._generators[idx]
                cls(self, idx, params, gen)
                self.a_type[idx] = cls.type_code
                self.a_param[idx] = vec
                if cls is MarketMaker:
                    self.a_scratch[idx, 0] = np.nan  # fair value: first mid seen
                    j = params.spread_jitter
                    self.a_scratch[idx, 1] = gen.uniform(1.0 - j, 1.0 + j)
                idx += 1
        self._fn, self._states = stream_addresses(self._generators)
        _, sched = stream_addresses([model_gen])
        self._sched = sched[0]
        self._perm = np.arange(n, dtype=np.int64)
        self._obuf = np.zeros(MAX_ORDERS_PER_AGENT, dtype=ORDER_DTYPE)
        self._trades = np.zeros((1 << 12, 6), dtype=np.int64)
        self._nt = 0
        self._blocks: list[dict[str, np.ndarray]] = []
        self.venue = venue
        if mode == "synthetic":
            if venue is not None:
                raise ValueError("sim.backtest settings given but sim.mode is 'synthetic'")
            self._init_book(initial_bids, initial_asks)
        else:
            if venue is None:
                raise ValueError("sim.mode 'backtest' needs a venue (sim.backtest.BacktestVenue)")
            venue.bind(self)
            self._last_px = -1

    # synthetic mode ------------------------------------------------------------------------
    def _init_book(self, bids, asks) -> None:
        if bids is None or asks is None:
            raise ValueError("synthetic mode needs initial_bids and initial_asks (the real book "
                             "at window start)")
        bpx, bq = (np.asarray(a, dtype=np.int64) for a in bids)
        apx, aq = (np.asarray(a, dtype=np.int64) for a in asks)
        if bpx.size == 0 or apx.size == 0:
            raise ValueError("initial_bids and initial_asks must both be non-empty")
        if bpx.shape != bq.shape or apx.shape != aq.shape:
            raise ValueError("initial book prices and sizes must have the same length")
        if bpx.max() >= apx.min():
            raise ValueError("initial book is crossed: best bid >= best ask")
        if min(bpx.min(), bq.min(), aq.min()) < 1:
            raise ValueError("initial book prices and sizes must be >= 1 tick / lot")
        mid = (int(bpx.max()) + int(apx.min())) // 2
        base = max(mid - self.engine.band_ticks // 2, 0)
        self.book = OrderBook(self.engine.band_ticks, self.engine.capacity, base)
        rows = np.zeros(bpx.size + apx.size, dtype=ORDER_DTYPE)
        rows["kind"] = LIMIT
        rows["tif"] = GTC
        rows["owner"] = self.n_agents
        rows["side"] = np.r_[np.full(bpx.size, BUY), np.full(apx.size, SELL)]
        rows["price"] = np.r_[bpx, apx]
        rows["qty"] = np.r_[bq, aq]
        ev = self.book.submit_many(rows)
        if (ev["kind"] == REJECTED).any():
            raise ValueError("initial book does not fit in sim.engine.band_ticks")
        self._ev = np.zeros(self.book.pool.shape[0] + 16, dtype=EVENT_DTYPE)
        self._last_px = mid
        self.initial_book = self.book.resting().copy()

    def _make_room(self) -> None:
        worst = MAX_ORDERS_PER_AGENT * self.n_agents
        b = self.book
        while b.meta[FREE_HEAD] < 0 or b.pool.shape[0] - b.meta[N_LIVE] < worst + 1:
            b.pool, b.htab = grow(b.meta, b.pool, b.htab)
        if self._ev.shape[0] < b.meta[POOL_CAP] + 2:
            self._ev = np.zeros(b.meta[POOL_CAP] + 16, dtype=EVENT_DTYPE)
        need = self._nt + b.meta[N_LIVE] + 2 * worst + 2
        if self._trades.shape[0] < need:
            bigger = np.zeros((max(2 * self._trades.shape[0], need), 6), dtype=np.int64)
            bigger[: self._nt] = self._trades[: self._nt]
            self._trades = bigger

    def _run_synthetic(self, xs: np.ndarray, first: int) -> dict[str, np.ndarray]:
        k = xs.shape[0]
        n_types = len(TYPE_NAMES)
        out = {
            "bid": np.zeros(k, np.int64), "ask": np.zeros(k, np.int64),
            "bid_depth": np.zeros(k, np.int64), "ask_depth": np.zeros(k, np.int64),
            "last": np.zeros(k, np.int64), "inv": np.zeros((k, n_types), np.int64),
            "pnl": np.zeros((k, n_types), np.float64),
        }
        b = self.book
        acc = self.accounts
        t = 0
        while t < k:
            self._make_room()
            t, self._nt, self._last_px = run_steps(
                t, xs, first, b.meta, b.lev, b.pool, b.htab, self._ev, self._obuf, self.a_type,
                self.a_param, self.a_scratch, self._fn, self._states, self._sched, acc.inventory,
                acc.cash, acc.fees, acc.open, self.engine.maker_fee_bps / 1e4,
                self.engine.taker_fee_bps / 1e4, self._trades, self._nt, self._last_px,
                self.n_agents, self._perm, self.engine.depth_levels, out["bid"], out["ask"],
                out["bid_depth"], out["ask_depth"], out["last"], out["inv"], out["pnl"])
        return out

    # stepping ------------------------------------------------------------------------------
    def step(self, exog: np.ndarray, book: dict | None = None) -> None:
        """Advance one step. exog: one EXOG_DTYPE row; book: the real book (backtest mode)."""
        rows = np.atleast_1d(exog)
        if rows.shape[0] != 1:
            raise ValueError("step takes one exog row; use run() for a block")
        self._advance(rows, self.steps - 1, None if book is None else [book])

    def run(self, exog: np.ndarray, books: list[dict] | None = None) -> None:
        """Advance len(exog) steps in one compiled call (same result as stepping one by one)."""
        rows = np.atleast_1d(exog)
        first = self.steps
        self.steps += rows.shape[0]
        self._advance(rows, first, books)

    def _advance(self, rows: np.ndarray, first: int, books) -> None:
        if rows.dtype != EXOG_DTYPE:
            raise TypeError(f"exog must have dtype sim.exog.EXOG_DTYPE, got {rows.dtype}")
        rows = shocked(rows, first, self.shocks)
        xs = to_rule_inputs(rows, self.engine.tick_size)
        if self.mode == "synthetic":
            out = self._run_synthetic(xs, first)
        else:
            if books is None or len(books) != rows.shape[0]:
                raise ValueError("backtest mode needs one real book per exog row")
            out = self.venue.run(xs, rows["ts_ns"], books, first)
        out["step"] = first + np.arange(rows.shape[0], dtype=np.int64)
        out["ts_ns"] = rows["ts_ns"].copy()
        self._blocks.append(out)

    # outputs -------------------------------------------------------------------------------
    def _steps_table(self, blocks: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """Per-step columns in prices and quantities (not ticks and lots) of `blocks`."""
        tick, lot = self.engine.tick_size, self.engine.lot_size
        cat = {k: np.concatenate([b[k] for b in blocks]) if blocks else
               np.zeros((0, len(TYPE_NAMES)) if k in ("inv", "pnl") else 0)
               for k in ("step", "ts_ns", "bid", "ask", "bid_depth", "ask_depth", "last", "inv",
                         "pnl")}
        bid = np.where(cat["bid"] >= 0, cat["bid"] * tick, np.nan)
        ask = np.where(cat["ask"] >= 0, cat["ask"] * tick, np.nan)
        steps = {
            "step": cat["step"], "ts_ns": cat["ts_ns"], "best_bid": bid, "best_ask": ask,
            "mid": 0.5 * (bid + ask), "spread": ask - bid,
            "bid_depth": cat["bid_depth"] * lot, "ask_depth": cat["ask_depth"] * lot,
            "last_price": np.where(cat["last"] > 0, cat["last"] * tick, np.nan),
        }
        for j, name in enumerate(TYPE_NAMES):
            steps[f"inventory_{name}"] = cat["inv"][:, j] * lot
            steps[f"pnl_{name}"] = cat["pnl"][:, j] * self.quote_per_tick_lot
        return steps

    def last_steps(self) -> dict[str, np.ndarray]:
        """Step columns of the latest `run`/`step` block: what a replay writes per chunk."""
        return self._steps_table(self._blocks[-1:])

    def outputs(self) -> dict[str, dict[str, np.ndarray]]:
        """Tables {"steps", "trades", "agents"}, each {column: numpy array}, for Parquet."""
        tick, lot = self.engine.tick_size, self.engine.lot_size
        steps = self._steps_table(self._blocks)
        tr = self._trades[: self._nt]
        names = np.array(TYPE_NAMES + ("real_market",))
        taker, maker = tr[:, 4], tr[:, 5]
        trades = {
            "step": tr[:, 0].copy(), "price": tr[:, 1] * tick, "size": tr[:, 2] * lot,
            "aggressor_side": tr[:, 3].copy(), "taker_agent": taker.copy(),
            "maker_agent": maker.copy(),
            "taker_type": names[np.where(taker >= 0, self.a_type[taker], len(TYPE_NAMES))],
            "maker_type": names[np.where(maker >= 0, self.a_type[maker], len(TYPE_NAMES))],
        }
        first_step = steps["step"][0] if steps["step"].size else 0
        trades["ts_ns"] = steps["ts_ns"][tr[:, 0] - first_step] if tr.size else np.zeros(0, np.int64)
        acc = self.accounts
        last_mid = steps["mid"][-1] if steps["mid"].size else np.nan
        mark = last_mid if np.isfinite(last_mid) else self._last_px * tick
        agents = {
            "agent": np.arange(self.n_agents + 1), "type": names[self.a_type],
            "inventory": acc.inventory * lot, "cash": acc.cash * self.quote_per_tick_lot,
            "fees": acc.fees * self.quote_per_tick_lot,
            "pnl": acc.cash * self.quote_per_tick_lot + acc.inventory * lot * mark,
        }
        return {"steps": steps, "trades": trades, "agents": agents}

    @property
    def best_bid(self) -> int:
        return self.book.best_bid

    @property
    def best_ask(self) -> int:
        return self.book.best_ask
