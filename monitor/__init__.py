"""Monitoring: metrics of replays and recorders into PostgreSQL, and a live Dash dashboard.

It sits above `replay`, `recorder` and `calibrate` (like the CLI): it may import them, nothing
in the pipeline imports it. The pipeline hands it data through small callbacks
(`monitor.hooks`), so a missing or slow database never reaches the replay or the recorder.
"""
