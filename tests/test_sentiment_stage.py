"""The sentiment stage: visibility at receipt + latency, exact EWMAs, each text scored once."""

from __future__ import annotations

import numpy as np
import orjson
import pyarrow as pa

from recorder.events import events_table
from replay.sentiment_stage import SentimentStage, ewma_steps
from replay.stage import Chunk

S = 1_000_000_000


class FixedModel:
    """Scores by a table keyed on the text: the stage's arithmetic is what is under test."""

    def __init__(self, scores: dict[str, float]):
        self.scores = scores
        self.calls: list[str] = []

    def score(self, texts, **_):
        self.calls += list(texts)
        s = np.array([self.scores[t] for t in texts])
        return {
            "score": s,
            "epistemic": np.abs(s) / 10,
            "aleatoric": np.full(len(s), 0.5),
            "label": np.where(s > 0, "pos", "neg"),
        }


def comments(rows):
    """Reddit jsonl comment events: (recv_s, id, body)."""
    payloads = [
        orjson.dumps({"id": i, "body": b, "subreddit": "Bitcoin", "created_utc": t, "parent_id": "t3_x"})
        for t, i, b in rows
    ]
    return events_table(
        source=["reddit"] * len(rows),
        stream=["r/bitcoin/comments"] * len(rows),
        recv_ts_ns=[int(t * S) for t, _, _ in rows],
        event_ts_ns=[int(t * S) for t, _, _ in rows],
        payload=payloads,
    )


def chunk(events: pa.Table, step0: int, n: int) -> Chunk:
    starts = (np.arange(step0, step0 + n) * S).astype(np.int64)
    t = events["recv_ts_ns"].to_numpy()
    offsets = np.searchsorted(t, np.append(starts, starts[-1] + S)).astype(np.int64)
    return Chunk(step0, starts, S, events.slice(offsets[0], offsets[-1] - offsets[0]), offsets - offsets[0])


def stage(model, latency_s=0.0):
    return SentimentStage(
        model,
        ["reddit:*"],
        T=1,
        seed=0,
        sampled_layers=1,
        latency_ns=int(latency_s * S),
        half_life_ns=2 * S,
        step_ns=S,
    )


def test_latency_carries_a_text_into_the_next_chunk():
    ev = comments([(1.2, "a", "up"), (2.7, "b", "down")])
    st = stage(FixedModel({"up": 0.8, "down": -0.4}), latency_s=0.5)
    first = st.process(chunk(ev, 0, 3))  # steps [0,3): "b" is received at 2.7, visible at 3.2
    second = st.process(chunk(ev, 3, 2))  # steps [3,5)
    assert first["n_texts"].tolist() == [0, 1, 0]
    assert second["n_texts"].tolist() == [1, 0]
    assert second["score_mean"][0] == -0.4


def test_ewma_is_the_time_decayed_mean():
    d = 0.5 ** (1 / 2)  # step 1 s, half-life 2 s
    out, state = ewma_steps(np.array([1.0, 0.0, 3.0]), np.array([1.0, 0.0, 1.0]), d, (0.0, 0.0))
    assert np.isclose(out[0], 1.0)
    assert np.isclose(out[1], 1.0)  # no new text: the mean keeps, its weight decays
    assert np.isclose(out[2], (1.0 * d * d + 3.0) / (d * d + 1.0))
    again, _ = ewma_steps(np.array([0.0]), np.array([0.0]), d, state)
    assert np.isclose(again[0], out[2])


def test_each_text_is_scored_once_and_edits_count_again():
    ev = comments([(0.1, "a", "up"), (0.2, "a", "up"), (0.3, "a", "up edited")])
    model = FixedModel({"up": 0.8, "up edited": 0.2})
    out = stage(model).process(chunk(ev, 0, 1))
    assert model.calls == ["up", "up edited"]
    assert out["n_texts"].tolist() == [2]
    assert np.isclose(out["disagreement"][0], np.std([0.8, 0.2], ddof=1))
