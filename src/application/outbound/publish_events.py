"""Publishes outbound events as a projection of the global log: the bus is its read model.

The runner advances the position only after `apply` returns, and `apply` returns only once the
bus has acknowledged every message of the page; so every event goes out at least once. A page
that fails (or a crash after the acks and before the commit) is published again with the same
message ids, which the stream drops within its duplicate window and consumers can drop after.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import msgspec

from application.outbound.events import OUTBOUND_EVENTS, by_topic
from application.outbound.payloads import CloudEvent
from ports.bus import OutboundMessage

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from uuid import UUID

    from application.outbound.events import OutboundEvent, StoredEvent
    from ports.bus import EventPublisher
    from ports.projections import LoggedEvent

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
    per customer, at least once, with the stable id `<stream id>:<version>`."""

    # No tables, so the runner refuses to rebuild it: that would publish the whole history
    # again, where a consumer that wants it replays the stream.
    tables: tuple[str, ...] = ()

    def __init__(
        self,
        publisher: EventPublisher,
        *,
        prefix: str = "chorus",
        source: str = "chorus",
        events: Iterable[OutboundEvent] = OUTBOUND_EVENTS,
        name: str = "outbound_events",
    ) -> None:
        self.publisher = publisher
        self.prefix = prefix
        self.source = source
        self.name = name
        self.events = by_topic(events)
        self.topics = frozenset(self.events)
        self._encoder = msgspec.json.Encoder()

    def writing_to(self, suffix: str) -> OutboundEvents:
        return self

    def message(self, event: StoredEvent) -> tuple[tuple[UUID, ...], OutboundMessage]:
        """The message for one event, and the customers it is about."""
        entry = self.events[event.topic]
        about = entry.about(event)
        event_id = f"{event.stream_id}:{event.version}"
        envelope = CloudEvent(
            id=event_id,
            source=self.source,
            type=entry.type,
            subject=str(about[0]),
            time=event.recorded_at,
            dataschema=entry.dataschema,
            version=entry.version,
            data=entry.build(event),
        )
        return about, OutboundMessage(
            f"{self.prefix}.out.{entry.subject}",
            self._encoder.encode(envelope),
            event_id,
            _HEADERS,
        )

    async def apply(self, conn: object, events: Sequence[LoggedEvent]) -> None:
        # The log hands out RecordedEvents, which carry their stream version.
        stored = cast("Sequence[StoredEvent]", events)
        for batch in in_rounds(self.message(e) for e in stored if e.topic in self.events):
            await self.publisher.publish(batch)
