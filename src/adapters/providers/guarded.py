"""A provider behind a circuit breaker, a concurrency limit, a rate limit and a timeout.

The breaker counts consecutive retryable failures (timeouts included). After
`failure_threshold` of them it opens: every send is refused at once with `CircuitOpen`, whose
`retry_after` says when the next trial is due, and the provider is not called. Once
`reset_seconds` have passed it is half-open: one trial call goes through, and the others are
still refused until it ends; a success closes the breaker, a retryable failure opens it again.
A non-retryable refusal (a bad number, a bad template) is an answer from a healthy provider:
it resets the count like a success.

Calls beyond `max_concurrency`, or beyond `rate_per_second`, wait for their turn; the timeout
counts only from the moment the provider is called.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from aiolimiter import AsyncLimiter

from ports.providers import Availability, CircuitOpen, ProviderError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping, Sequence

    from domain.policy.vocabulary import Channel
    from ports.providers import (
        InboundMessage,
        OutboundMessage,
        Provider,
        SendReceipt,
        StatusUpdate,
    )

__all__ = ["BreakerState", "GuardStats", "GuardedProvider", "Limits"]


class BreakerState(StrEnum):
    """Whether the breaker lets calls through: all, none, or one trial."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class Limits:
    """How much one provider is asked at a time, and how much failure it is allowed."""

    timeout_seconds: float = 10.0
    max_concurrency: int = 16
    rate_per_second: float | None = None
    failure_threshold: int = 5
    reset_seconds: float = 30.0

    def __post_init__(self) -> None:
        if self.timeout_seconds <= 0 or self.reset_seconds <= 0:
            raise ValueError("timeout_seconds and reset_seconds must be positive")
        if self.max_concurrency < 1 or self.failure_threshold < 1:
            raise ValueError("max_concurrency and failure_threshold must be at least 1")
        if self.rate_per_second is not None and self.rate_per_second <= 0:
            raise ValueError("rate_per_second must be positive")


@dataclass(frozen=True, slots=True)
class GuardStats:
    """Counters since start, for metrics: every send ends in exactly one of the first five."""

    accepted: int
    refused: int  # non-retryable answers: the provider is fine, the message is not
    failed: int  # retryable failures, timeouts included
    timed_out: int
    short_circuited: int  # refused by the open breaker, the provider not called
    opened: int  # how many times the breaker opened
    in_flight: int
    waiting: int  # for a concurrency slot or the rate limit
    breaker: BreakerState


def _limiter(rate_per_second: float | None) -> AsyncLimiter | None:
    if rate_per_second is None:
        return None
    if rate_per_second >= 1:
        return AsyncLimiter(rate_per_second, 1.0)
    return AsyncLimiter(1, 1.0 / rate_per_second)  # a bucket holds at least one call


