"""SentimentModel on tiny randomly initialised HF models saved to tmp_path.

The fixtures exercise the real ``from_pretrained(local_dir)`` path in well under a second.
"""

import numpy as np
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import torch
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    BertTokenizer,
    DistilBertConfig,
    DistilBertForSequenceClassification,
    RobertaConfig,
    RobertaForSequenceClassification,
)

from models.sentiment import LexiconModel, ScoreCache, SentimentModel
from models.sentiment.mc_dropout import plain_probabilities
from models.sentiment.model import NAIVE
from models.sentiment.scoring import score_file

WORDS = ["bitcoin", "eth", "up", "down", "crash", "moon", "market", "is", "the", "buy", "sell",
         "hold", "good", "bad", "price", "fed", "rates", "pump", "dump", "today"]
ID2LABEL = {0: "positive", 1: "negative", 2: "neutral"}  # deliberately not canonical order
TEXTS = ["bitcoin is up today", "the market crash", "eth moon", "sell the pump",
         "fed rates up", "hold", "bitcoin price is good today the market is up"]


def _save(tmp_path, name, model_cls, config_cls, **cfg):
    directory = tmp_path / name
    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS])}
    torch.manual_seed(0)
    config = config_cls(vocab_size=len(vocab), max_position_embeddings=64,
                        id2label=ID2LABEL, label2id={v: k for k, v in ID2LABEL.items()}, **cfg)
    model_cls(config).save_pretrained(directory)
    BertTokenizer(vocab=vocab).save_pretrained(directory)
    return directory


def _bert(tmp_path, name="bert", p=0.1):
    return _save(tmp_path, name, BertForSequenceClassification, BertConfig, hidden_size=32,
                 num_hidden_layers=3, num_attention_heads=4, intermediate_size=64,
                 hidden_dropout_prob=p, attention_probs_dropout_prob=p)


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    return _bert(tmp_path_factory.mktemp("tiny"))


def _plain(model, texts):
    """Dropout-off probabilities from the HF model's own forward, canonical order."""
    bb = model.backbone
    bb.root.eval()
    with torch.no_grad():
        out = [torch.softmax(bb.full_forward(torch.tensor([ids]), None), -1)[0].numpy()
               for ids in model.token_ids(texts)]
    return np.stack(out)[:, model.label_index]


def test_hf_directory_loads_with_labels_from_id2label(bert_dir):
    model = SentimentModel.load(bert_dir)
    assert model.fast_path and model.n_layers == 3
    np.testing.assert_array_equal(model.label_index, [1, 2, 0])  # neg, neu, pos outputs
    cols = model.score(TEXTS, T=4, seed=1)
    assert set(cols) == {"p_neg", "p_neu", "p_pos", "score", "label", "entropy", "aleatoric",
                         "epistemic"}
    probs = np.stack([cols["p_neg"], cols["p_neu"], cols["p_pos"]], axis=1)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    np.testing.assert_allclose(cols["score"], cols["p_pos"] - cols["p_neg"])
    assert np.all(cols["epistemic"] >= 0)


@pytest.mark.parametrize("arch", ["bert", "roberta"])
def test_split_path_equals_model_forward_without_dropout(tmp_path, arch):
    if arch == "bert":
        directory = _bert(tmp_path, p=0.0)
    else:
        directory = _save(tmp_path, "roberta", RobertaForSequenceClassification, RobertaConfig,
                          hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                          intermediate_size=64, hidden_dropout_prob=0.0,
                          attention_probs_dropout_prob=0.0, pad_token_id=0)
    model = SentimentModel.load(directory)
    assert model.fast_path
    ref = _plain(model, TEXTS)
    for k in range(model.n_layers + 1):
        s = model.samples(TEXTS, T=3, seed=0, sampled_layers=k)
        np.testing.assert_allclose(s, np.repeat(ref[:, None], 3, axis=1), atol=1e-5)
    naive = model.samples(TEXTS, T=2, seed=0, naive=True)
    np.testing.assert_allclose(naive[:, 0], ref, atol=1e-6)
    padded = plain_probabilities(model.backbone, model.token_ids(TEXTS), pad_id=0, batch_size=3)
    np.testing.assert_allclose(padded[:, model.label_index], ref, atol=1e-5)


