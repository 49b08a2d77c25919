"""Monte Carlo dropout sampling with shared lower layers.

Layers below the sampled ones are deterministic, so they run once per text (eval mode) and
only the top ``sampled_layers`` (+ head) are repeated T times with dropout on. Texts are
bucketed by exact token length, so there is no padding and a text's lower pass does not
depend on its batch mates; each text's T samples run under its own torch seed (derived from
its hash), so its result does not depend on batch order or composition either.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from .backbone import Backbone


@contextmanager
def _dropout_on(modules: Sequence[nn.Module]) -> Iterator[None]:
    """``.train()`` on the sampled modules (turns on nn.Dropout and attention dropout alike)."""
    for m in modules:
        m.train()
    try:
        yield
    finally:
        for m in modules:
            m.eval()


def length_buckets(token_ids: Sequence[Sequence[int]], batch_size: int) -> list[np.ndarray]:
    """Index batches of texts sharing one exact token length, in a fixed order."""
    lengths = np.array([len(t) for t in token_ids])
    batches = []
    for length in np.unique(lengths):
        idx = np.flatnonzero(lengths == length)
        batches.extend(idx[i : i + batch_size] for i in range(0, len(idx), batch_size))
    return batches


def _sampled_modules(bb: Backbone, sampled_layers: int) -> list[nn.Module]:
    n = len(bb.layers)
    mods = list(bb.layers[n - sampled_layers :]) + list(bb.head_modules)
    if sampled_layers == n:
        mods.append(bb.embeddings)
    return mods


def mc_samples(
    bb: Backbone,
    token_ids: Sequence[Sequence[int]],
    seeds: Sequence[int],
    n_samples: int,
    sampled_layers: int,
    batch_size: int = 64,
) -> np.ndarray:
    """Class probabilities (n_texts, T, C) in the model's own label order (fast path)."""
    n_layers = len(bb.layers)
    if not bb.splittable:
        raise ValueError("this model has no layer split; use naive_samples")
    if not 0 <= sampled_layers <= n_layers:
        raise ValueError(f"sampled_layers must be in 0..{n_layers}, got {sampled_layers}")
    n_shared = n_layers - sampled_layers
    out: list[np.ndarray | None] = [None] * len(token_ids)
    bb.root.eval()
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        for batch in length_buckets(token_ids, batch_size):
            ids = torch.tensor([token_ids[i] for i in batch], dtype=torch.long)
            shared = None
            if sampled_layers < n_layers:
                shared = bb.embed(ids)
                for i in range(n_shared):
                    shared = bb.layer(i, shared)
            with _dropout_on(_sampled_modules(bb, sampled_layers)):
                for row, text_i in enumerate(batch):
                    torch.manual_seed(seeds[text_i])
                    if shared is None:
                        h = bb.embed(ids[row : row + 1].expand(n_samples, -1))
                    else:
                        h = shared[row : row + 1]
                    for i in range(n_shared, n_layers - 1):
                        h = bb.layer(i, h.expand(n_samples, -1, -1))
                    if sampled_layers >= 1:
                        cls = bb.top_layer_cls(h, n_samples)
                    else:
                        cls = h[:, 0].expand(n_samples, -1)
                    out[text_i] = torch.softmax(bb.head(cls), dim=-1).double().numpy()
    return np.stack(out) if out else np.zeros((0, n_samples, 0))


def naive_samples(
    bb: Backbone, token_ids: Sequence[Sequence[int]], seeds: Sequence[int], n_samples: int
) -> np.ndarray:
    """Reference path: T full forward passes of the whole model with every dropout on."""
    out = []
    bb.root.eval()
    with torch.no_grad(), torch.random.fork_rng(devices=[]), _dropout_on([bb.root]):
        for ids, seed in zip(token_ids, seeds, strict=True):
            torch.manual_seed(seed)
            batch = torch.tensor([list(ids)], dtype=torch.long).expand(n_samples, -1)
            out.append(torch.softmax(bb.full_forward(batch, None), dim=-1).double().numpy())
    return np.stack(out) if out else np.zeros((0, n_samples, 0))


def plain_probabilities(
    bb: Backbone, token_ids: Sequence[Sequence[int]], pad_id: int, batch_size: int = 64
) -> np.ndarray:
    """One deterministic eval pass (dropout off) with the model's own forward, padded batches.

    This is what a user would run without MC dropout; the benchmark compares against it.
    """
    order = np.argsort([len(t) for t in token_ids], kind="stable")
    out = np.zeros((len(token_ids), 0))
    chunks = []
    bb.root.eval()
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            width = max(len(token_ids[i]) for i in idx)
            ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for r, i in enumerate(idx):
                ids[r, : len(token_ids[i])] = torch.tensor(token_ids[i])
                mask[r, : len(token_ids[i])] = 1
            chunks.append((idx, torch.softmax(bb.full_forward(ids, mask), -1).double().numpy()))
    if chunks:
        out = np.zeros((len(token_ids), chunks[0][1].shape[1]))
        for idx, p in chunks:
            out[idx] = p
    return out
