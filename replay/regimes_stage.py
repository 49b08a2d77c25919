"""The regimes stage: per-step features from the book, tape and sentiment stages, filtered
causally by `models.regimes.RegimeModel` (refits use past steps only)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pyarrow as pa

from models.regimes import RegimeConfig, RegimeModel
from replay.stage import Chunk

# feature -> (stage it comes from, how it is computed from that stage's step outputs)
FEATURE_STAGE = {
    "sentiment": "sentiment",
    "sentiment_unc": "sentiment",
    "post_rate": "sentiment",
    "realized_var": "tape",
    "abs_return": "tape",
    "hl_range": "tape",
    "spread": "book",
    "depth": "book",
    "abs_imbalance": "book",
    "ofi": "book",
}


def usable_config(values: Mapping, stages: Sequence[str]) -> RegimeConfig:
    """The configured blocks, keeping only series whose stage runs (and blocks left non-empty)."""
    values = dict(values)
    unknown = [s for b in values.get("blocks", {}).values() for s in b if s not in FEATURE_STAGE]
    if unknown:
        raise ValueError(
            f"models.regimes.blocks: unknown feature {unknown[0]!r} "
            f"(known: {', '.join(sorted(FEATURE_STAGE))})"
        )
    blocks = {
        b: [s for s in series if FEATURE_STAGE[s] in stages] for b, series in values.get("blocks", {}).items()
    }
    blocks = {b: s for b, s in blocks.items() if s and values.get("anchors", {}).get(b) in s}
    if not blocks:
        raise ValueError(
            f"models.regimes: no factor block has its anchor series among the stages {list(stages)}"
        )
    values["blocks"] = blocks
    values["anchors"] = {b: a for b, a in values.get("anchors", {}).items() if b in blocks}
    return RegimeConfig.from_dict(values)


class RegimesStage:
    """Factor values, their standard deviations and low/normal/high labels per step."""

    name = "regimes"
    streams: Sequence[str] = ()

    def __init__(self, config: RegimeConfig) -> None:
        self.model = RegimeModel(config)
        self.needs = tuple(sorted({FEATURE_STAGE[s] for s in self.model.series}))
        self._last_logp = np.nan

    def features(self, up: Mapping[str, Mapping[str, np.ndarray]], n: int) -> np.ndarray:
        cols = {}
        if "tape" in up:
            t = up["tape"]
            logp = np.log(t["last_price"])
            prev = np.concatenate(([self._last_logp], logp[:-1]))
            self._last_logp = logp[-1] if n else self._last_logp
            cols["realized_var"] = t["realized_var"]
            cols["abs_return"] = np.abs(logp - prev)
            with np.errstate(invalid="ignore", divide="ignore"):
                cols["hl_range"] = (t["high"] - t["low"]) / t["vwap"]
        if "book" in up:
            b = up["book"]
            valid = b["valid"].astype(bool)
            cols["spread"] = np.where(valid, b["spread"], np.nan)
            cols["depth"] = np.where(valid, b["bid_depth"] + b["ask_depth"], np.nan)
            cols["abs_imbalance"] = np.where(valid, np.abs(b["imbalance"]), np.nan)
            cols["ofi"] = np.where(valid, b["ofi"], np.nan)
        if "sentiment" in up:
            s = up["sentiment"]
            cols["sentiment"] = s["score_ewma"]
            cols["sentiment_unc"] = s["epistemic_ewma"]
            cols["post_rate"] = s["text_rate_per_min"]
        return np.column_stack([np.asarray(cols[name], dtype=np.float64) for name in self.model.series])

    def process(self, chunk: Chunk) -> dict[str, np.ndarray]:
        x = self.features(chunk.upstream, chunk.n_steps)
        return self.model.run(x, self.model.series)

    def tables(self) -> dict[str, pa.Table]:
        fits = self.model.fits
        return {
            "fits": pa.table(
                {
                    "step": [f.step for f in fits],
                    "ok": [f.ok for f in fits],
                    "em_iterations": [f.em_iterations for f in fits],
                    "message": [f.message for f in fits],
                }
            )
        }
