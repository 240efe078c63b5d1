"""Segments as the read models know them: their definitions in force and who is in each.

Segment aggregates are kept by the unit of work: `uow.repository(Segment)`, by `segment_id(key)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ports.directory import InvalidCursor

if TYPE_CHECKING:
    from datetime import datetime
    from uuid import UUID


__all__ = [
    "InvalidCursor",
    "Member",
    "MemberPage",
    "SegmentReadModel",
    "SegmentSummary",
]


@dataclass(frozen=True, slots=True)
class SegmentSummary:
    """A segment as listed: its definition in force and its size."""

    key: str
    segment_id: UUID
    name: str
    description: str
    version: int
    condition: dict[str, Any]
    updated_at: datetime
    members: int


@dataclass(frozen=True, slots=True)
class Member:
    customer_id: UUID
    entered_at: datetime


@dataclass(frozen=True, slots=True)
class MemberPage:
    members: list[Member]
    next_cursor: str | None


class SegmentReadModel(Protocol):
    """Segments and their members from the projections (a moment behind the log)."""

    async def summaries(self) -> list[SegmentSummary]:
        """Every segment not deleted, by key."""
        ...

    async def summary(self, key: str) -> SegmentSummary | None: ...

    async def members(self, segment_id: UUID, *, after: str | None, limit: int) -> MemberPage:
        """Members in a stable order; `after` is the previous page's cursor."""
        ...

    async def count(self, segment_id: UUID) -> int: ...

    async def segments_of(self, customer_id: UUID) -> list[str]:
        """The keys of the segments the customer is in."""
        ...
