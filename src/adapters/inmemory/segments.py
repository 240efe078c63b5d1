"""Segments as their in-memory streams say; their members from the Entered and Exited facts."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast
from uuid import UUID

from eventsourcing.utils import get_topic

from adapters.cursors import cursor_of, uuid_of_cursor
from domain.segments.aggregate import Membership, Segment, check_segment_key, segment_id
from domain.segments.conditions import condition_document
from ports.segments import Member, MemberPage, SegmentSummary

if TYPE_CHECKING:
    from datetime import datetime

    from adapters.inmemory.storage import InMemoryStorage

__all__ = ["InMemorySegments", "members_of"]

_ENTERED = get_topic(Membership.Entered)
_EXITED = get_topic(Membership.Exited)


def members_of(storage: InMemoryStorage, segment: UUID) -> dict[UUID, datetime]:
    """Who is in the segment now, and since when: the last fact of each membership wins."""
    inside: dict[UUID, datetime] = {}
    for event in storage.events.read({_ENTERED, _EXITED}):
        data = event.data
        if UUID(data["segment_id"]) != segment:
            continue
        customer = UUID(data["customer_id"])
        if event.topic == _ENTERED:
            inside[customer] = event.recorded_at
        else:
            inside.pop(customer, None)
    return inside


class InMemorySegments:
    """Segments by key and members by segment (SegmentReadModel), read from the log."""

    def __init__(self, storage: InMemoryStorage) -> None:
        self.storage = storage

    def _load(self, key: str) -> Segment | None:
        stream = segment_id(check_segment_key(key))
        found = self.storage.events.load([stream]).get(stream)
        return cast("Segment", found) if found is not None else None

    @property
    def keys(self) -> list[str]:
        """The keys ever defined, sorted."""
        streams = self.storage.events.started_by(Segment)
        return sorted(
            cast("Segment", found).key for found in self.storage.events.load(streams).values()
        )

    async def summaries(self) -> list[SegmentSummary]:
        found = [await self.summary(key) for key in self.keys]
        return [summary for summary in found if summary is not None]

    async def summary(self, key: str) -> SegmentSummary | None:
        segment = self._load(key) if key in self.keys else None
        if segment is None or segment.deleted:
            return None
        return SegmentSummary(
            segment.key,
            segment.id,
            segment.name,
            segment.description,
            segment.number,
            condition_document(segment.condition),
            segment.changed_at,
            await self.count(segment.id),
        )

    async def members(self, segment_id: UUID, *, after: str | None, limit: int) -> MemberPage:
        start = uuid_of_cursor(after)
        inside = sorted(members_of(self.storage, segment_id).items())
        listed = [Member(c, at) for c, at in inside if start is None or c > start]
        page = listed[:limit]
        more = len(listed) > limit
        return MemberPage(page, cursor_of(page[-1].customer_id) if more else None)

    async def count(self, segment_id: UUID) -> int:
        return len(members_of(self.storage, segment_id))

    async def segments_of(self, customer_id: UUID) -> list[str]:
        keys = []
        for key in self.keys:
            segment = self._load(key)
            if (
                segment is not None
                and not segment.deleted
                and customer_id in members_of(self.storage, segment.id)
            ):
                keys.append(key)
        return keys
