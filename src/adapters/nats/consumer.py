"""A durable JetStream pull consumer: fetches in a background task, hands each fetch to a
handler, and settles messages for it (ack, nak with back-off, dead letter then term).

Delivery is at least once. A message the handler leaves unsettled comes back after `ack_wait`,
and while a fetch is being handled its unsettled messages are reported in progress, so a slow
handler does not see them redelivered. A dead letter is the message (or a part of it) published
to the dead-letter subject with a `Chorus-Reason` header and where it came from; its
`Nats-Msg-Id` is the source's stream sequence, so a message dead-lettered twice (a crash before
its term) is stored once.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

import structlog
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from adapters.nats.publisher import ensure_stream

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from nats.aio.msg import Msg
    from nats.js.client import JetStreamContext
    from structlog.typing import FilteringBoundLogger

__all__ = [
    "JetStreamConsumer",
    "ensure_stream_and_dead_letters",
    "message_id",
    "subject_matches",
]

_MAX_HEADER_VALUE = 1024


async def ensure_stream_and_dead_letters(
    js: JetStreamContext,
    stream: str,
    subjects: str,
    dead_letter_stream: str,
    dead_letter_subjects: str,
    *,
    duplicate_window: float,
) -> None:
    """Creates a stream and its dead-letter stream, or brings them up to date."""
    for name, subject in ((stream, subjects), (dead_letter_stream, dead_letter_subjects)):
        await ensure_stream(js, name, subject, duplicate_window=duplicate_window)


def subject_matches(pattern: str, subject: str) -> bool:
    """Whether a NATS subject falls under a pattern with `*` and `>` wildcards."""
    wanted = pattern.split(".")
    tokens = subject.split(".")
    for position, token in enumerate(wanted):
        if token == ">":
            return len(tokens) > position
        if position >= len(tokens) or (token != "*" and token != tokens[position]):
            return False
    return len(tokens) == len(wanted)


def message_id(msg: Msg) -> str | None:
    """The producer's id of a message (`Nats-Msg-Id`), if it gave one."""
    return msg.headers.get("Nats-Msg-Id") if msg.headers else None


def _header(value: str) -> str:
    """A header value on one line and of bounded length."""
    flat = " ".join(value.split())
    return flat if len(flat) <= _MAX_HEADER_VALUE else flat[: _MAX_HEADER_VALUE - 1] + "…"


