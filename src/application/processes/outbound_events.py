"""Publishes outbound events as a projection of the global log: the bus is its read model.

The runner advances the position only after `handle` returns, and `handle` returns only once the
bus has acknowledged every message of the page; so every event goes out at least once. A page
that fails (or a crash after the acks and before the commit) is published again with the same
message ids, which the stream drops within its duplicate window and consumers can drop after.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from application.outbound.events import OUTBOUND_EVENTS, by_topic
from application.outbound.payloads import CloudEvent
from domain.catalog import class_of
from domain.triggers.aggregate import Firing
from domain.triggers.definition import SourceKind
from ports.bus import OutboundMessage

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from uuid import UUID

    from eventsourcing.domain import CanMutateAggregate

    from application.outbound.events import OutboundEvent
    from ports.bus import EventPublisher
    from ports.signal_traces import SignalTraces

__all__ = ["CONTENT_TYPE", "OutboundEvents", "in_rounds"]

CONTENT_TYPE = "application/cloudevents+json; charset=UTF-8"
_HEADERS = {"Content-Type": CONTENT_TYPE}


def in_rounds(
    messages: Iterable[tuple[tuple[UUID, ...], OutboundMessage]],
) -> list[list[OutboundMessage]]:
    """Groups messages, in log order with the customers each is about, into rounds published
    one after the other: a message is in a later round than every earlier one about any of its
    customers, so it is sent only once those are stored, even if a round fails half-way."""
    rounds: list[list[OutboundMessage]] = []
    next_round: dict[UUID, int] = {}
    for about, message in messages:
        n = max((next_round.get(customer, 0) for customer in about), default=0)
        if n == len(rounds):
            rounds.append([])
        rounds[n].append(message)
        for customer in about:
            next_round[customer] = n + 1
    return rounds


class OutboundEvents:
    """Publishes each mapped event as a CloudEvent on `<prefix>.out.<subject>`, in log order
    per customer, at least once, with the stable id `<stream id>:<version>`.

    It records nothing in the log, so it needs no ports of the runner's: the bus is its own.
    """

    follows: tuple[str, ...] = ()
    page_size: int | None = None

    def __init__(
        self,
        publisher: EventPublisher,
        *,
        prefix: str = "chorus",
        source: str = "chorus",
        events: Iterable[OutboundEvent] = OUTBOUND_EVENTS,
        name: str = "outbound_events",
        traces: SignalTraces | None = None,
    ) -> None:
        self.publisher = publisher
        self.traces = traces
        self.prefix = prefix
        self.source = source
        self.name = name
        self.events = {class_of(topic): entry for topic, entry in by_topic(events).items()}
        self.handles: tuple[type[Any], ...] = tuple(self.events)
        self._encoder = msgspec.json.Encoder()

    def message(
        self, event: CanMutateAggregate[UUID], trace_context: str | None = None
    ) -> tuple[tuple[UUID, ...], OutboundMessage]:
        """The message for one event, and the customers it is about; with the `traceparent`
        of the trace it goes on, if any (ADR 0020)."""
        entry = self.events[type(event)]
        about = entry.about(event)
        event_id = f"{event.originator_id}:{event.originator_version}"
        envelope = CloudEvent(
            id=event_id,
            source=self.source,
            type=entry.type,
            subject=str(about[0]),
            time=event.timestamp,
            dataschema=entry.dataschema,
            version=entry.version,
            data=entry.build(event),
        )
        return about, OutboundMessage(
            f"{self.prefix}.out.{entry.subject}",
            self._encoder.encode(envelope),
            event_id,
            _HEADERS if trace_context is None else {**_HEADERS, "traceparent": trace_context},
        )

    async def handle(self, events: Sequence[CanMutateAggregate[UUID]], ports: object) -> None:
        traced = await self._traces_of(events)
        for batch in in_rounds(
            self.message(e, _context_of(e, traced)) for e in events if type(e) in self.events
        ):
            await self.publisher.publish(batch)

    async def _traces_of(self, events: Sequence[CanMutateAggregate[UUID]]) -> Mapping[UUID, str]:
        """The trace contexts of the signals that fired the page's triggers: a consumer of the
        firing (a service that then asks for a send) goes on in the signal's trace."""
        if self.traces is None:
            return {}
        signals = {signal for e in events if (signal := _signal_of(e)) is not None}
        return await self.traces.received_in(signals) if signals else {}


def _context_of(event: CanMutateAggregate[UUID], traced: Mapping[UUID, str]) -> str | None:
    signal = _signal_of(event) if traced else None
    return None if signal is None else traced.get(signal)


def _signal_of(event: CanMutateAggregate[UUID]) -> UUID | None:
    """The signal that caused the event, when it is a firing on a signal."""
    if isinstance(event, Firing.Fired) and event.source_kind == SourceKind.SIGNAL:
        source: UUID = event.source_stream_id
        return source
    return None
