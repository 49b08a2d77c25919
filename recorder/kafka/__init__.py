"""Kafka transport: producer backend, faust archiver into Parquet, live tail."""

from recorder.kafka.tail import tail

__all__ = ["tail"]