def test_same_seed_identical_and_batch_composition_irrelevant(bert_dir):
    model = SentimentModel.load(bert_dir)
    a = model.score(TEXTS, T=8, seed=3)
    b = model.score(TEXTS, T=8, seed=3)
    for c in a:
        np.testing.assert_array_equal(a[c], b[c])
    other = ["pump", TEXTS[4], "dump dump", TEXTS[0], "the fed"]
    c = model.score(other, T=8, seed=3, batch_size=2)
    for col in ("p_neg", "p_pos", "epistemic"):
        assert c[col][1] == a[col][4] and c[col][3] == a[col][0]
    d = model.score(TEXTS, T=8, seed=4)
    assert not np.array_equal(a["p_pos"], d["p_pos"])


def test_duplicates_scored_once_and_returned_in_input_order(bert_dir, monkeypatch):
    model = SentimentModel.load(bert_dir)
    seen = []
    original = model._score_unique

    def spy(texts, *args):
        seen.extend(texts)
        return original(texts, *args)

    monkeypatch.setattr(model, "_score_unique", spy)
    texts = [TEXTS[0], TEXTS[1], TEXTS[0], TEXTS[2], TEXTS[1]]
    cols = model.score(texts, T=4, seed=0)
    assert seen == [TEXTS[0], TEXTS[1], TEXTS[2]]
    assert cols["p_pos"][0] == cols["p_pos"][2] and cols["p_pos"][1] == cols["p_pos"][4]
    assert cols["p_pos"][0] != cols["p_pos"][1]


def test_fast_all_layers_matches_naive_in_distribution(tmp_path):
    model = SentimentModel.load(_bert(tmp_path, p=0.3))
    text = [TEXTS[6]]
    t = 3000
    fast = model.samples(text, T=t, seed=0, sampled_layers=model.n_layers)[0]
    naive = model.samples(text, T=t, seed=1, naive=True)[0]
    se = np.sqrt((fast.var(axis=0) + naive.var(axis=0)) / t)
    assert np.all(np.abs(fast.mean(axis=0) - naive.mean(axis=0)) < 4 * se + 1e-9)
    np.testing.assert_allclose(fast.std(axis=0), naive.std(axis=0), rtol=0.1)
    head_only = model.samples(text, T=t, seed=0, sampled_layers=0)[0]
    assert np.all(head_only.std(axis=0) < fast.std(axis=0))  # fewer sampled layers, less spread


def test_cache_reuses_scores_across_runs(bert_dir, tmp_path, monkeypatch):
    model = SentimentModel.load(bert_dir)
    calls = []
    original = model._score_unique

    def spy(texts, *args):
        calls.append(len(texts))
        return original(texts, *args)

    monkeypatch.setattr(model, "_score_unique", spy)
    path = tmp_path / "cache.parquet"
    first = model.score(TEXTS[:4], T=5, seed=2, cache=ScoreCache(path))
    assert calls == [4]
    again = model.score(TEXTS[:5], T=5, seed=2, cache=ScoreCache(path))
    assert calls == [4, 1]
    model.score(TEXTS[:5], T=5, seed=2, cache=ScoreCache(path))
    assert calls == [4, 1]
    for c in first:
        np.testing.assert_array_equal(first[c], again[c][:4])
    model.score(TEXTS[:2], T=6, seed=2, cache=ScoreCache(path))  # another T is another key
    model.score(TEXTS[:2], T=5, seed=2, sampled_layers=2, cache=ScoreCache(path))
    assert calls == [4, 1, 2, 2]
    table = pq.read_table(path)
    assert table.num_rows == 9 and set(table.column("T").to_pylist()) == {5, 6}


