"""Compose the Hydra config for a subcommand (Hydra's compose API, no app decorator).

Unknown keys are errors because the composed config is struct: `log.roott=x` fails with a
message naming the key, instead of silently doing nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


class ConfigError(ValueError):
    """A bad override or setting; the message names it."""


def load_config(overrides: Sequence[str] = ()) -> DictConfig:
    """Resolve `conf/config.yaml` with `overrides`; raise ConfigError with a one-line reason."""
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(config_name="config", overrides=list(overrides))
        OmegaConf.resolve(cfg)
    except (HydraException, OmegaConfBaseException) as exc:
        first = str(exc).strip().splitlines()[0]
        raise ConfigError(f"config: {first}") from None
    OmegaConf.set_struct(cfg, True)
    return cfg


def writer_kwargs(cfg: DictConfig) -> dict:
    """LogWriter keyword arguments from the `log` group."""
    log = cfg.log
    return {
        "fsync": log.fsync,
        "fsync_interval_s": float(log.fsync_interval_s),
        "segment_max_bytes": int(float(log.segment_max_mb) * (1 << 20)),
        "segment_max_rows": int(log.segment_max_rows),
        "segment_max_age_s": None if log.segment_max_age_s is None else float(log.segment_max_age_s),
    }
