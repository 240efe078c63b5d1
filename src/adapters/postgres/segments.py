"""Segments as listed with their definitions; their members as a projection."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from adapters.cursors import cursor_of, uuid_of_cursor
from domain.catalog import topic_of
from domain.segments.aggregate import Membership
from ports.segments import Member, MemberPage, SegmentSummary

if TYPE_CHECKING:
    from collections.abc import Sequence

    import asyncpg

    from ports.projections import LoggedEvent

__all__ = ["PostgresSegments", "SegmentMembers"]

_SUMMARIES = """
SELECT s.key, s.segment_id, s.name, s.description, s.version, s.condition, s.updated_at,
       (SELECT count(*) FROM segment_members m WHERE m.segment_id = s.segment_id) AS members
FROM segments s WHERE NOT s.deleted AND ($1::text IS NULL OR s.key = $1) ORDER BY s.key
"""
_MEMBERS = """
SELECT customer_id, entered_at FROM segment_members
WHERE segment_id = $1 AND ($2::uuid IS NULL OR customer_id > $2)
ORDER BY customer_id LIMIT $3
"""
_ENTERED = topic_of(Membership.Entered)
_EXITED = topic_of(Membership.Exited)


class PostgresSegments:
    """Segments by key and their members (SegmentReadModel); definitions are listed in the
    commit that records them (`listings.SEGMENTS`)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def summaries(self) -> list[SegmentSummary]:
        return [_summary(row) for row in await self.pool.fetch(_SUMMARIES, None)]

    async def summary(self, key: str) -> SegmentSummary | None:
        row = await self.pool.fetchrow(_SUMMARIES, key)
        return _summary(row) if row is not None else None

    async def members(self, segment_id: UUID, *, after: str | None, limit: int) -> MemberPage:
        rows = await self.pool.fetch(_MEMBERS, segment_id, uuid_of_cursor(after), limit + 1)
        members = [Member(row["customer_id"], row["entered_at"]) for row in rows[:limit]]
        more = len(rows) > limit
        return MemberPage(members, cursor_of(members[-1].customer_id) if more else None)

    async def count(self, segment_id: UUID) -> int:
        found: int = await self.pool.fetchval(
            "SELECT count(*) FROM segment_members WHERE segment_id = $1", segment_id
        )
        return found

    async def segments_of(self, customer_id: UUID) -> list[str]:
        rows = await self.pool.fetch(
            "SELECT s.key FROM segment_members m JOIN segments s USING (segment_id)"
            " WHERE m.customer_id = $1 AND NOT s.deleted ORDER BY s.key",
            customer_id,
        )
        return [row["key"] for row in rows]


def _summary(row: asyncpg.Record) -> SegmentSummary:
    return SegmentSummary(
        row["key"],
        row["segment_id"],
        row["name"],
        row["description"],
        row["version"],
        json.loads(row["condition"]),
        row["updated_at"],
        row["members"],
    )


class SegmentMembers:
    """Who is in each segment, from the Entered and Exited facts the evaluator records."""

    name = "segment_members"
    topics = frozenset({_ENTERED, _EXITED})

    def __init__(self, suffix: str = "") -> None:
        self.table = "segment_members" + suffix
        self.tables = (self.table,)

    def writing_to(self, suffix: str) -> SegmentMembers:
        return SegmentMembers(suffix)

    async def apply(self, conn: asyncpg.Connection, events: Sequence[LoggedEvent]) -> None:
        # Last fact per membership wins; a page may hold an entry and an exit of the same one.
        latest: dict[tuple[UUID, UUID], tuple[bool, datetime]] = {}
        for event in events:
            data: dict[str, Any] = dict(event.data)
            key = (UUID(data["segment_id"]), UUID(data["customer_id"]))
            latest[key] = (event.topic == _ENTERED, event.recorded_at)
        entered = [(s, c, at) for (s, c), (inside, at) in latest.items() if inside]
        exited = [(s, c) for (s, c), (inside, _) in latest.items() if not inside]
        if exited:
            await conn.execute(
                f"DELETE FROM {self.table} t USING unnest($1::uuid[], $2::uuid[]) AS x(s, c)"
                " WHERE t.segment_id = x.s AND t.customer_id = x.c",
                [s for s, _ in exited],
                [c for _, c in exited],
            )
        if entered:
            await conn.execute(
                f"INSERT INTO {self.table} (segment_id, customer_id, entered_at)"
                " SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[])"
                " ON CONFLICT (segment_id, customer_id) DO UPDATE SET entered_at = EXCLUDED.entered_at",
                [s for s, _, _ in entered],
                [c for _, c, _ in entered],
                [at for _, _, at in entered],
            )
