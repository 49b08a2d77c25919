"""Entropy decomposition of Monte Carlo class probabilities (pure numpy).

Total predictive entropy H[mean_t p_t] splits into the expected entropy of each sample
(aleatoric: the text itself is ambiguous) and the mutual information between the prediction
and the sampled weights (epistemic: the model is unsure, the dropout samples disagree).
"""

from __future__ import annotations

import numpy as np

_TINY = 1e-12


def _entropy(p: np.ndarray) -> np.ndarray:
    """Shannon entropy in nats along the last axis; 0 log 0 = 0."""
    return -np.sum(np.where(p > 0, p * np.log(np.maximum(p, _TINY)), 0.0), axis=-1)


def decompose(samples: np.ndarray) -> dict[str, np.ndarray]:
    """Mean probabilities and entropy split for MC samples of shape (n_texts, T, n_classes).

    Returns ``mean`` (n, C), ``entropy`` = H[p̄], ``aleatoric`` = mean_t H[p_t] and
    ``epistemic`` = H[p̄] - aleatoric, clipped at 0 (it is >= 0 by Jensen; the clip only
    removes float rounding).
    """
    p = np.asarray(samples, dtype=np.float64)
    if p.ndim != 3:
        raise ValueError(f"samples must have shape (n_texts, T, n_classes), got {p.shape}")
    mean = p.mean(axis=1)
    total = _entropy(mean)
    aleatoric = _entropy(p).mean(axis=1)
    epistemic = np.maximum(total - aleatoric, 0.0)
    return {"mean": mean, "entropy": total, "aleatoric": aleatoric, "epistemic": epistemic}
