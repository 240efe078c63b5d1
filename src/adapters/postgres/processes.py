"""Runs any process as a projection of the runner: its topics from the codec's catalog, its page
decoded to domain events (upcast from the class version each was stored at), its ports bound
to the runner's connection and transaction."""

from __future__ import annotations

from typing import TYPE_CHECKING, Generic, TypeVar, cast

from adapters.postgres.codec import EventCodec

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import asyncpg

    from adapters.postgres.event_store import RecordedEvent
    from ports.processes import Process
    from ports.projections import LoggedEvent

__all__ = ["ProcessProjection"]

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
        decode = self.codec.decode
        typed = [
            decode(e.stream_id, e.version, e.topic, e.class_version, e.recorded_at, e.payload)
            for e in cast("Sequence[RecordedEvent]", events)
        ]
        await self.process.handle(typed, self.ports(conn))
