"""Recorder settings from Hydra nodes: unknown keys are errors naming the key."""

from __future__ import annotations

from collections.abc import Mapping


def plain(v):
    """OmegaConf containers to plain lists and dicts."""
    if hasattr(v, "items"):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple) or type(v).__name__ == "ListConfig":
        return [plain(x) for x in v]
    return v


def checked_settings(cls, cfg: Mapping, prefix: str) -> dict:
    """Keyword arguments for dataclass `cls` from `cfg` (its `enabled` switch aside)."""
    d = {k: v for k, v in dict(cfg).items() if k != "enabled"}
    known = set(cls.__dataclass_fields__)
    for k in d:
        if k not in known:
            names = ", ".join(sorted(known | {"enabled"}))
            raise ValueError(f"{prefix}.{k}: unknown setting (known: {names})")
    return {k: plain(v) for k, v in d.items()}
