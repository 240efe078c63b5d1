"""A broadcast's sends decided by processes of their own (ADR 0028): the schedule worker enrols a
slice of the audience while other processes decide the slice before it, so a broadcast uses every
core and not the one its process holds the GIL of.

Each decider process is a spawned interpreter with its own connections, wired as the service is
(`make_container`), running `RequestMessage.all` on the batches it is sent. What it decides is
what the schedule worker's own `RequestMessage.all` would: the same rules, renders, decisions,
outbox rows and idempotency keys, so a batch sent again after a crash answers as a retry. Under
the manual clock a batch carries the sender's time; under the system clock each process reads
its own. Small batches, and any batch once the processes have failed, are decided in the
sender's process.
"""

from __future__ import annotations

import asyncio
import atexit
import dataclasses
import multiprocessing
import operator
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.reduction import ForkingPickler
from typing import TYPE_CHECKING, Any
from uuid import UUID

import structlog
from dishka import Provider, Scope, provide

from adapters.system.lifetime import end_with_parent
from application.messages.compose import MessageContent
from application.messages.request_message import MessageDecided, RequestMessage, SendAsked
from domain.policy.decision import ApprovedHold, Decision, FiredRule, SendRequest
from domain.shared.errors import DomainError
from ports.clock import Clock
from ports.delivery import Delivery, Fallback

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from datetime import datetime

    from entrypoints.settings import Settings

__all__ = ["ProcessDeciders"]

SMALLEST_BATCH = 200
"""Sends below which a batch is decided in the sender's process: a round trip to another
process, and its pickling, cost more than they save."""


def _by_fields(kind: type[Any]) -> Callable[[Any], tuple[type[Any], tuple[Any, ...]]]:
    """Pickles a dataclass as its constructor and field values: a third of what pickle's own
    way costs for these slotted, frozen ones (which asks `dataclasses.fields` each time)."""
    values = operator.attrgetter(*(field.name for field in dataclasses.fields(kind)))

    def reduced(value: Any) -> tuple[type[Any], tuple[Any, ...]]:
        return kind, values(value)

    return reduced


def _uuid(value: UUID) -> tuple[type[UUID], tuple[None, bytes]]:
    return UUID, (None, value.bytes)


# What a batch and its answers carry between the processes, a few thousand of each a batch.
for _kind in (
    SendAsked,
    SendRequest,
    ApprovedHold,
    MessageContent,
    Fallback,
    Delivery,
    MessageDecided,
    Decision,
    FiredRule,
):
    ForkingPickler.register(_kind, _by_fields(_kind))
ForkingPickler.register(UUID, _uuid)


class ProcessDeciders:
    """`SendDeciders` over `processes` decider processes, started at the first big batch; until
    they have, batches are decided in this process."""

    def __init__(
        self,
        settings: Settings,
        request_message: RequestMessage,
        clock: Clock,
        processes: int,
        smallest: int = SMALLEST_BATCH,
    ) -> None:
        self.settings = settings
        self.request_message = request_message
        self.clock = clock
        self.processes = processes
        self.smallest = smallest
        self._pool: ProcessPoolExecutor | None = None
        self._starting: asyncio.Future[None] | None = None
        self.log = structlog.get_logger("chorus.campaigns")

    async def all(self, asked: Sequence[SendAsked]) -> list[MessageDecided | DomainError]:
        if self.processes < 1 or len(asked) < self.smallest or not self._started():
            return await self.request_message.all(asked)
        assert self._pool is not None
        now = self.clock.now() if self.settings.clock == "manual" else None
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._pool, _decide, list(asked), now
            )
        except BrokenProcessPool:
            # A decider died (killed, out of memory): what it committed answers as a retry.
            self.log.warning("a decider process stopped; deciding in this process")
            self.close()
            return await self.request_message.all(asked)

    async def start(self) -> None:
        """Starts the processes now rather than at the first big batch, and waits for them."""
        if self.processes >= 1:
            await asyncio.shield(self._starting_now())

    @property
    def pids(self) -> list[int]:
        """The decider processes running now."""
        return [] if self._pool is None else list(self._pool._processes or {})

    def close(self) -> None:
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
        self._starting = None
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def _started(self) -> bool:
        """Whether the processes are ready; starts them, without waiting, if they are not: a
        start takes seconds of imports, which a broadcast does not wait for."""
        starting = self._starting_now()
        if not starting.done():
            return False
        if starting.cancelled() or starting.exception() is not None:
            self.log.warning("the decider processes did not start", error=repr(starting))
            self.close()
            return False
        return True

    def _starting_now(self) -> asyncio.Future[None]:
        if self._starting is None:
            self._starting = asyncio.ensure_future(self._start())
        return self._starting

    async def _start(self) -> None:
        self._pool = pool = ProcessPoolExecutor(
            self.processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_open,
            initargs=(self.settings, os.getpid()),
        )
        loop = asyncio.get_running_loop()
        # Asked at once, so that the pool starts every process, not one to take them in turn.
        await asyncio.gather(*(loop.run_in_executor(pool, _ready) for _ in range(self.processes)))


class _ClockProvider(Provider):
    """A decider's clock, in place of the service's."""

    scope = Scope.APP

    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self._clock = clock

    @provide
    def clock(self) -> Clock:
        return self._clock


class _Decider:
    """A decider process's own: its event loop, and `RequestMessage` wired as the service's."""

    def __init__(self, settings: Settings) -> None:
        from adapters.system.clock import ManualClock, SystemClock
        from entrypoints.heap import settle_heap
        from entrypoints.ioc import make_container
        from entrypoints.logs import configure_logging

        configure_logging(settings.log_level)
        self.loop = asyncio.new_event_loop()
        # Under the manual clock, the time each batch brings from the sender's.
        self.manual = ManualClock() if settings.clock == "manual" else None
        clock = self.manual or SystemClock()
        self.container = make_container(settings, _ClockProvider(clock))
        self.request = self.loop.run_until_complete(self.container.get(RequestMessage))
        atexit.register(self.close)
        settle_heap()

    def close(self) -> None:
        """Closes the process's connections as it ends (the pool's shutdown)."""
        self.loop.run_until_complete(self.container.close())
        self.loop.close()

    def decide(
        self, asked: Sequence[SendAsked], now: datetime | None
    ) -> list[MessageDecided | DomainError]:
        if self.manual is not None and now is not None:
            self.manual.set(now)
        answers = self.loop.run_until_complete(self.request.all(asked))
        # An error is told by its text (a send not made, and why): its class may not travel.
        return [DomainError(str(a)) if isinstance(a, DomainError) else a for a in answers]


_decider: _Decider | None = None


def _open(settings: Settings, parent: int) -> None:
    # A decider waits for batches on a pipe its siblings hold open too: it would outlive a
    # service killed with -9, holding its connections, without this.
    end_with_parent(parent)
    global _decider  # the process's one decider, made by the pool's initializer
    _decider = _Decider(settings)


def _ready() -> bool:
    return _decider is not None


def _decide(asked: Sequence[SendAsked], now: datetime | None) -> list[MessageDecided | DomainError]:
    if _decider is None:
        raise RuntimeError("a decider process that was not opened")
    return _decider.decide(asked, now)
