"""Signals over NATS JetStream: one signal a message, or a batch of up to 1,000 as
`{"signals": [...]}` (the body of `POST /v1/events`), committed in batches, then acknowledged.

Delivery is at least once and the effect exactly once: a batch is acknowledged only after
`AcceptSignals` has committed it to the log, so a crash before the commit redelivers the
messages, and a redelivery after the commit is a duplicate by the producer's event id and
changes nothing. Attribution to customers follows from the log (`AttributeSignals`).
Messages that can never succeed (not JSON, not a signal, a bad identity, text PostgreSQL cannot
hold, a signal over 64 KiB or nested deeper than 32: see `SignalReader`) are published to the
dead-letter stream first and terminated afterwards; so are messages that still fail on their last
allowed delivery. In a batch message, each invalid signal is dead-lettered on its own (with
its index) and the valid ones are committed; the message is acknowledged once both are done.

A message may carry an API key (`Chorus-Key` or `Authorization: Bearer`, as commands do). A key
carried is checked as `POST /v1/events` checks it and spends one unit of that key's `ingest`
budget, the one its HTTP ingest spends too (a batch message is one unit, as a batch request
is; a redelivery is not counted again). A message refused for its key (unknown, revoked or
expired: 401; a role other than service or admin: 403) or for its key's limit (429, counted in
`chorus_rate_limited_total{route_class="ingest"}`) is dead-lettered with the reason, as an
invalid one is: no reply goes back on a stream, and waiting would hold up other keys' messages.
A message without a key is not limited (ADR 0022, amended); with `CHORUS_NATS_REQUIRE_KEY` on,
it is dead-lettered as `401 unauthorized: ...` instead (counted `dead_lettered`, as a refused
key is), so that nobody records signals on a publish permission alone.

JetStream itself (the durable consumer, fetching, acks, back-off, dead letters) is
`adapters.nats.consumer`; this worker decodes, commits, and decides how each message is settled.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec
from opentelemetry import trace

from adapters.nats.consumer import JetStreamConsumer, ensure_stream_and_dead_letters, message_id
from adapters.system.trace_context import context_from
from domain.signals.document import MAX_BATCH, InvalidSignal, ReceivedSignal
from entrypoints.http.rate_limiter import RouteClass
from entrypoints.metrics import SIGNAL_BATCH_SECONDS, SIGNALS
from entrypoints.tracing import CORRELATION_ATTRIBUTE, tracer
from entrypoints.workers.nats_keys import KeyRefused, carried_key, missing_key, spend
from entrypoints.workers.nats_problems import forbidden
from ports.api_keys import Role

if TYPE_CHECKING:
    from collections.abc import Sequence

    from nats.aio.msg import Msg
    from nats.js.client import JetStreamContext
    from structlog.typing import FilteringBoundLogger

    from application.customer.signals import AcceptSignals
    from domain.signals.document import SignalReader
    from entrypoints.http.rate_limiter import RateLimiter
    from ports.api_keys import ApiKeyStore
    from ports.clock import Clock

__all__ = [
    "DEAD_LETTER_STREAM",
    "DEAD_LETTER_SUBJECT",
    "DEAD_LETTER_SUBJECTS",
    "SIGNAL_STREAM",
    "SIGNAL_SUBJECTS",
    "SignalConsumer",
    "ensure_signal_stream",
]

SIGNAL_STREAM = "CHORUS_SIGNALS"
SIGNAL_SUBJECTS = "chorus.signals.>"
DEAD_LETTER_STREAM = "CHORUS_DEAD_LETTERS"
DEAD_LETTER_SUBJECTS = "chorus.dlq.>"
DEAD_LETTER_SUBJECT = "chorus.dlq.signals"
DUPLICATE_WINDOW = 120.0  # seconds; producers set Nats-Msg-Id to their event id
_INGESTERS = frozenset({Role.SERVICE, Role.ADMIN})  # as POST /v1/events


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
    await ensure_stream_and_dead_letters(
        js,
        stream_name,
        subjects,
        dead_letter_stream,
        dead_letter_subjects,
        duplicate_window=duplicate_window,
    )


_envelope = msgspec.json.Decoder(dict[str, msgspec.Raw])
_parts = msgspec.json.Decoder(list[msgspec.Raw])


def _batch_of(data: bytes) -> list[msgspec.Raw] | str | None:
    """The signals of a batch message (`{"signals": [...]}`), why it is not a valid batch, or
    None for a message of one signal."""
    try:
        envelope = _envelope.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError):
        return None  # refused as a signal, with the reason, by the reader
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
        reader: SignalReader,
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
        keys: ApiKeyStore | None = None,
        clock: Clock | None = None,
        limiter: RateLimiter | None = None,
        require_key: bool = False,
    ) -> None:
        if require_key and (keys is None or clock is None):
            raise ValueError("require_key needs the key store and a clock")
        self.jetstream = JetStreamConsumer(
            js,
            self._handle,
            stream=stream_name,
            subjects=subjects,
            durable=durable,
            dead_letter_stream=dead_letter_stream,
            dead_letter_subjects=dead_letter_subjects,
            dead_letter_subject=dead_letter_subject,
            duplicate_window=duplicate_window,
            name="signal consumer",
            fetch_size=self._fetch_size,
            batch_size=batch_size,
            max_deliver=max_deliver,
            ack_wait=ack_wait,
            batches_in_flight=batches_in_flight,
            fetch_timeout=fetch_timeout,
            retry_delay=retry_delay,
            max_retry_delay=max_retry_delay,
            logger=logger,
        )
        self.accept = accept
        self.reader = reader
        self.keys = keys
        self.clock = clock
        self.limiter = limiter
        self.require_key = require_key
        self.log = self.jetstream.log
        self._commit_slots = asyncio.Semaphore(COMMITS_IN_PARALLEL)
        # In the last fetch; until one came, as if every message were a full batch message, so
        # that a first fetch in a burst of them is not 500 x 1,000 signals.
        self._signals_per_message = float(MAX_BATCH)

    def _fetch_size(self) -> int:
        """Messages to fetch (at most the consumer's batch size): about FETCH_SIGNALS signals,
        so that the first of a burst of batch messages is committed while the rest still
        arrive."""
        return round(FETCH_SIGNALS / self._signals_per_message)

    @property
    def running(self) -> bool:
        """Whether the fetch loop is alive."""
        return self.jetstream.running

    async def start(self) -> None:
        """Ensures the streams and the durable consumer, then fetches in a background task."""
        await self.jetstream.start()

    async def stop(self, *, grace: float = 30.0) -> None:
        """Lets the batch in flight finish (cancelling it after `grace` s), then returns."""
        await self.jetstream.stop(grace=grace)

    async def _handle(self, msgs: Sequence[Msg]) -> None:
        """Validates the fetched messages group by group and commits each group of about
        COMMIT_GROUP signals as soon as it is whole: a fetch of batch messages holds tens of
        thousands of signals, and PostgreSQL commits one group while the next is validated."""
        refused: list[tuple[Msg, str, str | None]] = []
        all_refused: list[tuple[Msg, list[_Refused]]] = []
        unchecked: list[Msg] = []  # their key could not be looked up: they come back
        max_deliver = self.jetstream.max_deliver
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

        try:
            for index, msg in enumerate(msgs):
                admitted = await self._admit(msg)
                if admitted is False:
                    if self.jetstream.last_delivery(msg):
                        reason = f"its API key could not be looked up in {max_deliver} deliveries"
                        refused.append((msg, reason, None))
                    else:
                        unchecked.append(msg)
                    continue
                if isinstance(admitted, str):  # refused unread: no signal id to name
                    refused.append((msg, admitted, None))
                    continue
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
            for msg in unchecked:
                await self.jetstream.nak(msg)
            for msg, dead in all_refused:
                if await self._dead_letter_all(msg, dead):
                    await self.jetstream.term(msg)
                else:
                    await self.jetstream.nak(msg)
        except asyncio.CancelledError:
            # Stopping: uncommitted messages come back after ack_wait, committed ones are
            # duplicates then.
            for task in commits:
                task.cancel()
            raise
        finally:
            # Whatever failed above, the groups on their way commit and settle their messages.
            await asyncio.gather(*commits, return_exceptions=True)

    async def _admit(self, msg: Msg) -> bool | str:
        """True if the message may be ingested: it carries no key (and none is required), or a
        key that may ingest and is within its limit; else why it is refused (a dead letter's
        reason), or False if its key could not be looked up now."""
        if self.keys is None or self.clock is None:
            return True
        try:
            key = await carried_key(msg, self.keys, self.clock)
            if key is None:
                if self.require_key:
                    return missing_key().reason
                return True
            if msg.metadata.num_delivered <= 1:  # a redelivery was counted when first delivered
                spend(self.limiter, RouteClass.INGEST, key)
        except KeyRefused as refused:
            return refused.reason
        except Exception as error:
            self.log.warning("a signal's key could not be looked up", error=repr(error))
            return False
        if key.role not in _INGESTERS:
            names = ", ".join(sorted(r.value for r in _INGESTERS))
            return forbidden(f"role '{key.role.value}' may not do this; needs {names}").reason
        return True

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
            signal = self.reader.check(index, msg.data)
            if isinstance(signal, InvalidSignal):
                reason = f"{signal.field}: {signal.reason}"
                refused.append((msg, reason, signal.signal_id))
                return None
            received = self.reader.received(index, signal, msg.data)
            return _Delivery(msg, (received,), signal.id, message_id(msg) or signal.id)
        if isinstance(batch, str):
            refused.append((msg, batch, None))
            return None
        signals: list[ReceivedSignal] = []
        dead: list[_Refused] = []
        for position, raw in enumerate(batch):
            checked = self.reader.check(position, raw)
            if isinstance(checked, InvalidSignal):
                reason = f"$.signals[{position}]{checked.field[1:]}: {checked.reason}"
                dead.append(_Refused(bytes(raw), reason, checked.signal_id, position))
            else:
                signals.append(self.reader.received(position, checked, bytes(raw)))
        if not signals:
            all_refused.append((msg, dead))
            return None
        # Its valid signals are committed first; its invalid ones are dead-lettered before the
        # message is acknowledged (see _settle).
        first = signals[0].event_id
        return _Delivery(msg, tuple(signals), first, message_id(msg) or first, tuple(dead))

    async def _ingest(self, batch: list[_Delivery]) -> None:
        # One commit for many publishers: the span links each one's trace, by its headers.
        with tracer().start_as_current_span(
            "ingest signals", kind=trace.SpanKind.CONSUMER, record_exception=False
        ) as span:
            if span.is_recording():
                span.set_attribute(
                    CORRELATION_ATTRIBUTE, [delivery.correlation_id for delivery in batch]
                )
                for delivery in batch:
                    context = context_from(delivery.msg.headers)
                    if context is not None:
                        span.add_link(trace.get_current_span(context).get_span_context())
            try:
                with SIGNAL_BATCH_SECONDS.labels("nats").time():
                    new = await self.accept([s for d in batch for s in d.signals])
            except Exception as error:
                span.set_status(trace.StatusCode.ERROR)
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
        # Committed already: if the ack is lost, the redelivery is a duplicate by event id.
        if await self.jetstream.ack(delivery.msg):
            self.log.debug(
                "signal accepted",
                event_id=delivery.event_id,
                correlation_id=delivery.correlation_id,
                signals=len(delivery.signals),
                accepted=accepted,
            )

    async def _retry_later(self, batch: list[_Delivery], error: Exception) -> None:
        max_deliver = self.jetstream.max_deliver
        last = [d for d in batch if self.jetstream.last_delivery(d.msg)]
        self.log.warning(
            "signal batch not committed; retrying",
            count=len(batch),
            last_attempts=len(last),
            error=repr(error),
            event_ids=[d.event_id for d in batch[:20]],
        )
        for delivery in batch:
            if not self.jetstream.last_delivery(delivery.msg):
                await self.jetstream.nak(delivery.msg)
        for delivery in last:
            reason = f"ingest failed after {max_deliver} deliveries: {error!r}"
            if len(batch) > 1:
                # Its last chance: alone, so that a bad neighbour cannot sink it.
                try:
                    new = await self.accept(delivery.signals)
                except Exception as alone:
                    reason = f"ingest failed after {max_deliver} deliveries: {alone!r}"
                else:
                    await self._settle(delivery, accepted=sum(new))
                    continue
            await self._refuse(delivery.msg, reason, delivery.event_id)

    async def _settle(self, delivery: _Delivery, *, accepted: int) -> None:
        """After its signals are committed: dead-letters its invalid ones, then acknowledges.
        If a dead letter cannot be stored, it comes back (its signals then are duplicates),
        unless this was its last delivery."""
        if delivery.refused and not await self._dead_letter_all(delivery.msg, delivery.refused):
            if not self.jetstream.last_delivery(delivery.msg):
                await self.jetstream.nak(delivery.msg)
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
            await self.jetstream.term(msg)
        else:
            await self.jetstream.nak(msg)

    async def _dead_letter(
        self, msg: Msg, data: bytes, reason: str, event_id: str | None, part: int | None = None
    ) -> bool:
        stored = await self.jetstream.dead_letter(msg, data, reason, event_id, part)
        if stored:
            SIGNALS.labels("nats", "dead_lettered").inc()
        return stored
