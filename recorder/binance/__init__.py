"""Live Binance recorder (combined streams + REST snapshots)."""
