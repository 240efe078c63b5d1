"""Defines a segment or a new version of it; the evaluator then backfills its members."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from application.conflicts import retry_on_conflict
from domain.segments.aggregate import Segment, check_segment_key, segment_id
from domain.shared.errors import DomainError, NotFound

if TYPE_CHECKING:
    from domain.segments.conditions import Condition
    from ports.clock import Clock
    from ports.unit_of_work import Repository, UnitsOfWork

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

    def __init__(self, uows: UnitsOfWork, clock: Clock) -> None:
        self.uows = uows
        self.clock = clock

    async def __call__(
        self, key: str, draft: SegmentDraft, author: str, *, replace: bool = True
    ) -> DefinedSegment:
        check_segment_key(key)

        async def attempt() -> DefinedSegment:
            async with self.uows() as uow:
                segments = uow.repository(Segment)
                segment = await _load(segments, key)
                now = self.clock.now()
                if segment is None:
                    segment = Segment.define(
                        key, draft.name, draft.description, draft.condition, author, now
                    )
                    segments.add(segment)
                    return DefinedSegment(segment, created=True, changed=True)
                was_deleted = segment.deleted
                if not replace and not was_deleted:
                    if segment.same_as(draft.name, draft.description, draft.condition):
                        return DefinedSegment(segment, created=False, changed=False)
                    raise SegmentExists(f"segment {key!r} exists with another definition; PUT it")
                changed = segment.redefine(
                    draft.name, draft.description, draft.condition, author, now
                )
                if changed:
                    segments.add(segment)
                return DefinedSegment(segment, created=was_deleted, changed=changed)

        return await retry_on_conflict(attempt)


class DeleteSegment:
    """Its members exit it; its history stays."""

    def __init__(self, uows: UnitsOfWork, clock: Clock) -> None:
        self.uows = uows
        self.clock = clock

    async def __call__(self, key: str, author: str) -> None:
        async def attempt() -> None:
            async with self.uows() as uow:
                segments = uow.repository(Segment)
                segment = await _load(segments, key)
                if segment is None or segment.deleted:
                    raise NotFound(f"no segment {key!r}")
                segment.delete(author, self.clock.now())
                segments.add(segment)

        await retry_on_conflict(attempt)


async def _load(segments: Repository[Segment], key: str) -> Segment | None:
    stream = segment_id(check_segment_key(key))
    return (await segments.get([stream])).get(stream)
