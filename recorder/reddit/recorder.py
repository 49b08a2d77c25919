"""Live Reddit recorder: new submissions and comments of configured subreddits, raw into the log.

PRAW is synchronous, so the poller runs in one thread and hands events to the event loop's
`Ingest` (`call_soon_threadsafe`). Each round reads the `new` and `comments` listings of every
subreddit (PRAW listing generators, the same calls its `stream` helpers make) and records:
- an item whose fullname was never seen, and
- an item seen before whose text or `edited` stamp changed (an edit: a new event, same id);
score and comment counts change constantly and are not edits. Rounds that find nothing back
off up to `poll_max_s`. Rate limits are waited out (PRAW/prawcore sleep on the ratelimit
headers; a 429 or server error waits `Retry-After` or `rate_limit_wait_s` and retries), never
fatal. Payload = JSON of the PRAW object's data (`vars`, private fields dropped, PRAW objects
such as `author` and `subreddit` as their names); stream `r/<sub lower>/submissions|comments`.
Credentials come only from REDDIT_CLIENT_ID, REDDIT_CLIENT_SECRET, REDDIT_USER_AGENT (and
REDDIT_USERNAME / REDDIT_PASSWORD for a script app) and are never logged or stored.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field

import orjson

from recorder.events import Kind
from recorder.ingest import Connection, Ingest
from recorder.settings import checked_settings

log = logging.getLogger("recorder.reddit")

SOURCE = "reddit"
KINDS = ("submissions", "comments")
ENV_KEYS = ("REDDIT_CLIENT_ID", "REDDIT_CLIENT_SECRET", "REDDIT_USER_AGENT")


@dataclass
class RedditSettings:
    """`record.reddit.*` (credentials are not settings: they come from the environment)."""

    subreddits: list[str] = field(default_factory=lambda: ["CryptoCurrency", "Bitcoin"])
    kinds: list[str] = field(default_factory=lambda: list(KINDS))
    limit: int = 100                 # items per listing request (Reddit's maximum)
    poll_min_s: float = 2.0
    poll_max_s: float = 60.0
    rate_limit_wait_s: float = 60.0  # a 429 without Retry-After waits this long
    seen_max: int = 200_000          # fullnames remembered for dedupe and edit detection
    oauth_url: str | None = None     # PRAW endpoints (tests point them at 127.0.0.1)
    reddit_url: str | None = None
    timeout_s: float = 16.0

    @classmethod
    def from_cfg(cls, cfg: Mapping) -> RedditSettings:
        out = cls(**checked_settings(cls, cfg, "record.reddit"))
        bad = [k for k in out.kinds if k not in KINDS]
        if bad:
            raise ValueError(f"record.reddit.kinds: unknown kind {bad[0]!r} "
                             f"(expected {', '.join(KINDS)})")
        if not out.subreddits:
            raise ValueError("record.reddit.subreddits: empty")
        return out


def credentials_from_env() -> dict:
    """PRAW credentials from the environment; a missing one is a one-line error naming it."""
    missing = [k for k in ENV_KEYS if not os.environ.get(k)]
    if missing:
        raise ValueError(f"record.reddit: set {', '.join(missing)} in the environment "
                         "(credentials are never read from config)")
    creds = {"client_id": os.environ["REDDIT_CLIENT_ID"],
             "client_secret": os.environ["REDDIT_CLIENT_SECRET"],
             "user_agent": os.environ["REDDIT_USER_AGENT"]}
    if os.environ.get("REDDIT_USERNAME") and os.environ.get("REDDIT_PASSWORD"):
        creds.update(username=os.environ["REDDIT_USERNAME"],
                     password=os.environ["REDDIT_PASSWORD"])
    return creds


def payload_of(item) -> bytes:
    """JSON of a PRAW object's data: public attributes, PRAW objects as their names."""
    data = {k: v for k, v in vars(item).items() if not k.startswith("_")}
    return orjson.dumps(data, default=str, option=orjson.OPT_SORT_KEYS)


def _fingerprint(item) -> bytes:
    # vars(), not getattr: a missing attribute makes PRAW fetch the whole object lazily
    d = vars(item)
    parts = [str(d.get(f, "")) for f in ("edited", "title", "selftext", "body")]
    return hashlib.blake2b("\x00".join(parts).encode(), digest_size=16).digest()


