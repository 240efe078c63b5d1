"""Defines a segment or a new version of it; the evaluator then backfills its members."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from application.conflicts import retry_on_conflict
from domain.segments.aggregate import Segment, check_segment_key
from domain.shared.errors import DomainError, NotFound

if TYPE_CHECKING:
    from domain.segments.conditions import Condition
    from ports.clock import Clock
    from ports.segments import SegmentRepository

__all__ = ["DefineSegment", "DefinedSegment", "DeleteSegment", "SegmentDraft", "SegmentExists"]


@dataclass(frozen=True, slots=True)
class SegmentDraft:
    name: str
    description: str
    condition: Condition


@dataclass(frozen=True, slots=True)
class DefinedSegment:
    segment: Segment
    created: bool  # the key was new (or deleted before)
    changed: bool  # False: the draft was the definition in force, nothing was recorded


class SegmentExists(DomainError):
    """POST of a key that holds a different definition; PUT changes it."""


class DefineSegment:
    """Creates or redefines; the same draft twice records nothing, so a retry is harmless."""

    def __init__(self, segments: SegmentRepository, clock: Clock) -> None:
        self.segments = segments
        self.clock = clock

    async def __call__(
        self, key: str, draft: SegmentDraft, author: str, *, replace: bool = True
    ) -> DefinedSegment:
        check_segment_key(key)

        async def attempt() -> DefinedSegment:
            now = self.clock.now()
            segment = await self.segments.load(key)
            if segment is None:
                segment = Segment.define(
                    key, draft.name, draft.description, draft.condition, author, now
                )
                await self.segments.save(segment)
                return DefinedSegment(segment, created=True, changed=True)
            was_deleted = segment.deleted
            if not replace and not was_deleted:
                if segment.same_as(draft.name, draft.description, draft.condition):
                    return DefinedSegment(segment, created=False, changed=False)
                raise SegmentExists(f"segment {key!r} exists with another definition; PUT it")
            changed = segment.redefine(draft.name, draft.description, draft.condition, author, now)
            if changed:
                await self.segments.save(segment)
            return DefinedSegment(segment, created=was_deleted, changed=changed)

        return await retry_on_conflict(attempt)


class DeleteSegment:
    """Its members exit it; its history stays."""

    def __init__(self, segments: SegmentRepository, clock: Clock) -> None:
        self.segments = segments
        self.clock = clock

    async def __call__(self, key: str, author: str) -> None:
        async def attempt() -> None:
            segment = await self.segments.load(key)
            if segment is None or segment.deleted:
                raise NotFound(f"no segment {key!r}")
            segment.delete(author, self.clock.now())
            await self.segments.save(segment)

        await retry_on_conflict(attempt)
