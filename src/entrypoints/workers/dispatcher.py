"""Dispatch workers: one lane per channel, so a hanging provider never slows another channel."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from typing import TYPE_CHECKING

import structlog
from opentelemetry import trace

from adapters.system.trace_context import context_from
from entrypoints.metrics import (
    DISPATCH_ATTEMPTS,
    DISPATCH_ROUNDS,
    PROVIDER_SECONDS,
)
from entrypoints.tracing import CORRELATION_ATTRIBUTE, tracer

if TYPE_CHECKING:
    from uuid import UUID

    from application.delivery.dispatch import Claimed, DispatchMessages, Round
    from domain.message.aggregate import Message
    from domain.policy.vocabulary import Channel
    from entrypoints.workers.bell import OutboxBell

__all__ = ["Dispatcher"]


class Dispatcher:
    """Leases due messages per channel up to the lane's capacity, sends each on its own task,
    and records finished rounds in batches; leases of messages still in flight are renewed,
    and a lease left by a killed worker expires so another sends again (same idempotency key).

    A lane claims in batches: once full, it waits until half its capacity (or `batch`) is free
    again, rather than spend a claim's round trips on every message that finishes. While every
    provider of its channel would refuse at once (their breakers open), it claims nothing: the
    messages wait in the outbox instead of spending a round each, and at the trial it claims one.
    """

    def __init__(
        self,
        dispatch: DispatchMessages,
        channels: list[Channel],
        *,
        lane_capacity: int = 256,
        batch: int = 200,
        poll_every: float = 0.5,
        bell: OutboxBell | None = None,
    ) -> None:
        self.dispatch = dispatch
        self.channels = channels
        self.lane_capacity = lane_capacity
        self.batch = batch
        self.poll_every = poll_every
        self.log = structlog.get_logger("chorus.dispatch")
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._wakeups: dict[Channel, asyncio.Event] = {c: asyncio.Event() for c in channels}
        self._in_flight: dict[Channel, set[asyncio.Task[None]]] = {c: set() for c in channels}
        self._room: dict[Channel, asyncio.Event] = {c: asyncio.Event() for c in channels}
        self._refill = max(1, min(batch, lane_capacity // 2))
        self._leased: set[UUID] = set()
        self._finished: asyncio.Queue[tuple[Message, Round]] = asyncio.Queue()
        self._span_of: dict[UUID, trace.SpanContext] = {}  # for the round's log line
        self.dispatched = 0
        if bell is not None:
            bell.listen(self._wake)

    @property
    def running(self) -> bool:
        return bool(self._tasks) and all(not task.done() for task in self._tasks)

    def _wake(self) -> None:
        for event in self._wakeups.values():
            event.set()

    async def start(self) -> None:
        self._stopping.clear()
        self._tasks = [
            asyncio.create_task(self._lane(channel), name=f"dispatch-{channel.value}")
            for channel in self.channels
        ]
        self._tasks.append(asyncio.create_task(self._record(), name="dispatch-recorder"))
        self._tasks.append(asyncio.create_task(self._renew(), name="dispatch-leases"))

    async def stop(self) -> None:
        """Stops claiming, lets messages in flight finish their round, records them."""
        self._stopping.set()
        self._wake()
        for room in self._room.values():
            room.set()
        lanes = self._tasks[: len(self.channels)]
        for task in lanes:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        in_flight = [t for tasks in self._in_flight.values() for t in tasks]
        if in_flight:
            await asyncio.wait(in_flight, timeout=10)
        await self._finished.join()
        for task in self._tasks[len(self.channels) :]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _lane(self, channel: Channel) -> None:
        in_flight = self._in_flight[channel]
        wakeup, room = self._wakeups[channel], self._room[channel]
        finished = functools.partial(self._finished_send, channel)
        while not self._stopping.is_set():
            free = self.lane_capacity - len(in_flight)
            if free < self._refill:
                room.clear()
                await room.wait()  # set once `_refill` slots are free again, or on stop
                continue
            available = self.dispatch.availability(channel)
            if available.sends == 0:
                pause = min(max(available.wait, 0.01), self.poll_every)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=pause)
                continue
            limit = min(free, self.batch, available.sends or free)
            wakeup.clear()
            try:
                claimed = await self.dispatch.claim(channel, limit)
            except Exception:
                self.log.exception("claiming messages failed", channel=channel.value)
                claimed = []
            for item in claimed:
                self._leased.add(item.message.id)
                task = asyncio.create_task(self._send(item))
                in_flight.add(task)
                task.add_done_callback(finished)
            if claimed:
                if available.sends is not None:
                    await asyncio.sleep(0)  # the trial starts before the lane asks again
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wakeup.wait(), timeout=self.poll_every)

    def _finished_send(self, channel: Channel, task: asyncio.Task[None]) -> None:
        in_flight = self._in_flight[channel]
        in_flight.discard(task)
        if self.lane_capacity - len(in_flight) >= self._refill:
            self._room[channel].set()

    async def _send(self, claimed: Claimed) -> None:
        message = claimed.message
        # The span continues the trace of the request that queued the message, stored with
        # its outbox entry (ADR 0020); its provider calls are its children.
        with tracer().start_as_current_span(
            "dispatch message",
            context=context_from(claimed.trace_context),
            kind=trace.SpanKind.CONSUMER,
            record_exception=False,  # its message may quote personal data
            attributes={
                CORRELATION_ATTRIBUTE: message.correlation_id or "",
                "chorus.message_id": str(message.id),
                "chorus.channel": message.channel.value,
                "chorus.round": claimed.rounds + 1,
            },
        ) as span:
            started = time.time_ns()
            try:
                result = await self.dispatch.send(claimed)
            except Exception:
                # Not a provider's failure (those are rounds): leave the lease to expire.
                self.log.exception("dispatch crashed", message_id=str(message.id))
                span.set_status(trace.StatusCode.ERROR)
                return
            span.set_attribute("chorus.outcome", result.outcome)
            if span.is_recording():
                self._trace_provider_calls(message, result, started)
                self._span_of[message.id] = span.get_span_context()
        await self._finished.put((message, result))

    @staticmethod
    def _trace_provider_calls(message: Message, result: Round, started: int) -> None:
        """One client span per provider call of the round, as the round timed it: the calls
        are made one after another, so each starts where the one before it ended."""
        at = started
        for attempt in result.attempts:
            ends = at + int(attempt.latency_ms * 1_000_000)
            span = tracer().start_span(
                f"provider {attempt.provider} send",
                kind=trace.SpanKind.CLIENT,
                start_time=at,
                attributes={
                    CORRELATION_ATTRIBUTE: message.correlation_id or "",
                    "chorus.message_id": str(message.id),
                    "chorus.provider": attempt.provider,
                    "chorus.accepted": attempt.accepted,
                    "chorus.retryable": attempt.retryable,
                },
            )
            if not attempt.accepted:
                span.set_status(trace.StatusCode.ERROR)
            span.end(end_time=ends)
            at = ends

    async def _record(self) -> None:
        while True:
            first = await self._finished.get()
            batch = [first]
            while len(batch) < self.batch and not self._finished.empty():
                batch.append(self._finished.get_nowait())
            try:
                await self.dispatch.settle(batch)
            except Exception:
                self.log.exception("recording dispatch rounds failed", count=len(batch))
            else:
                self.dispatched += sum(r.outcome == "accepted" for _, r in batch)
                for message, result in batch:
                    self._log(message, result)
            finally:
                for message, _ in batch:
                    self._leased.discard(message.id)
                    self._span_of.pop(message.id, None)
                for _ in batch:
                    self._finished.task_done()

    def _log(self, message: Message, result: Round) -> None:
        DISPATCH_ROUNDS.labels(message.channel.value, result.outcome).inc()
        for attempt in result.attempts:
            answer = (
                "accepted" if attempt.accepted else "retryable" if attempt.retryable else "refused"
            )
            DISPATCH_ATTEMPTS.labels(attempt.provider, answer).inc()
            PROVIDER_SECONDS.labels(attempt.provider).observe(attempt.latency_ms / 1000)
        last = result.attempts[-1] if result.attempts else None
        span = self._span_of.pop(message.id, None)
        traced = (
            {"trace_id": format(span.trace_id, "032x"), "span_id": format(span.span_id, "016x")}
            if span is not None
            else {}
        )
        self.log.info(
            f"message {result.outcome}",
            message_id=str(message.id),
            correlation_id=message.correlation_id,
            channel=message.channel.value,
            provider=result.provider or (last.provider if last else None),
            attempts=len(result.attempts),
            latency_ms=round(last.latency_ms, 1) if last else None,
            answer=None if result.outcome == "accepted" else (last.answer if last else None),
            retry_in=result.retry_in,
            **traced,
        )

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self.dispatch.lease_seconds / 3)
            leased = list(self._leased)
            try:
                await self.dispatch.renew(leased)
            except Exception:
                self.log.exception("renewing leases failed", count=len(leased))
