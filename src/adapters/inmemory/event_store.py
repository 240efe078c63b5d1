"""Streams of events in a list: appended with optimistic versions, read back as a global log."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
from eventsourcing.utils import get_topic

from ports.unit_of_work import ConcurrencyConflict

if TYPE_CHECKING:
    from collections.abc import Collection, Iterator, Mapping, Sequence
    from datetime import datetime
    from uuid import UUID

    from eventsourcing.domain import Aggregate, CanMutateAggregate

__all__ = ["InMemoryEventStore", "RecordedEvent", "declared_subject"]

# As the PostgreSQL codec stores them: the header lives beside the payload, not in it.
_HEADER_FIELDS = frozenset({"originator_id", "originator_version", "timestamp"})


def declared_subject(about: Aggregate | CanMutateAggregate[UUID]) -> UUID | None:
    """The customer an aggregate or a loose event declares it is about (`subject_id`), if any."""
    subject: UUID | None = getattr(about, "subject_id", None)
    return subject


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """An event as stored: a domain event, or a payload recorded without one (received signals)."""

    position: int
    stream_id: UUID
    version: int
    topic: str
    recorded_at: datetime
    subject_id: UUID | None
    event: CanMutateAggregate[UUID] | None = None
    raw: bytes | None = None

    @property
    def data(self) -> Mapping[str, Any]:
        """The payload as plain JSON values, as a PostgreSQL reader decodes it."""
        if self.event is None:
            decoded: dict[str, Any] = msgspec.json.decode(self.raw or b"{}")
            return decoded
        body = {
            f.name: getattr(self.event, f.name)
            for f in dataclasses.fields(self.event)  # type: ignore[arg-type]
            if f.name not in _HEADER_FIELDS
        }
        plain: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(body))
        return plain

    @property
    def payload(self) -> bytes:
        return (
            self.raw
            if self.event is None and self.raw is not None
            else msgspec.json.encode(self.data)
        )

    @property
    def type(self) -> str:
        return self.topic.rpartition(".")[2]


class InMemoryEventStore:
    """Every stream's events, and one log of all of them in the order they were appended.

    Events are copied in and out, so an aggregate loaded twice is two aggregates, and nothing a
    caller does to its objects after a commit changes what was stored.
    """

    def __init__(self) -> None:
        self.log: list[RecordedEvent] = []
        self._streams: dict[UUID, list[RecordedEvent]] = {}

    def stream(self, stream_id: UUID) -> list[RecordedEvent]:
        return list(self._streams.get(stream_id, ()))

    def version_of(self, stream_id: UUID) -> int:
        return len(self._streams.get(stream_id, ()))

    def existing(self, stream_ids: Collection[UUID]) -> set[UUID]:
        return {stream_id for stream_id in stream_ids if stream_id in self._streams}

    def oldest_first(self, stream_ids: Collection[UUID]) -> list[UUID]:
        started = [self._streams[s][0] for s in set(stream_ids) if s in self._streams]
        return [first.stream_id for first in sorted(started, key=lambda e: e.position)]

    def started_by(self, kind: type[Aggregate]) -> list[UUID]:
        """The streams of aggregates of `kind`, oldest first."""
        topic = get_topic(kind)
        return [
            stream[0].stream_id
            for stream in self._streams.values()
            if getattr(stream[0].event, "originator_topic", None) == topic
        ]

    def load(self, stream_ids: Collection[UUID]) -> dict[UUID, Aggregate]:
        """The aggregates under these ids, replayed from copies of their events."""
        loaded: dict[UUID, Any] = {}
        for stream_id in stream_ids:
            aggregate: Any = None
            for recorded in self._streams.get(stream_id, ()):
                if recorded.event is not None:
                    aggregate = copy.deepcopy(recorded.event).mutate(aggregate)
            if aggregate is not None:
                loaded[stream_id] = aggregate
        return loaded

    def check(self, events: Sequence[CanMutateAggregate[UUID]]) -> None:
        """Raises ConcurrencyConflict unless each event is the next one of its stream."""
        following: dict[UUID, int] = {}
        for event in events:
            stream_id = event.originator_id
            expected = following.get(stream_id, self.version_of(stream_id) + 1)
            if event.originator_version != expected:
                raise ConcurrencyConflict(
                    f"stream {stream_id} is at version {expected - 1}, not"
                    f" {event.originator_version - 1}"
                )
            following[stream_id] = expected + 1

    def append(self, events: Sequence[tuple[CanMutateAggregate[UUID], UUID | None]]) -> None:
        """Appends the events, each with the customer it is about, or none if any conflicts."""
        self.check([event for event, _ in events])
        for event, subject in events:
            self._write(
                event.originator_id,
                event.originator_version,
                get_topic(type(event)),
                event.timestamp,
                subject,
                event=copy.deepcopy(event),
            )

    def save(self, *aggregates: Aggregate) -> None:
        """Appends the aggregates' pending events, or none of them if any conflicts."""
        pending = [(e, declared_subject(a)) for a in aggregates for e in a.pending_events]
        self.append(pending)
        for aggregate in aggregates:
            aggregate.collect_events()

    def append_raw(
        self,
        stream_id: UUID,
        version: int,
        topic: str,
        at: datetime,
        payload: bytes,
        subject: UUID | None = None,
    ) -> bool:
        """Appends a payload without a domain class; False if that version was taken."""
        if self.version_of(stream_id) >= version:
            return False
        if self.version_of(stream_id) != version - 1:
            raise ConcurrencyConflict(f"stream {stream_id} is not at version {version - 1}")
        self._write(stream_id, version, topic, at, subject, raw=payload)
        return True

    def read(self, topics: Collection[str] | None = None) -> Iterator[RecordedEvent]:
        """The log in order, only `topics` if given."""
        for recorded in list(self.log):
            if topics is None or recorded.topic in topics:
                yield recorded

    def _write(
        self,
        stream_id: UUID,
        version: int,
        topic: str,
        at: datetime,
        subject: UUID | None,
        *,
        event: CanMutateAggregate[UUID] | None = None,
        raw: bytes | None = None,
    ) -> None:
        recorded = RecordedEvent(
            len(self.log) + 1, stream_id, version, topic, at, subject, event, raw
        )
        self.log.append(recorded)
        self._streams.setdefault(stream_id, []).append(recorded)
