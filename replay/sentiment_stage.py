"""The sentiment stage: score each Reddit text once, make it visible when a live system could
have had it (receipt + the model's latency), and summarise the crowd per step.

Per step (pooled): text counts and rate, mean score, disagreement (dispersion of scores), mean
epistemic and aleatoric uncertainty, and time-decayed EWMAs of score and uncertainties
(half-life in config). Per subreddit: a long table with the step's count, mean and EWMA. A text
received in one chunk but visible only in the next is carried over, so outputs do not depend
on chunking.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
import pyarrow as pa
from scipy.signal import lfilter

from recorder.normalize.parse import parse_events
from replay.stage import Chunk

SCORE_COLUMNS = ("score", "epistemic", "aleatoric")


def ewma_steps(
    sums: np.ndarray, counts: np.ndarray, decay: float, state: tuple[float, float]
) -> tuple[np.ndarray, tuple[float, float]]:
    """Time-decayed mean: num_k = d*num_{k-1} + sum_k, den_k likewise; NaN until a text."""
    num, zn = lfilter([1.0], [1.0, -decay], sums, zi=[decay * state[0]])
    den, zd = lfilter([1.0], [1.0, -decay], counts, zi=[decay * state[1]])
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    return out, (float(num[-1]) if len(num) else state[0], float(den[-1]) if len(den) else state[1])


def texts_of(posts: pl.DataFrame) -> pl.Series:
    """Title and body of a submission, body of a comment."""
    return posts.select(
        pl.when(pl.col("kind") == "submission")
        .then(pl.concat_str([pl.col("title").fill_null(""), pl.col("body").fill_null("")], separator="\n\n"))
        .otherwise(pl.col("body").fill_null(""))
        .str.strip_chars()
    ).to_series()


class SentimentStage:
    """Scores texts of `streams` (default `reddit:*`) with a `models.sentiment` model."""

    name = "sentiment"
    needs: Sequence[str] = ()

    def __init__(
        self,
        model,
        streams: Sequence[str],
        *,
        T: int,
        seed: int,
        sampled_layers: int,
        latency_ns: int,
        half_life_ns: int,
        step_ns: int,
        cache=None,
        batch_size: int = 64,
        headers: dict | None = None,
    ) -> None:
        self.model = model
        self.streams = tuple(streams)
        self.T, self.seed, self.sampled_layers = T, seed, sampled_layers
        self.latency_ns = latency_ns
        self.decay = 0.5 ** (step_ns / half_life_ns)
        self.step_min = step_ns / 60e9
        self.cache = cache
        self.batch_size = batch_size
        self.headers = headers or {}  # CSV headers of conns whose connect marker precedes the window
        self._pending = pl.DataFrame()
        self._seen: set[tuple[str, str]] = set()
        self._state = {c: (0.0, 0.0) for c in SCORE_COLUMNS}
        self._sub_state: dict[str, tuple[float, float]] = {}
        self._texts: list[pl.DataFrame] = []
        self._by_sub: list[pl.DataFrame] = []

    def _score_new(self, chunk: Chunk) -> pl.DataFrame:
        posts = parse_events(chunk.events, tables=("posts",), headers=self.headers).tables["posts"]
        if posts.height == 0:
            return posts
        posts = posts.with_columns(text=texts_of(posts)).filter(pl.col("text") != "")
        # an edit is a new text; the same (id, text) seen again (overlapping exports) is not
        fresh = np.zeros(posts.height, dtype=bool)
        for i, key in enumerate(zip(posts["id"].to_list(), posts["text"].to_list())):
            fresh[i] = key not in self._seen  # texts arrive at human rates: a set is enough
            self._seen.add(key)
        posts = posts.filter(pl.Series(fresh))
        if posts.height == 0:
            return posts
        scores = self.model.score(
            posts["text"].to_list(),
            T=self.T,
            seed=self.seed,
            sampled_layers=self.sampled_layers,
            cache=self.cache,
            batch_size=self.batch_size,
        )
        return posts.with_columns(
            visible_ns=pl.col("recv_ts_ns") + self.latency_ns,
            **{c: pl.Series(np.asarray(scores[c], dtype=np.float64)) for c in SCORE_COLUMNS},
            label=pl.Series(np.asarray(scores["label"]).astype(str)),
        )

    def process(self, chunk: Chunk) -> dict[str, np.ndarray]:
        new = self._score_new(chunk)
        cols = ["id", "kind", "subreddit", "recv_ts_ns", "visible_ns", *SCORE_COLUMNS, "label"]
        pool = [d.select(cols) for d in (self._pending, new) if d.height]
        texts = pl.concat(pool) if pool else pl.DataFrame()
        n = chunk.n_steps
        end = int(chunk.ends_ns[-1])
        if texts.height:
            self._pending = texts.filter(pl.col("visible_ns") >= end)
            texts = texts.filter(pl.col("visible_ns") < end).sort(
                "visible_ns", "recv_ts_ns", "id", maintain_order=True
            )
        step = (
            np.clip(
                np.searchsorted(chunk.starts_ns, texts["visible_ns"].to_numpy(), side="right") - 1, 0, n - 1
            )
            if texts.height
            else np.zeros(0, dtype=np.int64)
        )
        count = np.bincount(step, minlength=n).astype(np.int64)
        out: dict[str, np.ndarray] = {"n_texts": count}
        kinds = texts["kind"].to_numpy() if texts.height else np.zeros(0, dtype=object)
        out["n_submissions"] = np.bincount(step, weights=(kinds == "submission"), minlength=n).astype(
            np.int64
        )
        out["n_comments"] = count - out["n_submissions"]
        out["text_rate_per_min"] = count / self.step_min
        with np.errstate(invalid="ignore", divide="ignore"):
            for c in SCORE_COLUMNS:
                v = texts[c].to_numpy() if texts.height else np.zeros(0)
                s = np.bincount(step, weights=v, minlength=n)
                out[f"{c}_mean"] = np.where(count > 0, s / np.maximum(count, 1), np.nan)
                out[f"{c}_ewma"], self._state[c] = ewma_steps(
                    s, count.astype(float), self.decay, self._state[c]
                )
            v = texts["score"].to_numpy() if texts.height else np.zeros(0)
            sq = np.bincount(step, weights=v * v, minlength=n)
            var = sq / np.maximum(count, 1) - out["score_mean"] ** 2
            out["disagreement"] = np.where(
                count > 1, np.sqrt(np.maximum(var * count / np.maximum(count - 1, 1), 0)), np.nan
            )
        self._per_subreddit(texts, step, chunk)
        if texts.height:
            self._texts.append(texts.with_columns(step=pl.Series(step + chunk.step0)))
        return out

    def _per_subreddit(self, texts: pl.DataFrame, step: np.ndarray, chunk: Chunk) -> None:
        n = chunk.n_steps
        subs = sorted(set(self._sub_state) | (set(texts["subreddit"].to_list()) if texts.height else set()))
        for sub in subs:
            mask = (texts["subreddit"] == sub).to_numpy() if texts.height else np.zeros(0, dtype=bool)
            cnt = np.bincount(step[mask], minlength=n).astype(float)
            s = (
                np.bincount(
                    step[mask], weights=texts["score"].to_numpy()[mask] if mask.any() else None, minlength=n
                )
                if mask.any()
                else np.zeros(n)
            )
            ewma, self._sub_state[sub] = ewma_steps(s, cnt, self.decay, self._sub_state.get(sub, (0.0, 0.0)))
            rows = np.nonzero(cnt)[0]
            if len(rows):
                self._by_sub.append(
                    pl.DataFrame(
                        {
                            "step": rows + chunk.step0,
                            "subreddit": [sub] * len(rows),
                            "n_texts": cnt[rows].astype(np.int64),
                            "score_mean": s[rows] / cnt[rows],
                            "score_ewma": ewma[rows],
                        }
                    )
                )

    def tables(self) -> dict[str, pa.Table]:
        out = {}
        if self._texts:
            out["texts"] = pl.concat(self._texts).to_arrow()
        if self._by_sub:
            out["by_subreddit"] = pl.concat(self._by_sub).sort("step", "subreddit").to_arrow()
        if self.cache is not None:
            self.cache.flush()
        return out
