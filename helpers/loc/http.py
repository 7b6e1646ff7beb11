"""Polite HTTP for loc.gov: sliding-window rate limits, retries with capped backoff, Retry-After.

loc.gov blocks a client for five minutes to an hour when it exceeds its published limits
(https://www.loc.gov/apis/json-and-yaml/working-within-limits/), so every request, retries included,
first waits for its turn in each window it belongs to. The retry loop is written here rather than left
to urllib3's `Retry` because each attempt must pass through those windows and the injectable clock,
and because a truncated body or a page that is not JSON only shows once the body is read.
"""

from __future__ import annotations

import email.utils
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import requests

from .. import HelpersError, __version__

USER_AGENT = (f"old-photo-repair/{__version__} (research on restoring old photographs; "
              f"fetches a few public-domain images with rate limits; python-requests/{requests.__version__})")


class LocStopped(HelpersError):
    """loc.gov said to stop (a long Retry-After, or errors that outlived every retry); rerun later to resume."""


class LocRequestError(HelpersError):
    """One request failed for good (a 404, a body that is not what was asked for); the run goes on."""


class Clock:
    """Real time. Tests pass an object with the same two methods to run the limits in simulated time."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@dataclass
class Window:
    """At most `count` requests in any `seconds`-long window (a sliding log of send times)."""

    count: int
    seconds: float
    sent: deque = field(default_factory=deque)

    def wait_time(self, now: float) -> float:
        while self.sent and now - self.sent[0] >= self.seconds:
            self.sent.popleft()
        return 0.0 if len(self.sent) < self.count else self.sent[0] + self.seconds - now


# LoC's published limits: every request counts toward the burst window, collection pages also toward
# the crawl window, item pages toward the item endpoint's own (stricter) burst window.
DEFAULT_LIMITS = {"any": (20, 10.0), "collection": (80, 60.0), "item": (10, 10.0)}


class RateLimiter:
    """Holds each request until every window of its kind (and the 'any' window) has room."""

    def __init__(self, limits: dict[str, tuple[int, float]] | None = None, clock: Clock | None = None):
        self.clock = clock or Clock()
        self.windows = {kind: Window(count, seconds) for kind, (count, seconds) in (limits or DEFAULT_LIMITS).items()}

    def acquire(self, kind: str) -> None:
        windows = [w for name, w in self.windows.items() if name in ("any", kind)]
        while True:
            delay = max((w.wait_time(self.clock.now()) for w in windows), default=0.0)
            if delay <= 0:
                break
            self.clock.sleep(delay)
        now = self.clock.now()
        for window in windows:
            window.sent.append(now)


@dataclass
class RetryPolicy:
    """How hard to try: attempts per request, exponential backoff with a cap, the longest Retry-After obeyed."""

    attempts: int = 5
    backoff: float = 1.0  # seconds before the first retry, doubled each time
    backoff_cap: float = 60.0
    max_retry_after: float = 300.0  # a longer wait means loc.gov has blocked us: stop rather than hang
    timeout: tuple[float, float] = (10.0, 60.0)  # connect, read

    def delay(self, attempt: int) -> float:
        return min(self.backoff * 2 ** attempt, self.backoff_cap)


def retry_after_seconds(value: str | None, now_epoch: float | None = None) -> float | None:
    """The Retry-After header as seconds: either a number or an HTTP date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    if value.replace(".", "", 1).isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now_epoch is None else now_epoch))


class PoliteSession:
    """GET with the rate limiter, retries and body checks; `log` keeps (time, kind, url) of every attempt."""

    def __init__(self, limiter: RateLimiter | None = None, policy: RetryPolicy | None = None,
                 user_agent: str = USER_AGENT, on_wait: Callable[[str], None] | None = None):
        self.limiter = limiter or RateLimiter()
        self.policy = policy or RetryPolicy()
        self.session = requests.Session()
        self.session.headers["User-Agent"] = user_agent
        self.on_wait = on_wait or (lambda message: None)
        self.log: list[tuple[float, str, str]] = []

    @property
    def clock(self) -> Clock:
        return self.limiter.clock

    def get(self, url: str, kind: str, *, check: Callable[[requests.Response], object], params: dict | None = None):
        """What `check` makes of the response (parsed JSON, image bytes). `check` raises ValueError for a
        body that may be better next time (truncated, undecodable), retried like a dropped connection, and
        LocRequestError for one that will not (a wrong content type). After the last attempt a bad body
        fails this request (LocRequestError) while a server that keeps failing stops the run (LocStopped)."""
        problem, delay, bad_body = "", 0.0, False
        for attempt in range(self.policy.attempts):
            if attempt:
                self._pause(delay, f"{problem}; retry {attempt} of {self.policy.attempts - 1} in {delay:.1f} s")
            self.limiter.acquire(kind)
            self.log.append((self.clock.now(), kind, url))
            delay, bad_body = self.policy.delay(attempt), False
            try:
                response = self.session.get(url, params=params, timeout=self.policy.timeout)
            except requests.Timeout:
                problem = f"{url}: timed out"
                continue
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as err:
                problem = f"{url}: connection dropped or body cut short ({type(err).__name__})"
                continue
            if response.status_code == 429:
                problem, delay = self._too_many_requests(url, response, delay)
                continue
            if response.status_code >= 500:
                problem = f"{url}: HTTP {response.status_code}"
                continue
            if response.status_code != 200:
                raise LocRequestError(f"{url}: HTTP {response.status_code}")
            try:
                return check(response)
            except ValueError as err:
                problem, bad_body = f"{url}: {err}", True
        message = f"{problem} (gave up after {self.policy.attempts} attempts)"
        raise LocRequestError(message) if bad_body else LocStopped(message)

    def _too_many_requests(self, url: str, response: requests.Response, backoff: float) -> tuple[str, float]:
        """(problem, seconds to wait): Retry-After when given, else the backoff; a long one stops the run."""
        wait = retry_after_seconds(response.headers.get("Retry-After"))
        if wait is None:
            return f"{url}: HTTP 429", backoff
        if wait > self.policy.max_retry_after:
            raise LocStopped(f"loc.gov rate limit: {url} answered 429 and asks to wait {wait:.0f} s; stopping now. "
                             "Everything fetched so far is kept; rerun later to resume.")
        return f"{url}: HTTP 429 with Retry-After {wait:g} s", wait

    def _pause(self, seconds: float, message: str) -> None:
        self.on_wait(message)
        self.clock.sleep(seconds)
