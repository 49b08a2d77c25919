"""Built-in stage factories, registered under the names `replay.stages` lists."""

from __future__ import annotations

import logging

import polars as pl
import pyarrow as pa
from omegaconf import DictConfig, OmegaConf

from recorder.normalize.csv_records import headers_from_markers
from replay.book import MARKET_SOURCES, BookStage
from replay.book_levels import depth_rows_before
from replay.pipeline import RunContext, register
from replay.tape import TapeStage
from replay.timeparse import duration_ns

log = logging.getLogger("smabm.replay")
SOURCE_MARKETS = {v: k for k, v in MARKET_SOURCES.items()}


@register("tape")
def tape(cfg: DictConfig, ctx: RunContext) -> TapeStage:
    return TapeStage([f"{ctx.source}:{ctx.symbol}@trade"], time=str(cfg.replay.time))


@register("book")
def book(cfg: DictConfig, ctx: RunContext) -> BookStage:
    if ctx.source not in SOURCE_MARKETS:
        raise ValueError(
            f"replay.instrument={cfg.replay.instrument!r}: the book needs a Binance source "
            f"({', '.join(sorted(SOURCE_MARKETS))})"
        )
    b = cfg.replay.book
    stage = BookStage(ctx.symbol, SOURCE_MARKETS[ctx.source], int(b.depth_levels), source=ctx.source,
                      time=str(cfg.replay.time), window_ticks=int(b.window_ticks),
                      price_decimals=b.price_decimals, qty_decimals=b.qty_decimals,
                      buffer_rows=int(b.buffer_rows))
    ctx.when_ready(lambda: warm_up_book(stage, ctx))
    return stage


def warm_up_book(stage: BookStage, ctx: RunContext) -> None:
    """Bring the book to the window start from the last snapshot before it."""
    depth = depth_rows_before(ctx.reader, list(stage.streams), stage.streams[1], ctx.clock.start_ns)
    if depth.height:
        stage.warm_up(depth.filter(pl.col("symbol") == stage.symbol))
        log.info("book warm-up to the window start: %d depth rows, valid=%s", depth.height, stage.valid)


@register("sentiment")
def sentiment(cfg: DictConfig, ctx: RunContext):
    from models.sentiment import ScoreCache, SentimentModel
    from replay.sentiment_stage import SentimentStage

    s = cfg.models.sentiment
    model = SentimentModel.load(str(s.model), max_length=int(s.max_length))
    cache = ScoreCache(str(s.cache)) if s.cache else None
    markers = list(ctx.reader.read(streams=list(s.streams), kinds=["connect"]))
    headers = headers_from_markers(pl.from_arrow(pa.Table.from_batches(markers))) if markers else {}
    return SentimentStage(
        model,
        list(s.streams),
        T=int(s.T),
        seed=ctx.seed,
        sampled_layers=int(s.sampled_layers),
        latency_ns=duration_ns(s.latency, "models.sentiment.latency", allow_zero=True),
        half_life_ns=duration_ns(s.half_life, "models.sentiment.half_life"),
        step_ns=duration_ns(cfg.replay.step, "replay.step"),
        cache=cache,
        batch_size=int(s.batch_size),
        headers=headers,
    )


@register("regimes")
def regimes(cfg: DictConfig, ctx: RunContext):
    from models.sentiment import SentimentModel
    from replay.regimes_stage import RegimesStage, usable_config

    values = OmegaConf.to_container(cfg.models.regimes, resolve=True)
    spec = cfg.models.sentiment.model
    if not SentimentModel.spec_measures_uncertainty(spec):  # an all-NaN series cannot load on mood
        values["blocks"] = {b: [x for x in s if x != "sentiment_unc"] for b, s in values["blocks"].items()}
        log.info(f"regimes: sentiment model {spec} measures no uncertainty; 'sentiment_unc' dropped")
    return RegimesStage(usable_config(values, list(cfg.replay.stages)))


@register("sim")
def sim(cfg: DictConfig, ctx: RunContext):
    from replay.book_levels import levels_at
    from replay.sim_stage import SimStage
    from sim.backtest import BacktestVenue
    from sim.exog import Shock
    from sim.latency import ConstantLatency
    from sim.queue_models import make_queue_model

    s = OmegaConf.to_container(cfg.sim, resolve=True)
    if "book" not in cfg.replay.stages:
        raise ValueError("replay.stages: 'sim' needs 'book' before it (the real book seeds and prices it)")
    engine = dict(s["engine"])
    n_levels = int(engine.pop("initial_levels"))
    sym = f"{ctx.source}:{ctx.symbol}"
    streams = [f"{sym}@depth*", f"{sym}@snapshot"]

    def seed_levels(t_ns: int):
        return levels_at(depth_rows_before(ctx.reader, streams, streams[1], t_ns), ctx.symbol, n_levels)

    venue = None
    if s["mode"] == "backtest":
        queue = dict(s["backtest"]["queue"])
        venue = BacktestVenue(make_queue_model(queue.pop("model"), **queue),
                              ConstantLatency(int(s["backtest"]["latency_ns"])))
    shocks = (Shock(**s["shock"]),) if s["shock"] else ()
    needs = [n for n in ("book", "sentiment", "regimes") if n in cfg.replay.stages]
    return SimStage(engine=engine, agents=s["agents"], seed=ctx.seed, mode=s["mode"], shocks=shocks,
                    needs=needs, levels_at=seed_levels, trade_stream=f"{sym}@trade", venue=venue)