class GuardedProvider:
    """Wraps any provider and is one itself; `clock` (seconds, monotonic) drives the breaker."""

    def __init__(
        self,
        provider: Provider,
        limits: Limits | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_close: Callable[[], Awaitable[None]] | None = None,
        on_breaker: Callable[[str, BreakerState], None] | None = None,
    ) -> None:
        """`on_breaker(name, state)` hears each change of the breaker (for a gauge), the first
        state at once; an open breaker whose trial is due is reported half-open when the
        dispatcher next asks for `availability`, or at the trial."""
        self._provider = provider
        self.limits = limits or Limits()
        self._clock = clock
        self._on_close = on_close
        self._slots = asyncio.Semaphore(self.limits.max_concurrency)
        self._rate = _limiter(self.limits.rate_per_second)
        self._state = BreakerState.CLOSED
        self._consecutive_failures = 0
        self._opened_at = 0.0
        self._trial_in_flight = False
        self._accepted = self._refused = self._failed = self._timed_out = 0
        self._short_circuited = self._opened = self._in_flight = self._waiting = 0
        self._on_breaker = on_breaker
        self._reported: BreakerState | None = None
        self._report()

    def __repr__(self) -> str:
        return f"GuardedProvider({self._provider!r})"

    @property
    def inner(self) -> Provider:
        """The provider this one guards."""
        return self._provider

    @property
    def name(self) -> str:
        """The guarded provider's name."""
        return self._provider.name

    @property
    def channel(self) -> Channel:
        """The guarded provider's channel."""
        return self._provider.channel

    @property
    def breaker_state(self) -> BreakerState:
        """As the next call would find it: an open breaker past its reset time is half-open."""
        if self._state is BreakerState.OPEN and self._retry_in() <= 0:
            return BreakerState.HALF_OPEN
        return self._state

    def availability(self) -> Availability:
        """Every send while closed; none while open (until the trial is due) or while the trial
        is out (at most `timeout_seconds`); one, the trial, once half-open."""
        state = self._report()
        if state is BreakerState.CLOSED:
            return Availability()
        if state is BreakerState.OPEN:
            return Availability(0, max(self._retry_in(), 0.0))
        if self._state is BreakerState.HALF_OPEN and self._trial_in_flight:
            return Availability(0, self.limits.timeout_seconds)
        return Availability(1)

    @property
    def stats(self) -> GuardStats:
        """A snapshot of the counters."""
        return GuardStats(
            accepted=self._accepted,
            refused=self._refused,
            failed=self._failed,
            timed_out=self._timed_out,
            short_circuited=self._short_circuited,
            opened=self._opened,
            in_flight=self._in_flight,
            waiting=self._waiting,
            breaker=self.breaker_state,
        )

    async def send(self, message: OutboundMessage) -> SendReceipt:
        """Sends through the guards; raises ProviderError, CircuitOpen when the breaker is open."""
        trial = self._admit()
        try:
            self._waiting += 1
            try:
                await self._slots.acquire()
            finally:
                self._waiting -= 1
            try:
                if self._rate is not None:
                    self._waiting += 1
                    try:
                        await self._rate.acquire()
                    finally:
                        self._waiting -= 1
                if not trial and self._state is not BreakerState.CLOSED:
                    raise self._short_circuit()  # it opened while this call waited its turn
                return await self._call(message, trial)
            finally:
                self._slots.release()
        finally:
            if trial and self._state is BreakerState.HALF_OPEN:
                self._trial_in_flight = False  # the trial never finished: the next call is one

    async def _call(self, message: OutboundMessage, trial: bool) -> SendReceipt:
        self._in_flight += 1
        try:
            async with asyncio.timeout(self.limits.timeout_seconds):
                receipt = await self._provider.send(message)
        except TimeoutError:
            self._timed_out += 1
            self._failure(trial)
            raise ProviderError(
                f"{self.name} timed out after {self.limits.timeout_seconds:g}s", retryable=True
            ) from None
        except ProviderError as error:
            if error.retryable:
                self._failure(trial)
            else:
                self._refused += 1
                self._answered(trial)
            raise
        except Exception as error:
            # an adapter's bug must not stop the dispatcher: the message is tried again later
            self._failure(trial)
            raise ProviderError(
                f"{self.name} failed: {type(error).__name__}", retryable=True
            ) from error
        finally:
            self._in_flight -= 1
        self._accepted += 1
        self._answered(trial)
        return receipt

    def parse_webhook(
        self, headers: Mapping[str, str], body: bytes, url: str
    ) -> Sequence[StatusUpdate | InboundMessage]:
        """The guarded provider's webhook parser: webhooks pass no guard."""
        return self._provider.parse_webhook(headers, body, url)

    async def close(self) -> None:
        """Closes the guarded provider, then whatever it was built with."""
        try:
            await self._provider.close()
        finally:
            if self._on_close is not None:
                await self._on_close()

    # the breaker

    def _retry_in(self) -> float:
        return self._opened_at + self.limits.reset_seconds - self._clock()

    def _report(self) -> BreakerState:
        state = self.breaker_state
        if state is not self._reported:
            self._reported = state
            if self._on_breaker is not None:
                self._on_breaker(self.name, state)
        return state

    def _short_circuit(self) -> CircuitOpen:
        self._short_circuited += 1
        wait = self._retry_in() if self._state is BreakerState.OPEN else None
        return CircuitOpen(self.name, retry_after=max(wait, 0.0) if wait is not None else None)

    def _admit(self) -> bool:
        """Lets a call through or raises CircuitOpen; True when the call is the half-open trial."""
        if self._state is BreakerState.CLOSED:
            return False
        if self._state is BreakerState.OPEN:
            if self._retry_in() > 0:
                raise self._short_circuit()
            self._state = BreakerState.HALF_OPEN
            self._trial_in_flight = False
            self._report()
        if self._trial_in_flight:
            raise self._short_circuit()
        self._trial_in_flight = True
        return True

    def _open(self) -> None:
        self._state = BreakerState.OPEN
        self._opened_at = self._clock()
        self._trial_in_flight = False
        self._opened += 1
        self._report()

    def _failure(self, trial: bool) -> None:
        self._failed += 1
        if trial:
            self._open()
        elif self._state is BreakerState.CLOSED:
            self._consecutive_failures += 1
            if self._consecutive_failures >= self.limits.failure_threshold:
                self._open()

    def _answered(self, trial: bool) -> None:
        """The provider answered: a trial closes the breaker; a late answer while open does not."""
        if trial:
            self._state = BreakerState.CLOSED
            self._trial_in_flight = False
            self._report()
        if self._state is BreakerState.CLOSED:
            self._consecutive_failures = 0
