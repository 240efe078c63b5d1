"""Triggers as the read model knows them: their definitions and their firings.

Trigger aggregates are kept by the unit of work: `uow.repository(Trigger)`, by `trigger_id(key)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from datetime import datetime
    from uuid import UUID

__all__ = [
    "FiringPage",
    "FiringRecord",
    "InvalidFiringCursor",
    "TriggerReadModel",
    "TriggerSummary",
]


class InvalidFiringCursor(ValueError):
    """A firings cursor this service did not hand out."""


@dataclass(frozen=True, slots=True)
class TriggerSummary:
    """A trigger as listed: its definition in force, or its last one if deleted."""

    key: str
    trigger_id: UUID
    name: str
    description: str
    version: int
    on: dict[str, Any]
    updated_at: datetime
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class FiringRecord:
    """One firing: which version of the trigger fired, for whom, on which source event."""

    firing_id: UUID
    trigger_version: int
    customer_id: UUID
    source_kind: str
    source_stream_id: UUID
    source_version: int
    source_occurred_at: datetime
    source_recorded_at: datetime
    fired_at: datetime
    signal_type: str | None
    signal_event_id: str | None
    segment_key: str | None
    exit_reason: str | None


@dataclass(frozen=True, slots=True)
class FiringPage:
    firings: list[FiringRecord]
    next_cursor: str | None


class TriggerReadModel(Protocol):
    """Triggers as defined now, and their firings from the projection (a moment behind)."""

    async def summaries(self) -> list[TriggerSummary]:
        """Every trigger not deleted, by key."""
        ...

    async def summary(self, key: str) -> TriggerSummary | None:
        """The trigger under `key`, deleted or not; None if there never was one."""
        ...

    async def firings(self, trigger_id: UUID, *, after: str | None, limit: int) -> FiringPage:
        """Newest first; `after` is the previous page's cursor."""
        ...
