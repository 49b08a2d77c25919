"""Our classification head for a plain encoder (used by the shipped MiniLM model).

It reads the first-token vector, like the heads of HF sequence-classification models, so the
MC sampler can evaluate the top encoder layer for that single position only.
"""

from __future__ import annotations

import torch
from torch import nn


class SentimentHead(nn.Module):
    """dropout -> dense -> tanh -> dropout -> linear, on the [CLS] vector."""

    def __init__(self, hidden_size: int, n_classes: int = 3, dropout: float = 0.1) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.out_proj = nn.Linear(hidden_size, n_classes)

    def forward(self, cls: torch.Tensor) -> torch.Tensor:
        x = self.dropout(cls)
        x = torch.tanh(self.dense(x))
        x = self.dropout(x)
        return self.out_proj(x)
