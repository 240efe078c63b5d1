"""The guards around a provider: circuit breaker, concurrency and rate limits, timeout."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import TYPE_CHECKING

import pytest

from adapters.providers.guarded import BreakerState, GuardedProvider, Limits
from domain.policy.vocabulary import Channel
from ports.providers import (
    Availability,
    CircuitOpen,
    DeliveryStatus,
    OutboundMessage,
    ProviderError,
    SendReceipt,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from ports.providers import InboundMessage, Provider, StatusUpdate


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Scripted:
    """A provider that answers what it is told to, and counts its calls."""

    name = "scripted"
    channel = Channel.SMS

    def __init__(self) -> None:
        self.calls = 0
        self.in_flight = 0
        self.most_in_flight = 0
        self.failure: Exception | None = None
        self.delay = 0.0
        self.closed = False

    async def send(self, message: OutboundMessage) -> SendReceipt:
        self.calls += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            if self.failure is not None:
                raise self.failure
            return SendReceipt(self.name, f"id-{self.calls}", DeliveryStatus.QUEUED)
        finally:
            self.in_flight -= 1

    def parse_webhook(
        self, headers: Mapping[str, str], body: bytes, url: str
    ) -> Sequence[StatusUpdate | InboundMessage]:
        return []

    async def close(self) -> None:
        self.closed = True


def message() -> OutboundMessage:
    return OutboundMessage(uuid.uuid4(), uuid.uuid4().hex, Channel.SMS, "+14155550100", body="hi")


OUTAGE = ProviderError("twilio answered HTTP 503", retryable=True, status=503)
BAD_NUMBER = ProviderError("twilio error 21211", retryable=False, status=400)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def inner() -> Scripted:
    return Scripted()


@pytest.fixture
def guarded(inner: Scripted, clock: Clock) -> GuardedProvider:
    return GuardedProvider(
        inner, Limits(failure_threshold=3, reset_seconds=30, timeout_seconds=1), clock=clock
    )


async def fail(guarded: GuardedProvider, times: int) -> None:
    for _ in range(times):
        with pytest.raises(ProviderError):
            await guarded.send(message())


class TestCircuitBreaker:
    async def test_it_is_a_provider_with_the_inner_name_and_channel(
        self, guarded: GuardedProvider, inner: Scripted
    ) -> None:
        provider: Provider = guarded
        assert (provider.name, provider.channel) == ("scripted", Channel.SMS)
        assert (await provider.send(message())).provider_message_id == "id-1"
        assert guarded.breaker_state is BreakerState.CLOSED
        await provider.close()
        assert inner.closed

    async def test_it_opens_after_n_consecutive_retryable_failures(
        self, guarded: GuardedProvider, inner: Scripted
    ) -> None:
        inner.failure = OUTAGE
        await fail(guarded, 2)
        assert guarded.breaker_state is BreakerState.CLOSED
        await fail(guarded, 1)
        assert guarded.breaker_state is BreakerState.OPEN
        assert guarded.stats.opened == 1

    async def test_a_success_between_failures_starts_the_count_again(
        self, guarded: GuardedProvider, inner: Scripted
    ) -> None:
        for _ in range(3):
            inner.failure = OUTAGE
            await fail(guarded, 2)
            inner.failure = None
            await guarded.send(message())
        assert guarded.breaker_state is BreakerState.CLOSED

    async def test_refusals_of_the_message_do_not_count(
        self, guarded: GuardedProvider, inner: Scripted
    ) -> None:
        inner.failure = BAD_NUMBER
        await fail(guarded, 10)
        assert guarded.breaker_state is BreakerState.CLOSED
        assert guarded.stats.refused == 10

    async def test_while_open_it_refuses_at_once_without_calling_the_provider(
        self, guarded: GuardedProvider, inner: Scripted, clock: Clock
    ) -> None:
        inner.failure = OUTAGE
        await fail(guarded, 3)
        inner.failure = None
        clock.advance(10)
        with pytest.raises(CircuitOpen) as raised:
            await guarded.send(message())
        assert raised.value.retryable
        assert raised.value.reason == "circuit open"
        assert raised.value.retry_after == pytest.approx(20)
        assert isinstance(raised.value, ProviderError)
        assert inner.calls == 3
        assert guarded.stats.short_circuited == 1

    async def test_after_reset_seconds_one_trial_goes_through_and_a_success_closes(
        self, guarded: GuardedProvider, inner: Scripted, clock: Clock
    ) -> None:
        inner.failure = OUTAGE
        await fail(guarded, 3)
        inner.failure, inner.delay = None, 0.05
        clock.advance(30)
        assert guarded.breaker_state is BreakerState.HALF_OPEN
        trial = asyncio.create_task(guarded.send(message()))
        await asyncio.sleep(0.01)
        with pytest.raises(CircuitOpen):
            await guarded.send(message())  # the trial is still out
        await trial
        assert guarded.breaker_state is BreakerState.CLOSED
        await guarded.send(message())
        assert inner.calls == 5

    async def test_a_failed_trial_opens_it_again_for_reset_seconds(
        self, guarded: GuardedProvider, inner: Scripted, clock: Clock
    ) -> None:
        inner.failure = OUTAGE
        await fail(guarded, 3)
        clock.advance(31)
        await fail(guarded, 1)
        assert guarded.breaker_state is BreakerState.OPEN
        with pytest.raises(CircuitOpen) as raised:
            await guarded.send(message())
        assert raised.value.retry_after == pytest.approx(30)
        assert inner.calls == 4
        assert guarded.stats.opened == 2

    async def test_a_refused_trial_closes_it_the_provider_answered(
        self, guarded: GuardedProvider, inner: Scripted, clock: Clock
    ) -> None:
        inner.failure = OUTAGE
        await fail(guarded, 3)
        clock.advance(30)
        inner.failure = BAD_NUMBER
        await fail(guarded, 1)
        assert guarded.breaker_state is BreakerState.CLOSED

    async def test_a_cancelled_trial_lets_the_next_call_try(
        self, guarded: GuardedProvider, inner: Scripted, clock: Clock
    ) -> None:
        inner.failure = OUTAGE
        await fail(guarded, 3)
        clock.advance(30)
        inner.failure, inner.delay = None, 10
        trial = asyncio.create_task(guarded.send(message()))
        await asyncio.sleep(0.01)
        trial.cancel()
        with pytest.raises(asyncio.CancelledError):
            await trial
        inner.delay = 0
        await guarded.send(message())
        assert guarded.breaker_state is BreakerState.CLOSED

    async def test_its_availability_says_how_many_sends_it_would_take(
        self, guarded: GuardedProvider, inner: Scripted, clock: Clock
    ) -> None:
        assert guarded.availability() == Availability()  # closed: every send
        inner.failure = OUTAGE
        await fail(guarded, 3)
        clock.advance(10)
        assert guarded.availability() == Availability(0, pytest.approx(20))  # open
        clock.advance(20)
        assert guarded.availability() == Availability(1)  # half-open: the trial
        inner.failure, inner.delay = None, 0.05
        trial = asyncio.create_task(guarded.send(message()))
        await asyncio.sleep(0.01)
        assert guarded.availability() == Availability(0, 1)  # the trial is out: its timeout
        await trial
        assert guarded.availability() == Availability()

    async def test_calls_waiting_for_a_slot_are_refused_if_it_opened_meanwhile(
        self, inner: Scripted, clock: Clock
    ) -> None:
        guarded = GuardedProvider(
            inner, Limits(max_concurrency=1, failure_threshold=1, timeout_seconds=1), clock=clock
        )
        inner.failure, inner.delay = OUTAGE, 0.05
        first = asyncio.create_task(guarded.send(message()))
        second = asyncio.create_task(guarded.send(message()))
        with pytest.raises(ProviderError):
            await first
        with pytest.raises(CircuitOpen):
            await second
        assert inner.calls == 1

    async def test_a_crashing_adapter_is_a_retryable_failure(
        self, guarded: GuardedProvider, inner: Scripted
    ) -> None:
        inner.failure = KeyError("sid")
        with pytest.raises(ProviderError) as raised:
            await guarded.send(message())
        assert raised.value.retryable
        assert raised.value.reason == "scripted failed: KeyError"
        assert isinstance(raised.value.__cause__, KeyError)
        assert guarded.stats.failed == 1


class TestBreakerReports:
    async def test_each_change_of_the_breaker_is_reported_once_as_it_happens(
        self, inner: Scripted, clock: Clock
    ) -> None:
        seen: list[tuple[str, BreakerState]] = []
        guarded = GuardedProvider(
            inner,
            Limits(failure_threshold=2, reset_seconds=30),
            clock=clock,
            on_breaker=lambda name, state: seen.append((name, state)),
        )
        inner.failure = OUTAGE
        await fail(guarded, 2)
        clock.advance(30)
        guarded.availability()  # the dispatcher asks often: the due trial shows without a call
        guarded.availability()
        inner.failure = None
        await guarded.send(message())
        assert [state for _, state in seen] == [
            BreakerState.CLOSED,
            BreakerState.OPEN,
            BreakerState.HALF_OPEN,
            BreakerState.CLOSED,
        ]
        assert {name for name, _ in seen} == {"scripted"}


class TestLimits:
    async def test_a_call_that_takes_too_long_is_a_retryable_timeout(
        self, inner: Scripted, clock: Clock
    ) -> None:
        guarded = GuardedProvider(
            inner, Limits(timeout_seconds=0.05, failure_threshold=2), clock=clock
        )
        inner.delay = 5
        started = time.perf_counter()
        with pytest.raises(ProviderError) as raised:
            await guarded.send(message())
        assert time.perf_counter() - started < 1
        assert raised.value.retryable
        assert raised.value.reason == "scripted timed out after 0.05s"
        assert not isinstance(raised.value, CircuitOpen)
        await fail(guarded, 1)
        assert guarded.breaker_state is BreakerState.OPEN
        assert guarded.stats.timed_out == 2

    async def test_no_more_than_max_concurrency_calls_at_once(
        self, inner: Scripted, clock: Clock
    ) -> None:
        guarded = GuardedProvider(inner, Limits(max_concurrency=3), clock=clock)
        inner.delay = 0.02
        sends = [asyncio.create_task(guarded.send(message())) for _ in range(12)]
        await asyncio.sleep(0.005)
        assert (guarded.stats.in_flight, guarded.stats.waiting) == (3, 9)
        await asyncio.gather(*sends)
        assert inner.most_in_flight == 3
        assert guarded.stats.accepted == 12

    async def test_the_timeout_does_not_count_the_wait_for_a_slot(
        self, inner: Scripted, clock: Clock
    ) -> None:
        guarded = GuardedProvider(
            inner, Limits(max_concurrency=1, timeout_seconds=0.1), clock=clock
        )
        inner.delay = 0.06
        await asyncio.gather(*(guarded.send(message()) for _ in range(3)))
        assert guarded.stats.accepted == 3

    async def test_no_more_than_rate_per_second(self, inner: Scripted, clock: Clock) -> None:
        guarded = GuardedProvider(inner, Limits(rate_per_second=20), clock=clock)
        started = time.perf_counter()
        await asyncio.gather(*(guarded.send(message()) for _ in range(30)))
        elapsed = time.perf_counter() - started
        assert elapsed >= 0.4  # a full bucket of 20 at once, then 10 more at 20 a second
        assert inner.calls == 30

    async def test_a_rate_below_one_a_second_lets_one_call_at_a_time(
        self, inner: Scripted, clock: Clock
    ) -> None:
        guarded = GuardedProvider(inner, Limits(rate_per_second=0.5), clock=clock)
        await guarded.send(message())
        second = asyncio.create_task(guarded.send(message()))
        await asyncio.sleep(0.1)
        assert not second.done()
        second.cancel()
        with pytest.raises(asyncio.CancelledError):
            await second
        assert inner.calls == 1

    @pytest.mark.parametrize(
        "limits",
        [
            {"timeout_seconds": 0},
            {"max_concurrency": 0},
            {"failure_threshold": 0},
            {"reset_seconds": -1},
            {"rate_per_second": 0},
        ],
    )
    def test_limits_that_make_no_sense_are_refused(self, limits: dict[str, float]) -> None:
        with pytest.raises(ValueError, match="must be"):
            Limits(**limits)  # type: ignore[arg-type]
