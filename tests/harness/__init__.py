"""Test support: local Binance exchange, local Reddit API, a tansu Kafka broker (127.0.0.1)."""
