"""Kafka connection settings: broker address and TLS/SASL from config, secrets only from env.

`record.kafka.security_protocol` (PLAINTEXT | SSL | SASL_PLAINTEXT | SASL_SSL),
`sasl_mechanism` (PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512) and `ssl_cafile` come from config;
the SASL user name and password only from `KAFKA_SASL_USERNAME` / `KAFKA_SASL_PASSWORD`, so a
config file, a status report or a log line can never hold them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def client_kwargs(cfg: Mapping | None) -> dict:
    """aiokafka client keyword arguments for `record.kafka` (security part)."""
    cfg = dict(cfg or {})
    proto = str(cfg.get("security_protocol") or "PLAINTEXT").upper()
    if proto not in PROTOCOLS:
        raise ValueError(f"record.kafka.security_protocol={proto!r}: expected one of "
                         f"{', '.join(PROTOCOLS)}")
    out: dict = {"security_protocol": proto}
    if proto in ("SSL", "SASL_SSL"):
        from aiokafka.helpers import create_ssl_context

        out["ssl_context"] = create_ssl_context(cafile=cfg.get("ssl_cafile") or None)
    if proto.startswith("SASL"):
        mech = str(cfg.get("sasl_mechanism") or "PLAIN").upper()
        if mech not in MECHANISMS:
            raise ValueError(f"record.kafka.sasl_mechanism={mech!r}: expected one of "
                             f"{', '.join(MECHANISMS)}")
        user, password = os.environ.get("KAFKA_SASL_USERNAME"), os.environ.get("KAFKA_SASL_PASSWORD")
        if not user or not password:
            raise ValueError(f"record.kafka.security_protocol={proto}: set KAFKA_SASL_USERNAME "
                             "and KAFKA_SASL_PASSWORD in the environment")
        out.update(sasl_mechanism=mech, sasl_plain_username=user, sasl_plain_password=password)
    return out


def topic_for(source: str, prefix: str = "raw.") -> str:
    """One topic per source (stream family): `binance.spot` -> `raw.binance.spot`."""
    return f"{prefix}{source}"
