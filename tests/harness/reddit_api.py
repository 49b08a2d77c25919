"""A local Reddit API (aiohttp) serving real posts and comments from the committed CSV exports.

Shapes are what PRAW expects: `POST /api/v1/access_token` (client credentials, HTTP basic
auth) returns a bearer token; `GET /r/<sub>/new` and `GET /r/<sub>/comments` return `Listing`
objects of `t3` / `t1` things, newest first. New items "arrive" as the recorder polls: every
listing request releases `per_request` more of that subreddit's items in created order.
Faults: `rate_limit(n)` (next n API calls answer 429 with Retry-After), `edit(fullname, text)`
(the item's text changes and `edited` is stamped). Runs in a background thread.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import gzip
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp import web

TOKEN = "local-test-access-token-7f3a9c"


def _epoch(iso: str, utc_offset_h: float) -> float:
    """The crypto_* exports write local time UTC+1 without an offset (tests/data/README.md)."""
    dt = datetime.fromisoformat(iso).replace(tzinfo=UTC) - timedelta(hours=utc_offset_h)
    return dt.timestamp()


def _rows(path: Path) -> list[dict]:
    with gzip.open(path, "rt", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _bool(v: str) -> bool:
    return v.strip().lower() == "true"


class LocalReddit:
    """`with LocalReddit(posts_csv, comments_csv) as api:` -> `api.url` for oauth/reddit url."""

    def __init__(self, posts: Path, comments: Path, *, per_request: int = 5,
                 utc_offset_h: float = 1.0) -> None:
        self.items: dict[str, dict[str, list[dict]]] = {}   # sub -> kind -> data (created order)
        for r in _rows(posts):
            self._add(r["subreddit"], "t3", {
                "id": r["post_id"], "name": f"t3_{r['post_id']}", "subreddit": r["subreddit"],
                "subreddit_name_prefixed": f"r/{r['subreddit']}", "title": r["title"],
                "author": r["author"], "created_utc": _epoch(r["created_utc"], utc_offset_h),
                "score": int(r["score"] or 0), "upvote_ratio": float(r["upvote_ratio"] or 0),
                "num_comments": int(r["num_comments"] or 0), "url": r["url"],
                "permalink": r["permalink"].replace("https://reddit.com", ""),
                "selftext": r["selftext"], "link_flair_text": r["link_flair_text"] or None,
                "is_self": _bool(r["is_self"]), "distinguished": r["distinguished"] or None,
                "stickied": _bool(r["stickied"]), "edited": False})
        for r in _rows(comments):
            self._add(r["subreddit"], "t1", {
                "id": r["comment_id"], "name": f"t1_{r['comment_id']}",
                "link_id": f"t3_{r['post_id']}", "parent_id": r["parent_id"],
                "subreddit": r["subreddit"], "author": r["author"],
                "created_utc": _epoch(r["created_utc"], utc_offset_h), "body": r["body"],
                "score": int(r["score"] or 0), "is_submitter": _bool(r["is_submitter"]),
                "distinguished": r["distinguished"] or None, "depth": int(r["depth"] or 0),
                "edited": False})
        for kinds in self.items.values():
            for lst in kinds.values():
                lst.sort(key=lambda d: (d["created_utc"], d["name"]))
        self.per_request = per_request
        self.released: dict[tuple[str, str], int] = {}
        self.auth_headers: list[str] = []
        self.requests = 0
        self.rate_limited = 0
        self._rate_limit = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def _add(self, sub: str, kind: str, data: dict) -> None:
        self.items.setdefault(sub.lower(), {"t3": [], "t1": []})[kind].append(data)

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> LocalReddit:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(30)
        return self

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/api/v1/access_token", self._token)
        for path in ("/r/{sub}/new", "/r/{sub}/comments"):
            app.router.add_get(path, self._listing)
            app.router.add_get(path + "/", self._listing)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(30)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self) -> LocalReddit:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- faults ---------------------------------------------------------------------------------
    def rate_limit(self, n: int) -> None:
        def go():
            self._rate_limit += n
        self._loop.call_soon_threadsafe(go)

    def edit(self, fullname: str, text: str, when: float) -> None:
        def go():
            for kinds in self.items.values():
                for lst in kinds.values():
                    for d in lst:
                        if d["name"] == fullname:
                            d["body" if fullname.startswith("t1_") else "selftext"] = text
                            d["edited"] = when
        self._loop.call_soon_threadsafe(go)

    def released_items(self) -> list[dict]:
        out = []
        for (sub, kind), n in self.released.items():
            out += self.items[sub][kind][:n]
        return out

    # -- handlers -------------------------------------------------------------------------------
    async def _token(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        self.auth_headers.append(auth)
        if not auth.startswith("Basic ") or b":" not in base64.b64decode(auth[6:]):
            return web.json_response({"error": 401}, status=401)
        return web.json_response({"access_token": TOKEN, "token_type": "bearer",
                                  "expires_in": 3600, "scope": "*"})

    async def _listing(self, request: web.Request) -> web.Response:
        self.requests += 1
        if request.headers.get("Authorization") != f"bearer {TOKEN}":
            return web.json_response({"error": 401}, status=401)
        if self._rate_limit > 0:
            self._rate_limit -= 1
            self.rate_limited += 1
            return web.json_response({"message": "Too Many Requests", "error": 429},
                                     status=429, headers={"Retry-After": "1"})
        sub = request.match_info["sub"].lower()
        kind = "t3" if request.path.rstrip("/").endswith("/new") else "t1"
        limit = min(int(request.query.get("limit", "25")), 100)
        items = self.items.get(sub, {}).get(kind, [])
        n = self.released.get((sub, kind), 0)
        n = min(len(items), n + self.per_request)
        self.released[(sub, kind)] = n
        page = list(reversed(items[:n]))[:limit]
        return web.json_response({"kind": "Listing", "data": {
            "after": None, "before": None, "dist": len(page),
            "children": [{"kind": kind, "data": d} for d in page]}})
