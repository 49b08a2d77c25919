"""Live Reddit recorder against the local Reddit API: dedupe, edits, rate limits, secrets."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import polars as pl
from harness.reddit_api import TOKEN, LocalReddit
from harness.runs import REDDIT_COMMENTS, REDDIT_POSTS, read_all, run_daemon_with, wait_for
from omegaconf import OmegaConf

REPO = Path(__file__).resolve().parent.parent
SUBS = ["bitcoin", "cryptocurrency"]


def _cfg(root: Path, api: LocalReddit, status: Path) -> dict:
    return {"log": {"root": str(root)},
            "record": {"backend": "parquet", "status_file": str(status), "status_interval_s": 0.2,
                       "reddit": {"enabled": True, "subreddits": SUBS, "poll_min_s": 0.05,
                                  "poll_max_s": 0.2, "rate_limit_wait_s": 0.3,
                                  "oauth_url": api.url, "reddit_url": api.url}}}


def test_reddit_records_each_item_once_edits_again_and_waits_out_rate_limits(tmp_path,
                                                                             monkeypatch):
    monkeypatch.setenv("REDDIT_CLIENT_ID", "test-client")
    monkeypatch.setenv("REDDIT_CLIENT_SECRET", "test-secret")
    monkeypatch.setenv("REDDIT_USER_AGENT", "smabm-tests/0.1")
    root = tmp_path / "log"
    with LocalReddit(REDDIT_POSTS, REDDIT_COMMENTS, per_request=15) as api:
        total = sum(len(v) for sub in SUBS for v in api.items[sub].values())
        edited = {}

        async def script(d):
            rec = d.recorders["reddit"]
            await wait_for(lambda: rec.new_items >= 60, 30)
            api.rate_limit(3)
            await wait_for(lambda: rec.rate_limited >= 3, 30)
            newest = api.items["bitcoin"]["t1"][api.released[("bitcoin", "t1")] - 1]
            edited["name"] = newest["name"]
            api.edit(newest["name"], "edited: " + newest["body"], 1761900000.0)
            await wait_for(lambda: rec.edits >= 1 and rec.new_items >= total, 60)
            await asyncio.sleep(0.3)

        rc, d = run_daemon_with(_cfg(root, api, tmp_path / "status.json"), script)
    assert rc == 0 and d.ingest.dropped == 0
    df = pl.from_arrow(read_all(root)).filter(pl.col("kind") == "message")
    names = [orjson.loads(p)["name"] for p in df["payload"]]
    df = df.with_columns(name=pl.Series(names))
    counts = df.group_by("name").len()
    assert counts.height == total                              # every real item recorded ...
    twice = counts.filter(pl.col("len") > 1)["name"].to_list()
    assert twice == [edited["name"]]                           # ... once, the edited one twice
    versions = df.filter(pl.col("name") == edited["name"]).sort("seq")
    last = orjson.loads(versions["payload"][-1])
    assert last["body"].startswith("edited: ") and last["edited"] == 1761900000.0
    assert versions["event_ts_ns"][-1] == 1761900000 * 10**9
    assert set(df["stream"].unique()) == {f"r/{s}/{k}" for s in SUBS
                                          for k in ("submissions", "comments")}
    st = orjson.loads((tmp_path / "status.json").read_bytes())
    assert st["reddit"]["rate_limited"] == 3 and st["stopped"]


def test_credentials_never_reach_logs_status_or_log_store(tmp_path):
    secrets = {"REDDIT_CLIENT_ID": "cid-4f9e2b7d1c", "REDDIT_CLIENT_SECRET": "csec-8a1d5e0b3f",
               "KAFKA_SASL_PASSWORD": "kpass-7c2e9d4a6b"}
    env = {**os.environ, **secrets, "REDDIT_USER_AGENT": "smabm-tests/0.1",
           "KAFKA_SASL_USERNAME": "kuser"}
    root, status = tmp_path / "log", tmp_path / "status.json"
    with LocalReddit(REDDIT_POSTS, REDDIT_COMMENTS, per_request=40) as api:
        cfg = _cfg(root, api, status)
        cfg["record"]["log_level"] = "DEBUG"   # even the most verbose logs hold no secret
        OmegaConf.save(OmegaConf.create(cfg), tmp_path / "record.yaml")
        proc = subprocess.Popen([sys.executable, "-m", "recorder.daemon",
                                 str(tmp_path / "record.yaml")], cwd=REPO, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        end = time.monotonic() + 60
        while not (status.exists() and orjson.loads(status.read_bytes())["written"] > 200):
            assert proc.poll() is None and time.monotonic() < end
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        auth = list(api.auth_headers)
    assert proc.returncode == 0
    # the credentials were really used (HTTP basic auth on the token endpoint) ...
    expected = base64.b64encode(b"cid-4f9e2b7d1c:csec-8a1d5e0b3f").decode()
    assert f"Basic {expected}" in auth
    # ... and appear nowhere the recorder writes, nor does the access token
    stored = [p for p in [*root.rglob("*"), status] if p.is_file()]
    assert any(p.suffix == ".parquet" for p in stored)
    blobs = [out, err] + [p.read_bytes() for p in stored]
    for needle in [*secrets.values(), TOKEN, expected]:
        for blob in blobs:
            assert needle.encode() not in blob, needle
