"""A transformer classifier seen as embeddings -> layer stack -> first-token head.

The MC sampler needs to run the lower layers once and only the top ones T times, which the
HF ``forward`` cannot do. This adapter exposes the pieces for BERT-layout encoders (BERT,
RoBERTa, XLM-R, ELECTRA, MiniLM: ``base.embeddings`` + ``base.encoder.layer``) and keeps the
model's own forward as the reference; other architectures run the naive T-pass path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

Logits = Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]


@dataclass
class Backbone:
    """Pieces of one classifier; ``layers`` is empty when only the naive path is possible."""

    root: nn.Module
    full_forward: Logits  # (ids, attention_mask or None) -> logits, the model's own forward
    embeddings: nn.Module | None = None
    layers: list[nn.Module] = field(default_factory=list)
    head: Callable[[torch.Tensor], torch.Tensor] | None = None
    head_modules: list[nn.Module] = field(default_factory=list)

    @property
    def splittable(self) -> bool:
        return self.head is not None and bool(self.layers)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.embeddings(input_ids=ids)

    def layer(self, i: int, h: torch.Tensor) -> torch.Tensor:
        out = self.layers[i](h)
        return out[0] if isinstance(out, tuple) else out

    def top_layer_cls(self, h: torch.Tensor, n_samples: int) -> torch.Tensor:
        """Last layer evaluated for the first position only -> (n_samples, H).

        Every head reads position 0, so the other positions of the last layer are never used:
        keys and values are computed from ``h`` (shape (1, L, H) when shared by all samples,
        else (n_samples, L, H)), then attention, output and feed-forward run on one row per
        sample, with each dropout drawn per sample.
        """
        layer = self.layers[-1]
        att = layer.attention.self
        n_heads, d = att.num_attention_heads, att.attention_head_size
        b, length, hidden = h.shape
        q = att.query(h[:, :1]).view(b, 1, n_heads, d).transpose(1, 2)
        k = att.key(h).view(b, length, n_heads, d).transpose(1, 2)
        v = att.value(h).view(b, length, n_heads, d).transpose(1, 2)
        scaling = getattr(att, "scaling", d**-0.5)
        w = torch.softmax(torch.matmul(q, k.transpose(2, 3)) * scaling, dim=-1)
        w = att.dropout(w.expand(n_samples, -1, -1, -1))
        ctx = torch.matmul(w, v).transpose(1, 2).reshape(n_samples, 1, hidden)
        a = layer.attention.output(ctx, h[:, :1].expand(n_samples, -1, -1))
        return layer.output(layer.intermediate(a), a)[:, 0]


def _bert_layout(base: nn.Module) -> bool:
    """True when ``base`` has the BERT module layout the split path relies on."""
    config = getattr(base, "config", None)
    try:
        layer = base.encoder.layer[-1]
        att = layer.attention.self
        parts = (base.embeddings, att.query, att.key, att.value, att.dropout,
                 layer.attention.output, layer.intermediate, layer.output)
    except AttributeError:
        return False
    absolute = getattr(config, "position_embedding_type", "absolute") in (None, "absolute")
    encoder_only = not getattr(config, "is_decoder", False)
    return all(p is not None for p in parts) and absolute and encoder_only


def hf_classifier_backbone(model: nn.Module) -> Backbone:
    """Adapter for an HF ``*ForSequenceClassification`` model."""

    def full_forward(ids: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return model(input_ids=ids, attention_mask=mask).logits

    bb = Backbone(root=model, full_forward=full_forward)
    base = model.base_model
    if not _bert_layout(base):
        return bb
    classifier = getattr(model, "classifier", None)
    pooler = getattr(base, "pooler", None)
    if classifier is not None and hasattr(classifier, "out_proj"):
        # RoBERTa / ELECTRA style: the classifier takes features and reads features[:, 0].
        bb.head = lambda cls: classifier(cls[:, None, :])
        bb.head_modules = [classifier]
    elif isinstance(classifier, nn.Linear) and pooler is not None and hasattr(model, "dropout"):
        dropout = model.dropout
        bb.head = lambda cls: classifier(dropout(pooler(cls[:, None, :])))
        bb.head_modules = [pooler, dropout, classifier]
    else:
        return bb
    bb.embeddings = base.embeddings
    bb.layers = list(base.encoder.layer)
    return bb


def encoder_head_backbone(encoder: nn.Module, head: nn.Module) -> Backbone:
    """Adapter for a plain encoder (AutoModel) plus our :class:`SentimentHead`."""
    if not _bert_layout(encoder):
        raise ValueError(
            f"encoder {type(encoder).__name__} lacks the BERT layout (embeddings, encoder.layer) "
            "that our head needs"
        )

    def full_forward(ids: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return head(encoder(input_ids=ids, attention_mask=mask).last_hidden_state[:, 0])

    root = nn.ModuleDict({"encoder": encoder, "head": head})
    return Backbone(
        root=root,
        full_forward=full_forward,
        embeddings=encoder.embeddings,
        layers=list(encoder.encoder.layer),
        head=head,
        head_modules=[head],
    )