class RedditRecorder:
    """Polls PRAW listings in a thread; `run()` until `stop()`."""

    def __init__(self, settings: RedditSettings, ingest: Ingest, reddit=None) -> None:
        self.settings = settings
        self.ingest = ingest
        self._reddit = reddit
        self._stop = threading.Event()
        self._seen: OrderedDict[str, bytes] = OrderedDict()
        self.new_items = 0
        self.edits = 0
        self.rate_limited = 0
        self.api_errors = 0
        self.conn = Connection("praw")

    def _client(self):
        if self._reddit is None:
            import praw

            s = self.settings
            kw = {k: v for k, v in (("oauth_url", s.oauth_url), ("reddit_url", s.reddit_url))
                  if v}
            self._reddit = praw.Reddit(**credentials_from_env(), check_for_updates=False,
                                       timeout=s.timeout_s, **kw)
        return self._reddit

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        reddit = self._client()  # fails fast on missing credentials
        now = time.time_ns()
        endpoint = (self.settings.oauth_url or "https://oauth.reddit.com").encode()
        for sub in self.settings.subreddits:
            for part in sub.split("+"):
                for kind in self.settings.kinds:
                    self.ingest.put(SOURCE, f"r/{part.lower()}/{kind}", now, None, self.conn,
                                    Kind.CONNECT, endpoint)
        try:
            await asyncio.to_thread(self._poll_forever, reddit, loop)
        finally:
            now = time.time_ns()
            for sub in self.settings.subreddits:
                for part in sub.split("+"):
                    for kind in self.settings.kinds:
                        self.ingest.put(SOURCE, f"r/{part.lower()}/{kind}", now, None,
                                        self.conn, Kind.DISCONNECT, b"shutdown")

    async def stop(self) -> None:
        self._stop.set()

    def _poll_forever(self, reddit, loop: asyncio.AbstractEventLoop) -> None:
        import prawcore

        s = self.settings
        wait = s.poll_min_s
        while not self._stop.is_set():
            found = 0
            try:
                for sub in s.subreddits:
                    for kind in s.kinds:
                        found += self._poll(reddit, sub, kind, loop)
                        if self._stop.is_set():
                            return
            except prawcore.exceptions.TooManyRequests as exc:
                self._wait_out(exc, loop)
                continue
            except (prawcore.exceptions.ServerError, prawcore.exceptions.RequestException,
                    prawcore.exceptions.ResponseException) as exc:
                self._wait_out(exc, loop)
                continue
            wait = s.poll_min_s if found else min(s.poll_max_s, wait * 2)
            self._stop.wait(wait)

    def _wait_out(self, exc, loop) -> None:
        resp = getattr(exc, "response", None)
        retry = resp.headers.get("retry-after") if resp is not None else None
        try:
            delay = float(retry) if retry else self.settings.rate_limit_wait_s
        except ValueError:
            delay = self.settings.rate_limit_wait_s
        limited = getattr(resp, "status_code", 0) == 429
        if limited:
            self.rate_limited += 1
        else:
            self.api_errors += 1
        loop.call_soon_threadsafe(_log, "rate_limited" if limited else "api_error",
                                  {"error": type(exc).__name__, "wait_s": delay,
                                   "url": getattr(resp, "url", None)})
        self._stop.wait(delay)

    def _poll(self, reddit, sub: str, kind: str, loop) -> int:
        s = self.settings
        listing = reddit.subreddit(sub)
        items = list(listing.new(limit=s.limit) if kind == "submissions"
                     else listing.comments(limit=s.limit))
        recv = time.time_ns()
        out = []
        for item in reversed(items):  # oldest first
            name = item.fullname
            fp = _fingerprint(item)
            prev = self._seen.get(name)
            if prev == fp:
                continue
            edited = prev is not None
            self._seen[name] = fp
            self._seen.move_to_end(name)
            if len(self._seen) > s.seen_max:
                self._seen.popitem(last=False)
            d = vars(item)
            e = d.get("edited")
            stamp = e if edited and isinstance(e, int | float) and not isinstance(e, bool) \
                else d.get("created_utc")
            ev = int(stamp * 1e9) if isinstance(stamp, int | float) else None
            stream = f"r/{str(d.get('subreddit', sub)).lower()}/{kind}"
            out.append((stream, ev, payload_of(item), edited))
        if out:
            loop.call_soon_threadsafe(self._emit, out, recv)
        return len(out)

    def _emit(self, out: list, recv: int) -> None:
        for stream, ev, payload, edited in out:
            self.ingest.put(SOURCE, stream, recv, ev, self.conn, Kind.MESSAGE, payload)
            self.edits += edited
            self.new_items += not edited


def _log(event: str, fields: dict) -> None:
    log.info(orjson.dumps({"event": event, **fields}).decode())
