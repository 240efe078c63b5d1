"""Process managers: what follows the log and decides, on typed events, what happens next."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, TypeVar, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence
    from uuid import UUID

    from eventsourcing.domain import Aggregate, CanMutateAggregate

__all__ = ["AggregateSaves", "EventLog", "Process", "TypedPage", "events_of", "streams_of"]

Ports = TypeVar("Ports", contravariant=True)


class Process(Protocol[Ports]):
    """Handles the events of the classes it names, page by page in log order; what it records
    through `ports` commits with its place in the log, so each page counts exactly once."""

    @property
    def name(self) -> str:
        """Where its position is tracked; stable across releases."""
        ...

    @property
    def handles(self) -> tuple[type[CanMutateAggregate[UUID]], ...]:
        """The event classes it reads; the others pass it by."""
        ...

    @property
    def follows(self) -> tuple[str, ...]:
        """The read models it reads, which must have applied every event of its page."""
        ...

    @property
    def page_size(self) -> int | None:
        """How many events a page holds at most; None for the runner's own."""
        ...

    async def handle(self, events: Sequence[CanMutateAggregate[UUID]], ports: Ports) -> None:
        """Decides and records what follows the events, through `ports`."""
        ...


class EventLog(Protocol):
    """Appends events a process records, in its transaction."""

    async def append(self, events: Collection[CanMutateAggregate[UUID]]) -> None:
        """Appends the events; one whose place in its stream is taken fails them all."""
        ...

    async def append_new(self, events: Collection[CanMutateAggregate[UUID]]) -> int:
        """Appends the events whose place in their stream is free; how many were."""
        ...


class AggregateSaves(Protocol):
    """Saves aggregates a process changed, in its transaction, as a unit of work's commit saves
    them: their events with the read tables written in their commit (a conversation's holder,
    and so its agent's load)."""

    async def save(self, aggregates: Collection[Aggregate]) -> None:
        """Appends the aggregates' pending events and writes what lists them; an event whose
        place in its stream is taken fails them all."""
        ...


@runtime_checkable
class TypedPage(Protocol):
    """A page that tells each event's class and stream without decoding the event (the
    runner's), and decodes only the events asked for."""

    def stream_ids(self, *kinds: type) -> list[UUID]:
        """The streams of the events of these classes (or their subclasses), in log order."""
        ...

    def of(self, *kinds: type) -> list[CanMutateAggregate[UUID]]:
        """The events of these classes (or their subclasses), in log order."""
        ...


def streams_of(events: Sequence[CanMutateAggregate[UUID]], *kinds: type) -> list[UUID]:
    """The streams of the page's events of these classes, in log order: read without decoding
    where the page can tell them, so a process that acts on a few streams of a busy topic
    decodes only their events."""
    if isinstance(events, TypedPage):
        return events.stream_ids(*kinds)
    return [event.originator_id for event in events if isinstance(event, kinds)]


def events_of(
    events: Sequence[CanMutateAggregate[UUID]], *kinds: type
) -> list[CanMutateAggregate[UUID]]:
    """The page's events of these classes, in log order, the others left undecoded."""
    if isinstance(events, TypedPage):
        return events.of(*kinds)
    return [event for event in events if isinstance(event, kinds)]
