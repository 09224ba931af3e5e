"""Who may call the music routes, and how often.

API keys are optional (off for the local demo, on in the compose file via `GATEWAY_API_KEYS`):
a key comes as `Authorization: Bearer <key>` or `X-API-Key`, and is compared with every
configured key in constant time. No or an unknown key is 401, a revoked one 403. Each key (or
each client address when keys are off) gets two token buckets: one of `rate_limit_per_minute`
for the requests that make work (POST, DELETE), and one of `read_rate_limit_per_minute` for
reads (GET, HEAD: polling one's own jobs, listing models), so a client following a job never
spends the budget it composes with. An empty bucket is 429 with `Retry-After`. All of it runs
before the body is read, so a refused request uploads nothing.

Buckets are kept in the order they were last used. One untouched for a minute has refilled, so
it is the same as none and is dropped; and there are never more than `max_buckets` (the least
recently used goes first), so memory stays bounded however many addresses call.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.requests import Request

from gateway import metrics
from weavewave_common.errors import ApiError, TooManyRequests


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"


class Forbidden(ApiError):
    status, code = 403, "forbidden"


def _matches(candidate: str, keys: list[str]) -> bool:
    found = False
    for key in keys:  # no early exit: the time taken does not depend on which key matched
        found |= hmac.compare_digest(candidate.encode(), key.encode())
    return found


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass(eq=False)  # FastAPI keys its dependency cache by the callable: it must hash
class AccessControl:
    api_keys: list[str]
    revoked_keys: list[str]
    per_minute: int
    read_per_minute: int = 600
    max_buckets: int = 100_000
    clock: Callable[[], float] = time.monotonic
    _buckets: OrderedDict[str, _Bucket] = field(default_factory=OrderedDict)

    @property
    def tracked(self) -> int:
        """How many callers have a bucket now."""
        return len(self._buckets)

    def caller(self, request: Request) -> str:
        """The key (or client address when keys are off) the request is counted under."""
        if not self.api_keys:
            return request.client.host if request.client else "anonymous"
        key = request.headers.get("x-api-key") or ""
        authorization = request.headers.get("authorization", "")
        if not key and authorization.lower().startswith("bearer "):
            key = authorization[7:].strip()
        if key and _matches(key, self.revoked_keys):
            raise Forbidden("This API key has been revoked.")
        if not key or not _matches(key, self.api_keys):
            raise Unauthorized("Send a valid API key (Authorization: Bearer <key>).")
        return key

    def take(self, caller: str, reads: bool = False) -> None:
        """Spend one request from the caller's bucket (its reads' own with `reads`), or 429
        with the wait in Retry-After."""
        now = self.clock()
        per_minute = self.read_per_minute if reads else self.per_minute
        rate = per_minute / 60.0
        self._prune(now)
        name = f"read:{caller}" if reads else caller
        bucket = self._buckets.setdefault(name, _Bucket(float(per_minute), now))
        self._buckets.move_to_end(name)
        bucket.tokens = min(per_minute, bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if bucket.tokens < 1:
            metrics.RATE_LIMITED.labels("read" if reads else "work").inc()
            wait = math.ceil((1 - bucket.tokens) / rate)
            raise TooManyRequests("Rate limit reached; retry later.", retry_after_s=wait)
        bucket.tokens -= 1

    def _prune(self, now: float) -> None:
        while self._buckets:
            oldest = next(iter(self._buckets.values()))
            if now - oldest.updated < 60.0 and len(self._buckets) < self.max_buckets:
                return
            self._buckets.popitem(last=False)

    async def __call__(self, request: Request) -> None:
        """FastAPI dependency for the music routes; the caller's key fingerprint is left in
        the scope (`client_of`) for the routes that keep what a key made to that key."""
        caller = self.caller(request)
        self.take(caller, reads=request.method in READS)
        request.scope[CLIENT_SCOPE_KEY] = fingerprint(caller) if self.api_keys else None


READS = frozenset({"GET", "HEAD"})
"""Methods counted against the read budget."""

CLIENT_SCOPE_KEY = "weavewave.client"


def fingerprint(key: str) -> str:
    """A key's stable name to store (never the key itself)."""
    return hashlib.sha256(key.encode()).hexdigest()[:24]


def client_of(request: Request) -> str | None:
    """The fingerprint of the request's API key; None when keys are off (all is shared)."""
    client: str | None = request.scope.get(CLIENT_SCOPE_KEY)
    return client
