"""Signals over NATS JetStream: one signal a message, or a batch of up to 1,000 as
`{"signals": [...]}` (the body of `POST /v1/events`), committed in batches, then acknowledged.

Delivery is at least once and the effect exactly once: a batch is acknowledged only after
`AcceptSignals` has committed it to the log, so a crash before the commit redelivers the
messages, and a redelivery after the commit is a duplicate by the producer's event id and
changes nothing. Attribution to customers follows from the log (`AttributeSignals`).
Messages that can never succeed (not JSON, not a signal, a bad identity, text PostgreSQL cannot
hold, a signal over 64 KiB or nested deeper than 32: see `SignalMapper`) are published to the
dead-letter stream first and terminated afterwards; so are messages that still fail on their last
allowed delivery. In a batch message, each invalid signal is dead-lettered on its own (with
its index) and the valid ones are committed; the message is acknowledged once both are done.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec
import structlog
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig

from adapters.nats.publisher import ensure_stream_config
from domain.signals.document import InvalidSignal
from entrypoints.metrics import SIGNAL_BATCH_SECONDS, SIGNALS
from entrypoints.signal_schema import MAX_BATCH
from ports.intake import ReceivedSignal

if TYPE_CHECKING:
    from collections.abc import Sequence

    from nats.aio.msg import Msg
    from nats.js.client import JetStreamContext
    from structlog.typing import FilteringBoundLogger

    from application.customer.accept_signals import AcceptSignals
    from entrypoints.signal_schema import SignalMapper

__all__ = [
    "DEAD_LETTER_STREAM",
    "DEAD_LETTER_SUBJECT",
    "DEAD_LETTER_SUBJECTS",
    "SIGNAL_STREAM",
    "SIGNAL_SUBJECTS",
    "SignalConsumer",
    "ensure_signal_stream",
    "subject_matches",
]

SIGNAL_STREAM = "CHORUS_SIGNALS"
SIGNAL_SUBJECTS = "chorus.signals.>"
DEAD_LETTER_STREAM = "CHORUS_DEAD_LETTERS"
DEAD_LETTER_SUBJECTS = "chorus.dlq.>"
DEAD_LETTER_SUBJECT = "chorus.dlq.signals"
DUPLICATE_WINDOW = 120.0  # seconds; producers set Nats-Msg-Id to their event id
_MAX_HEADER_VALUE = 1024


async def ensure_signal_stream(
    js: JetStreamContext,
    stream_name: str = SIGNAL_STREAM,
    *,
    subjects: str = SIGNAL_SUBJECTS,
    duplicate_window: float = DUPLICATE_WINDOW,
    dead_letter_stream: str = DEAD_LETTER_STREAM,
    dead_letter_subjects: str = DEAD_LETTER_SUBJECTS,
) -> None:
    """Creates the signal stream and its dead-letter stream, or brings them up to date."""
    for name, subject in ((stream_name, subjects), (dead_letter_stream, dead_letter_subjects)):
        await ensure_stream_config(
            js,
            StreamConfig(
                name=name,
                subjects=[subject],
                storage=StorageType.FILE,
                duplicate_window=duplicate_window,
            ),
        )


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


def _header(value: str) -> str:
    """A header value on one line and of bounded length."""
    flat = " ".join(value.split())
    return flat if len(flat) <= _MAX_HEADER_VALUE else flat[: _MAX_HEADER_VALUE - 1] + "…"


def _msg_id(msg: Msg) -> str | None:
    return msg.headers.get("Nats-Msg-Id") if msg.headers else None


_envelope = msgspec.json.Decoder(dict[str, msgspec.Raw])
_parts = msgspec.json.Decoder(list[msgspec.Raw])


def _batch_of(data: bytes) -> list[msgspec.Raw] | str | None:
    """The signals of a batch message (`{"signals": [...]}`), why it is not a valid batch, or
    None for a message of one signal."""
    try:
        envelope = _envelope.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError):
        return None  # refused as a signal, with the reason, by the mapper
    if set(envelope) != {"signals"}:
        return None
    try:
        parts = _parts.decode(envelope["signals"])
    except (
        msgspec.DecodeError,
        msgspec.ValidationError,
        UnicodeDecodeError,
        RecursionError,
    ) as error:
        return f"$.signals: {error}"
    if not 1 <= len(parts) <= MAX_BATCH:
        return f"$.signals: a batch holds 1 to {MAX_BATCH} signals, not {len(parts)}"
    return parts


COMMIT_GROUP = 1000  # signals a transaction
COMMITS_IN_PARALLEL = 4  # transactions in flight while the next group is validated
FETCH_SIGNALS = 10_000  # signals a fetch aims at: batch messages are fetched fewer at a time


@dataclass(frozen=True, slots=True)
class _Refused:
    """An invalid signal of a batch message, to dead-letter on its own."""

    data: bytes
    reason: str
    event_id: str | None
    index: int


@dataclass(frozen=True, slots=True)
class _Delivery:
    msg: Msg
    signals: tuple[ReceivedSignal, ...]
    event_id: str  # of its first signal, for logs
    correlation_id: str
    refused: tuple[_Refused, ...] = ()


class SignalConsumer:
    """Pulls signals from a durable JetStream consumer and commits each fetched batch at once."""

    def __init__(
        self,
        js: JetStreamContext,
        accept: AcceptSignals,
        mapper: SignalMapper,
        *,
        stream_name: str = SIGNAL_STREAM,
        durable: str = "chorus-signal-ingest",
        batch_size: int = 500,
        max_deliver: int = 20,  # with back-off up to a minute: rides out ~15 min of database outage
        dead_letter_subject: str = DEAD_LETTER_SUBJECT,
        logger: FilteringBoundLogger | None = None,
        subjects: str = SIGNAL_SUBJECTS,
        dead_letter_stream: str = DEAD_LETTER_STREAM,
        dead_letter_subjects: str = DEAD_LETTER_SUBJECTS,
        duplicate_window: float = DUPLICATE_WINDOW,
        ack_wait: float = 30.0,
        batches_in_flight: int = 3,
        fetch_timeout: float = 0.5,
        retry_delay: float = 1.0,
        max_retry_delay: float = 60.0,
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
        self.accept = accept
        self.mapper = mapper
        self.stream_name = stream_name
        self.durable = durable
        self.batch_size = batch_size
        self.max_deliver = max_deliver
        self.dead_letter_subject = dead_letter_subject
        self.subjects = subjects
        self.dead_letter_stream = dead_letter_stream
        self.dead_letter_subjects = dead_letter_subjects
        self.duplicate_window = duplicate_window
        self.batches_in_flight = batches_in_flight
        self.ack_wait = ack_wait
        self.fetch_timeout = fetch_timeout
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self.log: FilteringBoundLogger = (logger or structlog.get_logger("chorus.nats")).bind(
            stream=stream_name, consumer=durable
        )
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._commit_slots = asyncio.Semaphore(COMMITS_IN_PARALLEL)
        # In the last fetch; until one came, as if every message were a full batch message, so
        # that a first fetch in a burst of them is not 500 x 1,000 signals.
        self._signals_per_message = float(MAX_BATCH)

    def _fetch_size(self) -> int:
        """Messages to fetch: up to `batch_size`, and about FETCH_SIGNALS signals, so that the
        first of a burst of batch messages is committed while the rest still arrive."""
        wanted = round(FETCH_SIGNALS / self._signals_per_message)
        return max(1, min(self.batch_size, wanted))

    @property
    def running(self) -> bool:
        """Whether the fetch loop is alive."""
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Ensures the streams and the durable consumer, then fetches in a background task."""
        if self._task is not None:
            raise RuntimeError("the signal consumer is already started")
        await ensure_signal_stream(
            self.js,
            self.stream_name,
            subjects=self.subjects,
            duplicate_window=self.duplicate_window,
            dead_letter_stream=self.dead_letter_stream,
            dead_letter_subjects=self.dead_letter_subjects,
        )
        # Create or update: a changed max_deliver or ack_wait reaches an existing durable.
        await self.js.add_consumer(
            self.stream_name,
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
        sub = await self.js.pull_subscribe_bind(durable=self.durable, stream=self.stream_name)
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(sub), name=f"signal-consumer:{self.durable}")
        self.log.info("signal consumer started", subjects=self.subjects)

    async def stop(self, *, grace: float = 30.0) -> None:
        """Lets the batch in flight finish (cancelling it after `grace` s), then returns."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping.set()
        try:
            done, _ = await asyncio.wait({task}, timeout=grace)
        finally:
            if not task.done():
                # Cancelled while unacknowledged, its messages come back after ack_wait.
                self.log.warning("signal consumer cancelled mid-batch", grace=grace)
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if done and not task.cancelled() and task.exception() is not None:
            self.log.error("signal consumer had crashed", exc_info=task.exception())
        self.log.info("signal consumer stopped")

    async def _run(self, sub: JetStreamContext.PullSubscription) -> None:
        # A few batches in flight, so Python validates one while PostgreSQL commits another.
        slots = asyncio.Semaphore(self.batches_in_flight)
        in_flight: set[asyncio.Task[None]] = set()
        try:
            while not self._stopping.is_set():
                await slots.acquire()
                try:
                    msgs = await sub.fetch(self._fetch_size(), timeout=self.fetch_timeout)
                except TimeoutError:  # nats.errors.TimeoutError: nothing to do yet
                    slots.release()
                    continue
                except Exception:
                    slots.release()
                    self.log.exception("fetching signals failed")
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), timeout=1.0)
                    continue
                task = asyncio.create_task(self._handle_batch(msgs, slots))
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

    async def _handle_batch(self, msgs: Sequence[Msg], slots: asyncio.Semaphore) -> None:
        try:
            await self._handle(msgs)
        except Exception:
            # Unacknowledged messages come back after ack_wait.
            self.log.exception("signal batch failed", count=len(msgs))
        finally:
            slots.release()

    async def _handle(self, msgs: Sequence[Msg]) -> None:
        """Validates the fetched messages group by group and commits each group of about
        COMMIT_GROUP signals as soon as it is whole: a fetch of batch messages holds tens of
        thousands of signals, and PostgreSQL commits one group while the next is validated."""
        refused: list[tuple[Msg, str, str | None]] = []
        all_refused: list[tuple[Msg, list[_Refused]]] = []
        slots = self._commit_slots  # shared by the fetches in flight
        commits: list[asyncio.Task[None]] = []
        group: list[_Delivery] = []
        size = signals = 0

        async def send() -> None:
            nonlocal group, size
            await slots.acquire()
            task = asyncio.create_task(self._ingest(group))
            # Released however the task ends, even cancelled before it ever ran.
            task.add_done_callback(lambda _: slots.release())
            commits.append(task)
            group, size = [], 0

        # Every message of the fetch, waiting for a commit slot or committing (the database
        # slow, say), is kept from redelivery until it is settled.
        ticker = asyncio.create_task(self._keep_alive(msgs))
        try:
            for index, msg in enumerate(msgs):
                delivery = self._delivery(index, msg, refused, all_refused)
                # Between messages the loop reads PostgreSQL's answers, so a commit that is
                # done is acknowledged without waiting for the whole group to be validated.
                await asyncio.sleep(0)
                if delivery is None:
                    continue
                if size and size + len(delivery.signals) > COMMIT_GROUP:
                    await send()
                group.append(delivery)
                size += len(delivery.signals)
                signals += len(delivery.signals)
            if group:
                await send()
            if msgs:  # an idle fetch says nothing about the size of messages
                self._signals_per_message = max(1.0, signals / len(msgs))
            await asyncio.gather(*(self._refuse(*r) for r in refused))
            for msg, dead in all_refused:
                if await self._dead_letter_all(msg, dead):
                    await self._term(msg)
                else:
                    await self._nak(msg)
        except asyncio.CancelledError:
            # Stopping: uncommitted messages come back after ack_wait, committed ones are
            # duplicates then.
            for task in commits:
                task.cancel()
            raise
        finally:
            # Whatever failed above, the groups on their way commit and settle their messages.
            await asyncio.gather(*commits, return_exceptions=True)
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker

    async def _keep_alive(self, msgs: Sequence[Msg]) -> None:
        """Tells JetStream, every third of ack_wait, that unsettled messages are in progress."""
        while True:
            await asyncio.sleep(self.ack_wait / 3)
            for msg in msgs:
                if not msg.is_acked:
                    with contextlib.suppress(Exception):
                        await msg.in_progress()

    def _delivery(
        self,
        index: int,
        msg: Msg,
        refused: list[tuple[Msg, str, str | None]],
        all_refused: list[tuple[Msg, list[_Refused]]],
    ) -> _Delivery | None:
        """The message's valid signals, to commit; what is invalid goes to `refused` (a whole
        message) or `all_refused` (a batch message without one valid signal)."""
        batch = _batch_of(msg.data)
        if batch is None:
            signal = self.mapper.check(index, msg.data)
            if isinstance(signal, InvalidSignal):
                reason = f"{signal.field}: {signal.reason}"
                refused.append((msg, reason, signal.signal_id))
                return None
            received = self.mapper.received(index, signal, msg.data)
            return _Delivery(msg, (received,), signal.id, _msg_id(msg) or signal.id)
        if isinstance(batch, str):
            refused.append((msg, batch, None))
            return None
        signals: list[ReceivedSignal] = []
        dead: list[_Refused] = []
        for position, raw in enumerate(batch):
            checked = self.mapper.check(position, raw)
            if isinstance(checked, InvalidSignal):
                reason = f"$.signals[{position}]{checked.field[1:]}: {checked.reason}"
                dead.append(_Refused(bytes(raw), reason, checked.signal_id, position))
            else:
                signals.append(self.mapper.received(position, checked, bytes(raw)))
        if not signals:
            all_refused.append((msg, dead))
            return None
        # Its valid signals are committed first; its invalid ones are dead-lettered before the
        # message is acknowledged (see _settle).
        first = signals[0].event_id
        return _Delivery(msg, tuple(signals), first, _msg_id(msg) or first, tuple(dead))

    async def _ingest(self, batch: list[_Delivery]) -> None:
        try:
            with SIGNAL_BATCH_SECONDS.labels("nats").time():
                new = await self.accept([s for d in batch for s in d.signals])
        except Exception as error:
            await self._retry_later(batch, error)
            return
        start = 0
        for delivery in batch:
            end = start + len(delivery.signals)
            await self._settle(delivery, accepted=sum(new[start:end]))
            start = end
        accepted = sum(new)
        SIGNALS.labels("nats", "accepted").inc(accepted)
        SIGNALS.labels("nats", "duplicate").inc(len(new) - accepted)
        self.log.info(
            "signals accepted",
            messages=len(batch),
            count=len(new),
            accepted=accepted,
            duplicates=len(new) - accepted,
        )

    async def _ack(self, delivery: _Delivery, *, accepted: int) -> None:
        try:
            await delivery.msg.ack()
        except Exception as error:
            # Committed already: the redelivery will be a duplicate by event id.
            self.log.warning(
                "ack failed after commit",
                event_id=delivery.event_id,
                correlation_id=delivery.correlation_id,
                error=repr(error),
            )
            return
        self.log.debug(
            "signal accepted",
            event_id=delivery.event_id,
            correlation_id=delivery.correlation_id,
            signals=len(delivery.signals),
            accepted=accepted,
        )

    async def _retry_later(self, batch: list[_Delivery], error: Exception) -> None:
        last = [d for d in batch if d.msg.metadata.num_delivered >= self.max_deliver]
        self.log.warning(
            "signal batch not committed; retrying",
            count=len(batch),
            last_attempts=len(last),
            error=repr(error),
            event_ids=[d.event_id for d in batch[:20]],
        )
        for delivery in batch:
            if delivery.msg.metadata.num_delivered < self.max_deliver:
                await self._nak(delivery.msg)
        for delivery in last:
            reason = f"ingest failed after {self.max_deliver} deliveries: {error!r}"
            if len(batch) > 1:
                # Its last chance: alone, so that a bad neighbour cannot sink it.
                try:
                    new = await self.accept(delivery.signals)
                except Exception as alone:
                    reason = f"ingest failed after {self.max_deliver} deliveries: {alone!r}"
                else:
                    await self._settle(delivery, accepted=sum(new))
                    continue
            await self._refuse(delivery.msg, reason, delivery.event_id)

    async def _settle(self, delivery: _Delivery, *, accepted: int) -> None:
        """After its signals are committed: dead-letters its invalid ones, then acknowledges.
        If a dead letter cannot be stored, it comes back (its signals then are duplicates),
        unless this was its last delivery."""
        if delivery.refused and not await self._dead_letter_all(delivery.msg, delivery.refused):
            if delivery.msg.metadata.num_delivered < self.max_deliver:
                await self._nak(delivery.msg)
                return
            self.log.error(
                "invalid signals of a batch message lost: dead-lettering failed on its last "
                "delivery",
                correlation_id=delivery.correlation_id,
                indexes=[r.index for r in delivery.refused],
            )
        await self._ack(delivery, accepted=accepted)

    async def _dead_letter_all(self, msg: Msg, refused: Sequence[_Refused]) -> bool:
        stored = await asyncio.gather(
            *(self._dead_letter(msg, r.data, r.reason, r.event_id, r.index) for r in refused)
        )
        return all(stored)

    async def _refuse(self, msg: Msg, reason: str, event_id: str | None) -> None:
        """Dead-letters a message, and terminates it only once the dead letter is stored."""
        if await self._dead_letter(msg, msg.data, reason, event_id):
            await self._term(msg)
        else:
            await self._nak(msg)

    async def _dead_letter(
        self, msg: Msg, data: bytes, reason: str, event_id: str | None, part: int | None = None
    ) -> bool:
        """Publishes `data` (the message, or one signal of a batch) to the dead-letter subject
        with the reason; whether it was stored."""
        meta = msg.metadata
        correlation_id = _msg_id(msg) or event_id or f"{meta.stream}:{meta.sequence.stream}"
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
                last_delivery=meta.num_delivered >= self.max_deliver,
            )
            return False
        SIGNALS.labels("nats", "dead_lettered").inc()
        self.log.warning(
            "signal dead-lettered",
            event_id=event_id,
            correlation_id=correlation_id,
            reason=reason,
            subject=msg.subject,
            stream_seq=meta.sequence.stream,
            batch_index=part,
        )
        return True

    async def _term(self, msg: Msg) -> None:
        try:
            await msg.term()
        except Exception as error:
            self.log.warning("term failed after dead-lettering", error=repr(error))

    async def _nak(self, msg: Msg) -> None:
        attempt = max(msg.metadata.num_delivered, 1)
        delay = min(self.retry_delay * 2 ** (attempt - 1), self.max_retry_delay)
        try:
            await msg.nak(delay=delay)
        except Exception as error:
            # Unacknowledged, it comes back after ack_wait anyway.
            self.log.warning("nak failed", error=repr(error))
