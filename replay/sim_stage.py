"""The simulation stage: the Mesa market (`sim.MarketModel`) stepped with the replay's steps.

Exogenous inputs per step come from upstream stages: the real mid (book), the crowd's sentiment
and uncertainty (sentiment) and the latent factors and volatility regime (regimes). In synthetic
mode the simulated book is seeded with the real book's levels at the first step the real book is
valid and then evolves only by the agents' orders; in backtest mode the real top of book and the
step's real trades are handed to the venue every step. Steps before the start are NaN.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import polars as pl
import pyarrow as pa

from recorder.normalize.parse import parse_events
from replay.stage import Chunk
from sim.exog import make_exog
from sim.market import MarketModel, step_columns

LevelsAt = Callable[[int], tuple[np.ndarray, ...]]


def _col(up: dict, stage: str, name: str, n: int, fill: float) -> np.ndarray:
    if stage not in up:
        return np.full(n, fill)
    return np.nan_to_num(np.asarray(up[stage][name], dtype=np.float64), nan=fill)


class SimStage:
    """Runs one `MarketModel` over the window; see docs/concepts/sim.md for the agents."""

    name = "sim"

    def __init__(
        self,
        *,
        engine: dict,
        agents: dict,
        seed: int,
        mode: str,
        shocks: tuple,
        needs: Sequence[str],
        levels_at: LevelsAt,
        trade_stream: str,
        venue=None,
        depth_levels: int = 20,
    ) -> None:
        self.engine, self.agents, self.seed, self.mode = engine, agents, seed, mode
        self.shocks, self.venue = shocks, venue
        self.needs = tuple(needs)
        self.streams = (trade_stream,) if mode == "backtest" else ()
        self.levels_at = levels_at
        self.depth_levels = depth_levels
        self.model: MarketModel | None = None
        self.first_step: int | None = None

    def _exog(self, chunk: Chunk) -> np.ndarray:
        up, n = chunk.upstream, chunk.n_steps
        book = up["book"]
        ref_mid = np.where(np.asarray(book["valid"], bool), book["mid"], np.nan)
        regime = (
            np.asarray(up["regimes"]["volatility_label"], dtype=np.int64)
            if "regimes" in up and "volatility_label" in up["regimes"]
            else np.ones(n, np.int64)
        )
        return make_exog(
            n,
            ts_ns=chunk.starts_ns,
            ref_mid=ref_mid,
            sentiment=_col(up, "sentiment", "score_ewma", n, 0.0),
            epistemic=_col(up, "sentiment", "epistemic_ewma", n, 0.0),
            aleatoric=_col(up, "sentiment", "aleatoric_ewma", n, 0.0),
            mood=_col(up, "regimes", "mood", n, 0.0),
            volatility=_col(up, "regimes", "volatility", n, 0.0),
            liquidity=_col(up, "regimes", "liquidity", n, 0.0),
            regime=np.where(regime < 0, 1, regime),
        )

    def _start(self, chunk: Chunk) -> int | None:
        """Create the model at the first step with a valid real book; return its chunk offset."""
        valid = np.nonzero(np.asarray(chunk.upstream["book"]["valid"], bool))[0]
        if not len(valid):
            return None
        i = int(valid[0])
        kw = {}
        if self.mode == "synthetic":
            tick, lot = float(self.engine["tick_size"]), float(self.engine["lot_size"])
            bpx, bq, apx, aq = self.levels_at(int(chunk.ends_ns[i]))
            # a simulation tick coarser than the exchange's: bids round down, asks up (never crossed)
            kw = {
                "initial_bids": (
                    np.floor(bpx / tick + 1e-9).astype(np.int64),
                    np.maximum(np.round(bq / lot), 1).astype(np.int64),
                ),
                "initial_asks": (
                    np.ceil(apx / tick - 1e-9).astype(np.int64),
                    np.maximum(np.round(aq / lot), 1).astype(np.int64),
                ),
            }
        self.model = MarketModel(
            self.engine,
            self.agents,
            np.random.SeedSequence(self.seed),
            mode=self.mode,
            shocks=self.shocks,
            venue=self.venue,
            **kw,
        )
        self.first_step = chunk.step0 + i
        return i

    def _books(self, chunk: Chunk, i: int) -> list[dict]:
        """Backtest: the real top of book and the step's trades, in ticks and lots."""
        tick, lot = float(self.engine["tick_size"]), float(self.engine["lot_size"])
        b = chunk.upstream["book"]
        trades = parse_events(chunk.events, tables=("trades",)).tables["trades"]
        step = np.clip(
            np.searchsorted(chunk.starts_ns, trades["recv_ts_ns"].to_numpy(), "right") - 1, 0, None
        )
        px = np.round(trades["price"].to_numpy() / tick).astype(np.int64)
        qty = np.maximum(np.round(trades["qty"].to_numpy() / lot), 1).astype(np.int64)
        side = np.where(trades["is_buyer_maker"].to_numpy(), -1, 1)  # aggressor: seller if buyer is maker
        cut = np.searchsorted(step, np.arange(chunk.n_steps + 1))
        books = []
        for k in range(i, chunk.n_steps):
            s = slice(cut[k], cut[k + 1])
            ok = bool(b["valid"][k])
            books.append(
                {
                    "bid_px": [round(b["bid_px"][k] / tick)] if ok else [],
                    "bid_qty": [max(round(b["bid_qty"][k] / lot), 1)] if ok else [],
                    "ask_px": [round(b["ask_px"][k] / tick)] if ok else [],
                    "ask_qty": [max(round(b["ask_qty"][k] / lot), 1)] if ok else [],
                    "trade_px": px[s],
                    "trade_qty": qty[s],
                    "trade_side": side[s],
                }
            )
        return books

    def process(self, chunk: Chunk) -> dict[str, np.ndarray]:
        n = chunk.n_steps
        i = 0 if self.model is not None else self._start(chunk)
        if i is None:
            return self._empty(n)
        exog = self._exog(chunk)[i:]
        self.model.run(exog, self._books(chunk, i) if self.mode == "backtest" else None)
        steps = {k: v for k, v in self.model.last_steps().items() if k not in ("step", "ts_ns")}
        if i == 0:
            return steps
        return {k: np.concatenate([np.full(i, np.nan), v]) for k, v in steps.items()}

    def _empty(self, n: int) -> dict[str, np.ndarray]:
        """NaN steps before the model starts, with the columns it will have."""
        return {k: np.full(n, np.nan) for k in step_columns()}

    def tables(self) -> dict[str, pa.Table]:
        if self.model is None:
            return {}
        out = self.model.outputs()
        trades = pl.DataFrame(out["trades"]).with_columns(pl.col("step") + self.first_step)
        return {"trades": trades.to_arrow(), "agents": pl.DataFrame(out["agents"]).to_arrow()}
