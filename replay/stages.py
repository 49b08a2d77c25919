"""Built-in stage factories, registered under the names `replay.stages` lists."""

from __future__ import annotations

from omegaconf import DictConfig

from replay.pipeline import RunContext, register
from replay.tape import TapeStage


@register("tape")
def tape(cfg: DictConfig, ctx: RunContext) -> TapeStage:
    return TapeStage([f"{ctx.source}:{ctx.symbol}@trade"], time=str(cfg.replay.time))
