"""Per-caller rate limits: one GCRA bucket per caller and route class, in this process.

The algorithm is pyrate-limiter's GCRA (`StateBucket`): a bucket is one number, the moment it
would next be empty, so a caller costs a few bytes and a check is a few arithmetic operations
with no lock held across an await: a caller over its limit is refused at once and never makes
another wait (ADR 0015). One limiter serves a process's HTTP requests and NATS messages, so a
key's bucket is one budget whichever way it comes (ADR 0022).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from pyrate_limiter import GCRA, AbstractClock, Duration, Rate, RateItem, StateBucket

from entrypoints.metrics import RATE_LIMITED

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from uuid import UUID

__all__ = ["Limit", "RateLimited", "RateLimiter", "RouteClass", "key_caller", "over_limit"]


class RouteClass(StrEnum):
    """What a request does, which sets the limit it counts against."""

    INGEST = "ingest"
    SEND = "send"
    READ = "read"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Limit:
    """`per_minute` requests sustained, `burst` of them at once from a full bucket."""

    per_minute: int
    burst: int

    def __post_init__(self) -> None:
        if self.per_minute < 1 or self.burst < 1:
            raise ValueError(f"a limit needs at least 1 a minute and a burst of 1, not {self}")


class _Seconds(AbstractClock):
    """pyrate-limiter's clock, in milliseconds, read from ours."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock

    def now(self) -> int:
        return int(self._clock() * 1000)


class RateLimiter:
    """Decides, for one caller and route class, whether a request may pass now.

    `clock` is monotonic seconds (never the domain clock: a manual clock that stands still
    would never refill a bucket). Buckets that have refilled are forgotten once there are
    more than `keep_at_most`, as a full bucket and a new one admit the same.
    """

    def __init__(
        self,
        limits: Mapping[RouteClass, Limit],
        *,
        clock: Callable[[], float] = time.monotonic,
        keep_at_most: int = 10_000,
    ) -> None:
        self.limits = dict(limits)
        self._clock = _Seconds(clock)
        self._buckets: dict[tuple[RouteClass, str], StateBucket] = {}
        self._sweep_at = keep_at_most
        self._keep_at_most = keep_at_most

    def wait(self, route_class: RouteClass, caller: str) -> float:
        """0 if the request passes (and spends one unit of the caller's bucket), else the
        seconds until it would; a refused request spends nothing."""
        limit = self.limits.get(route_class)
        if limit is None:
            return 0.0
        bucket = self._buckets.get((route_class, caller))
        if bucket is None:
            bucket = self._bucket(route_class, caller, limit)
        item = RateItem(caller, self._clock.now())
        if bucket.put(item) is True:
            return 0.0
        waiting = bucket.waiting(item)
        milliseconds = waiting if isinstance(waiting, int) and waiting > 0 else 1
        return milliseconds / 1000

    @staticmethod
    def retry_after(wait: float) -> int:
        """A wait as a `Retry-After` header says it: whole seconds, at least 1."""
        return max(1, math.ceil(wait))

    def _bucket(self, route_class: RouteClass, caller: str, limit: Limit) -> StateBucket:
        if len(self._buckets) >= self._sweep_at:
            self._forget_refilled()
        rate = Rate(limit.per_minute, Duration.MINUTE, burst=limit.burst)
        bucket = StateBucket([rate], algorithm=GCRA(), clock=self._clock)
        self._buckets[route_class, caller] = bucket
        return bucket

    def _forget_refilled(self) -> None:
        self._buckets = {
            name: bucket for name, bucket in self._buckets.items() if bucket.count() != 0
        }
        # Callers still draining stay; the next sweep waits until as many again are new.
        self._sweep_at = len(self._buckets) + self._keep_at_most

    def __len__(self) -> int:
        """How many buckets are kept now."""
        return len(self._buckets)


class RateLimited(Exception):
    """A caller over its limit for a route class."""

    def __init__(self, route_class: RouteClass, limit: Limit, retry_after: int) -> None:
        super().__init__(
            f"this caller may make {limit.per_minute} {route_class.value} requests a minute,"
            f" {limit.burst} at once; try again in {retry_after} s"
        )
        self.route_class = route_class
        self.retry_after = retry_after


def key_caller(key_id: UUID) -> str:
    """The caller an API key's requests and messages count as, over HTTP and NATS alike."""
    return f"key:{key_id}"


def over_limit(limiter: RateLimiter, route_class: RouteClass, caller: str) -> RateLimited | None:
    """None if the caller may go on now (and has spent one unit); else why not, counted in
    `chorus_rate_limited_total` by route class."""
    wait = limiter.wait(route_class, caller)
    if wait <= 0:
        return None
    RATE_LIMITED.labels(route_class.value).inc()
    return RateLimited(route_class, limiter.limits[route_class], limiter.retry_after(wait))
