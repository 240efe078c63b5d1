"""The NATS request/reply loop both command responders run: a queue-group subscription whose
requests are each answered in a task of their own, at most `max_in_flight` at once."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

import structlog

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription
    from structlog.typing import FilteringBoundLogger

__all__ = ["QueueResponder"]


class QueueResponder(ABC):
    """Subscribes `subject` in the `queue` group and hands each request to `_answer`; a
    subclass says how it receives (`_receive`), answers and stops."""

    what: ClassVar[str]
    """What the responder answers, as its logs and errors name it ("send command")."""

    def __init__(
        self,
        nc: Client,
        subject: str,
        queue: str,
        logger: FilteringBoundLogger | None,
        max_in_flight: int,
    ) -> None:
        self.nc = nc
        self.subject = subject
        self.queue = queue
        self.log: FilteringBoundLogger = (logger or structlog.get_logger("chorus.nats")).bind(
            subject=subject, queue=queue
        )
        self._slots = asyncio.Semaphore(max_in_flight)
        self._in_flight: set[asyncio.Task[None]] = set()
        self._sub: Subscription | None = None

    @property
    def running(self) -> bool:
        """Whether the subscription is live."""
        return self._sub is not None

    async def start(self) -> None:
        """Subscribes in the queue group; returns once the server knows of the subscription."""
        if self._sub is not None:
            raise RuntimeError(f"the {self.what} responder is already started")
        self._sub = await self.nc.subscribe(self.subject, queue=self.queue, cb=self._receive)
        await self.nc.flush()
        started = f"{self.what} responder started"
        self.log.info(started)

    @abstractmethod
    async def _receive(self, msg: Msg) -> None:
        """The subscription callback."""

    async def _hand_over(self, msg: Msg) -> None:
        """Answers `msg` in a task of its own once a slot is free: back-pressure, the rest wait
        in the client's queue."""
        await self._slots.acquire()
        task = asyncio.create_task(self._answer(msg))
        self._in_flight.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._slots.release()

    @abstractmethod
    async def _answer(self, msg: Msg) -> None:
        """Answers one request; never raises."""
