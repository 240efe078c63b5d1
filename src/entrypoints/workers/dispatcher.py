"""Dispatch workers: one lane per channel, so a hanging provider never slows another channel."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from typing import TYPE_CHECKING

import structlog

from entrypoints.metrics import (
    DISPATCH_ATTEMPTS,
    DISPATCH_ROUNDS,
    PROVIDER_SECONDS,
)

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
        try:
            result = await self.dispatch.send(claimed)
        except Exception:
            # Not a provider's failure (those are rounds): leave the lease to expire and retry.
            self.log.exception("dispatch crashed", message_id=str(message.id))
            return
        await self._finished.put((message, result))

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
        )

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self.dispatch.lease_seconds / 3)
            leased = list(self._leased)
            try:
                await self.dispatch.renew(leased)
            except Exception:
                self.log.exception("renewing leases failed", count=len(leased))
