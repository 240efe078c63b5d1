"""Runs any process as a projection of the runner: its topics from the codec's catalog, its page
decoded to domain events (upcast from the class version each was stored at), its ports bound
to the runner's connection and transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Generic, TypeVar, cast, overload

from adapters.postgres.codec import EventCodec

if TYPE_CHECKING:
    from collections.abc import Callable
    from uuid import UUID

    import asyncpg
    from eventsourcing.domain import CanMutateAggregate

    from adapters.postgres.event_store import RecordedEvent
    from ports.processes import Process
    from ports.projections import LoggedEvent

__all__ = ["DecodedPage", "ProcessProjection"]

P = TypeVar("P")


class ProcessProjection(Generic[P]):
    """A process, applied by the runner as a projection under the process's name. Not
    rebuildable: what a process records are facts, which read models are rebuilt from."""

    tables: tuple[str, ...] = ()

    def __init__(
        self,
        process: Process[P],
        ports: Callable[[asyncpg.Connection], P],
        codec: EventCodec | None = None,
    ) -> None:
        self.process = process
        self.ports = ports
        self.codec = codec or EventCodec()
        self.name = process.name
        self.topics = frozenset(self.codec.topics.topic_of(cls) for cls in process.handles)
        self.follows = process.follows
        if process.page_size is not None:
            self.page_size = process.page_size

    def writing_to(self, suffix: str) -> ProcessProjection[P]:
        return self

    async def apply(self, conn: asyncpg.Connection, events: Sequence[LoggedEvent]) -> None:
        # The runner hands out RecordedEvents, which carry their stream and class versions.
        page = DecodedPage(cast("Sequence[RecordedEvent]", events), self.codec)
        await self.process.handle(page, self.ports(conn))


class DecodedPage(Sequence["CanMutateAggregate[UUID]"]):
    """A page of stored events decoded to their classes as they are read: a process that
    looks at some classes only (`of`) decodes only those. The read-side lanes share the worker
    with attribution, and most of a page is signals few processes read."""

    __slots__ = ("_codec", "_decoded", "_events")

    def __init__(self, events: Sequence[RecordedEvent], codec: EventCodec) -> None:
        self._events = events
        self._codec = codec
        self._decoded: list[CanMutateAggregate[UUID] | None] = [None] * len(events)

    def __len__(self) -> int:
        return len(self._events)

    @overload
    def __getitem__(self, index: int) -> CanMutateAggregate[UUID]: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[CanMutateAggregate[UUID]]: ...

    def __getitem__(
        self, index: int | slice
    ) -> CanMutateAggregate[UUID] | Sequence[CanMutateAggregate[UUID]]:
        if isinstance(index, slice):
            return [self._at(i) for i in range(*index.indices(len(self._events)))]
        return self._at(index)

    def _at(self, index: int) -> CanMutateAggregate[UUID]:
        found = self._decoded[index]
        if found is None:
            e = self._events[index]
            found = self._decoded[index] = self._codec.decode(
                e.stream_id, e.version, e.topic, e.class_version, e.recorded_at, e.payload
            )
        return found

    def stream_ids(self, *kinds: type) -> list[UUID]:
        """The streams of the events of these classes (or their subclasses), in log order,
        read without decoding them."""
        class_of = self._codec.topics.class_of
        return [e.stream_id for e in self._events if issubclass(class_of(e.topic), kinds)]

    def of(self, *kinds: type) -> list[CanMutateAggregate[UUID]]:
        """The events of these classes (or their subclasses), in log order."""
        class_of = self._codec.topics.class_of
        return [
            self._at(i)
            for i, event in enumerate(self._events)
            if issubclass(class_of(event.topic), kinds)
        ]
