"""Read models built from the global log: each projection folds events into tables it owns."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import datetime
    from uuid import UUID

__all__ = ["LoggedEvent", "Projection"]

Conn = TypeVar("Conn", contravariant=True)


class LoggedEvent(Protocol):
    """An event as the global log hands it out, its payload as plain JSON values."""

    @property
    def stream_id(self) -> UUID: ...

    @property
    def topic(self) -> str: ...

    @property
    def recorded_at(self) -> datetime: ...

    @property
    def data(self) -> Mapping[str, Any]: ...

    @property
    def payload(self) -> bytes:
        """The payload as stored (JSON), for readers that decode it their own way."""
        ...


class Projection(Protocol[Conn]):
    """A read model: applies the events it handles through the runner's connection."""

    @property
    def name(self) -> str:
        """Where its position is tracked; stable across releases."""
        ...

    @property
    def topics(self) -> frozenset[str]:
        """The event topics it reads; the runner skips the others."""
        ...

    @property
    def tables(self) -> tuple[str, ...]:
        """The tables it owns, which a rebuild replaces."""
        ...

    def writing_to(self, suffix: str) -> Projection[Conn]:
        """The same projection writing to its tables' names with `suffix`, for rebuilds."""
        ...

    async def apply(self, conn: Conn, events: Sequence[LoggedEvent]) -> None:
        """Writes the events' effects in the caller's transaction, in log order."""
        ...