def test_architecture_without_split_uses_naive_path(tmp_path):
    directory = _save(tmp_path, "distil", DistilBertForSequenceClassification, DistilBertConfig,
                      dim=32, n_layers=2, n_heads=4, hidden_dim=64, dropout=0.2,
                      attention_dropout=0.2, seq_classif_dropout=0.2)
    model = SentimentModel.load(directory)
    assert not model.fast_path
    assert model.effective_sampled_layers(1) == NAIVE
    a = model.score(TEXTS[:3], T=6, seed=0)
    b = model.score(TEXTS[2::-1], T=6, seed=0)
    np.testing.assert_array_equal(a["p_pos"], b["p_pos"][::-1])
    assert np.all(a["epistemic"] > 0)


def test_bad_settings_are_named(bert_dir, tmp_path):
    model = SentimentModel.load(bert_dir)
    with pytest.raises(ValueError, match="sampled_layers"):
        model.score(TEXTS, sampled_layers=4)
    with pytest.raises(ValueError, match="T \\(MC samples\\)"):
        model.score(TEXTS, T=0)
    with pytest.raises(ValueError, match="not a directory"):
        SentimentModel.load(tmp_path / "missing")
    directory = _save(tmp_path, "joy", BertForSequenceClassification, BertConfig, hidden_size=32,
                      num_hidden_layers=1, num_attention_heads=4, intermediate_size=64)
    (directory / "config.json").write_text(
        (directory / "config.json").read_text().replace('"positive"', '"joy"')
    )
    with pytest.raises(ValueError, match="'joy'"):
        SentimentModel.load(directory)


def test_score_file_lines_and_labelled_csv(bert_dir, tmp_path):
    lines = tmp_path / "texts.txt"
    lines.write_text("\n".join(TEXTS[:3]) + "\n\n")
    summary = score_file(lines, tmp_path / "out.parquet", model=bert_dir, T=4)
    out = pq.read_table(tmp_path / "out.parquet")
    assert summary["count"] == 3 and out.column("text").to_pylist() == TEXTS[:3]
    assert abs(sum(summary["label_distribution"].values()) - 1) < 1e-12
    assert summary["mean_score"] == pytest.approx(np.mean(out.column("score").to_numpy()))

    labelled = tmp_path / "labelled.csv"
    labelled.write_text("body,y\n" + "\n".join(f"{t},{i % 3}" for i, t in enumerate(TEXTS)))
    summary = score_file(labelled, tmp_path / "out.csv", model=bert_dir, text_column="body",
                         label_column="y", label_map={"0": "bearish", "1": "bullish",
                                                      "2": "neutral"}, T=4)
    out = pacsv.read_csv(tmp_path / "out.csv").to_pydict()
    truth = np.array(out["label_true"])
    assert list(truth[:3]) == ["neg", "pos", "neu"]
    assert summary["accuracy"] == pytest.approx(np.mean(truth == np.array(out["label"])))
    assert 0 <= summary["ece"] <= 1 and 0 <= summary["macro_f1"] <= 1
    with pytest.raises(ValueError, match="no column 'missing'"):
        score_file(labelled, tmp_path / "o.csv", model=bert_dir, text_column="missing")
    with pytest.raises(ValueError, match=".parquet or .csv"):
        score_file(labelled, tmp_path / "o.json", model=bert_dir, text_column="body")


def test_lexicon_baseline_same_columns_nan_uncertainty(tmp_path):
    model = SentimentModel.load("lexicon")
    assert isinstance(model, LexiconModel)
    cols = model.score(["Bitcoin is great, huge gains!", "terrible crash, I lost everything",
                        "the meeting is on tuesday"])
    assert list(cols["label"]) == ["pos", "neg", "neu"]
    assert np.all(np.isnan(cols["epistemic"])) and np.all(np.isnan(cols["entropy"]))
    # what the regimes stage asks before loading anything agrees with the loaded model
    assert not SentimentModel.spec_measures_uncertainty("lexicon") and not model.measures_uncertainty
    assert SentimentModel.spec_measures_uncertainty("default")
    labelled = tmp_path / "l.csv"
    labelled.write_text("text,label\ngreat gains,positive\nawful loss,negative\n")
    summary = score_file(labelled, tmp_path / "o.parquet", model="lexicon", label_column="label")
    assert summary["accuracy"] == 1.0 and summary["ece"] is None