class JetStreamConsumer:
    """Pulls from a durable consumer, a few fetches in flight, each handed to `handle`.

    `handle` settles the messages through `ack`, `nak`, `term` and `dead_letter`; what it
    raises is logged, and its unsettled messages come back after `ack_wait`.
    """

    def __init__(
        self,
        js: JetStreamContext,
        handle: Callable[[Sequence[Msg]], Awaitable[None]],
        *,
        stream: str,
        subjects: str,
        durable: str,
        dead_letter_stream: str,
        dead_letter_subjects: str,
        dead_letter_subject: str,
        duplicate_window: float,
        name: str = "consumer",
        fetch_size: Callable[[], int] | None = None,
        batch_size: int = 500,
        max_deliver: int = 20,
        ack_wait: float = 30.0,
        batches_in_flight: int = 3,
        fetch_timeout: float = 0.5,
        retry_delay: float = 1.0,
        max_retry_delay: float = 60.0,
        logger: FilteringBoundLogger | None = None,
    ) -> None:
        if batch_size < 1 or max_deliver < 1:
            raise ValueError("batch_size and max_deliver must be at least 1")
        if ack_wait <= 0 or fetch_timeout <= 0 or retry_delay < 0:
            raise ValueError(
                "ack_wait and fetch_timeout must be positive, retry_delay not negative"
            )
        if not subject_matches(dead_letter_subjects, dead_letter_subject):
            raise ValueError(f"{dead_letter_subject!r} is not under {dead_letter_subjects!r}")
        if subject_matches(subjects, dead_letter_subject):
            raise ValueError(f"dead letters on {dead_letter_subject!r} would be consumed again")
        self.js = js
        self.handle = handle
        self.stream = stream
        self.subjects = subjects
        self.durable = durable
        self.dead_letter_stream = dead_letter_stream
        self.dead_letter_subjects = dead_letter_subjects
        self.dead_letter_subject = dead_letter_subject
        self.duplicate_window = duplicate_window
        self.name = name
        self.fetch_size = fetch_size or (lambda: batch_size)
        self.batch_size = batch_size
        self.max_deliver = max_deliver
        self.ack_wait = ack_wait
        self.batches_in_flight = batches_in_flight
        self.fetch_timeout = fetch_timeout
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self.log: FilteringBoundLogger = (logger or structlog.get_logger("chorus.nats")).bind(
            stream=stream, consumer=durable
        )
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """Whether the fetch loop is alive."""
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Ensures the streams and the durable consumer, then fetches in a background task."""
        if self._task is not None:
            raise RuntimeError(f"the {self.name} is already started")
        await ensure_stream_and_dead_letters(
            self.js,
            self.stream,
            self.subjects,
            self.dead_letter_stream,
            self.dead_letter_subjects,
            duplicate_window=self.duplicate_window,
        )
        # Create or update: a changed max_deliver or ack_wait reaches an existing durable.
        await self.js.add_consumer(
            self.stream,
            ConsumerConfig(
                name=self.durable,
                durable_name=self.durable,
                deliver_policy=DeliverPolicy.ALL,
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=self.ack_wait,
                max_deliver=self.max_deliver,
                max_ack_pending=max(1000, 4 * self.batch_size),
                filter_subject=self.subjects,
            ),
        )
        sub = await self.js.pull_subscribe_bind(durable=self.durable, stream=self.stream)
        self._stopping.clear()
        task_name = f"{self.name.replace(' ', '-')}:{self.durable}"
        self._task = asyncio.create_task(self._run(sub), name=task_name)
        self.log.info(f"{self.name} started", subjects=self.subjects)

    async def stop(self, *, grace: float = 30.0) -> None:
        """Lets the fetches in flight finish (cancelling them after `grace` s), then returns."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping.set()
        try:
            done, _ = await asyncio.wait({task}, timeout=grace)
        finally:
            if not task.done():
                # Cancelled while unacknowledged, its messages come back after ack_wait.
                self.log.warning(f"{self.name} cancelled mid-batch", grace=grace)
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if done and not task.cancelled() and task.exception() is not None:
            self.log.error(f"{self.name} had crashed", exc_info=task.exception())
        self.log.info(f"{self.name} stopped")

    def last_delivery(self, msg: Msg) -> bool:
        """Whether JetStream will not deliver this message again if it is not settled now."""
        return msg.metadata.num_delivered >= self.max_deliver

    async def ack(self, msg: Msg) -> bool:
        """Acknowledges the message; whether JetStream took it (if not, it comes back)."""
        try:
            await msg.ack()
        except Exception as error:
            self.log.warning(
                "ack failed",
                msg_id=message_id(msg),
                stream_seq=msg.metadata.sequence.stream,
                error=repr(error),
            )
            return False
        return True

    async def nak(self, msg: Msg) -> None:
        """Asks for the message again, after a delay that doubles with each delivery."""
        attempt = max(msg.metadata.num_delivered, 1)
        delay = min(self.retry_delay * 2 ** (attempt - 1), self.max_retry_delay)
        try:
            await msg.nak(delay=delay)
        except Exception as error:
            # Unacknowledged, it comes back after ack_wait anyway.
            self.log.warning("nak failed", error=repr(error))

    async def term(self, msg: Msg) -> None:
        """Tells JetStream never to deliver the message again."""
        try:
            await msg.term()
        except Exception as error:
            self.log.warning("term failed after dead-lettering", error=repr(error))

    async def dead_letter(
        self, msg: Msg, data: bytes, reason: str, event_id: str | None, part: int | None = None
    ) -> bool:
        """Publishes `data` (the message, or its part number `part`) to the dead-letter subject
        with the reason; whether it was stored."""
        meta = msg.metadata
        correlation_id = message_id(msg) or event_id or f"{meta.stream}:{meta.sequence.stream}"
        letter_id = f"dlq:{meta.stream}:{meta.sequence.stream}"
        headers = {
            "Chorus-Reason": _header(reason),
            "Chorus-Subject": msg.subject,
            "Chorus-Stream": meta.stream,
            "Chorus-Stream-Seq": str(meta.sequence.stream),
            "Chorus-Delivered": str(meta.num_delivered),
            "Chorus-Correlation-Id": _header(correlation_id),
            # Dead-lettering the same message again (a crash before term) is dropped as a duplicate.
            "Nats-Msg-Id": letter_id if part is None else f"{letter_id}:{part}",
        }
        if event_id:
            headers["Chorus-Event-Id"] = _header(event_id)
        if part is not None:
            headers["Chorus-Batch-Index"] = str(part)
        try:
            await self.js.publish(self.dead_letter_subject, data, headers=headers)
        except Exception as error:
            self.log.error(
                "dead-lettering failed; retrying",
                event_id=event_id,
                correlation_id=correlation_id,
                reason=reason,
                error=repr(error),
                stream_seq=meta.sequence.stream,
                last_delivery=self.last_delivery(msg),
            )
            return False
        self.log.warning(
            "dead-lettered",
            event_id=event_id,
            correlation_id=correlation_id,
            reason=reason,
            subject=msg.subject,
            stream_seq=meta.sequence.stream,
            batch_index=part,
        )
        return True

    async def _run(self, sub: JetStreamContext.PullSubscription) -> None:
        # A few fetches in flight, so Python handles one while the handler's I/O waits on another.
        slots = asyncio.Semaphore(self.batches_in_flight)
        in_flight: set[asyncio.Task[None]] = set()
        try:
            while not self._stopping.is_set():
                await slots.acquire()
                size = max(1, min(self.batch_size, self.fetch_size()))
                try:
                    msgs = await sub.fetch(size, timeout=self.fetch_timeout)
                except TimeoutError:  # nats.errors.TimeoutError: nothing to do yet
                    slots.release()
                    continue
                except Exception:
                    slots.release()
                    self.log.exception("fetching failed")
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), timeout=1.0)
                    continue
                task = asyncio.create_task(self._handle(msgs, slots))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
            if in_flight:
                await asyncio.wait(in_flight)
        except asyncio.CancelledError:
            for task in in_flight:
                task.cancel()
            raise
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _handle(self, msgs: Sequence[Msg], slots: asyncio.Semaphore) -> None:
        # Every message of the fetch, however long the handler takes to settle it (a slow
        # database, say), is kept from redelivery until it is settled.
        ticker = asyncio.create_task(self._keep_alive(msgs))
        try:
            await self.handle(msgs)
        except Exception:
            # Unacknowledged messages come back after ack_wait.
            self.log.exception("batch failed", count=len(msgs))
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            slots.release()

    async def _keep_alive(self, msgs: Sequence[Msg]) -> None:
        """Tells JetStream, every third of ack_wait, that unsettled messages are in progress."""
        while True:
            await asyncio.sleep(self.ack_wait / 3)
            for msg in msgs:
                if not msg.is_acked:
                    with contextlib.suppress(Exception):
                        await msg.in_progress()
