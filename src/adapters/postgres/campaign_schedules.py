"""Broadcasts' memory in PostgreSQL (`0018_campaign_schedules.sql`), on the enrollments process's
connection; and the durable scheduler's work of running the schedules that fall due."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import structlog

from adapters.postgres.projections import LOCK_POSITION
from ports.campaign_schedules import Audience, DueSchedule

if TYPE_CHECKING:
    from collections.abc import Callable, Collection
    from datetime import datetime
    from uuid import UUID

    import asyncpg

    from ports.campaign_schedules import ScheduledPorts, TimedBroadcasts

__all__ = ["PostgresCampaignSchedules", "ScheduleTimers"]

# A new scheduled campaign (or a new version of one) is due at once: its first run counts its
# occurrences from when it went live (not from when this worker first looked, which may be after
# an occurrence due soon after). An archived one, or one no longer scheduled, loses its timer.
_MAKE = """
INSERT INTO campaign_schedules (campaign_id, version, checked_until, due_at)
SELECT campaign_id, version, least(coalesce(live_since, $1), $1), $1 FROM enrollment_campaigns
WHERE status = 'active' AND entry->>'type' = 'schedule'
ON CONFLICT (campaign_id) DO UPDATE SET version = EXCLUDED.version, due_at = $1
WHERE campaign_schedules.version <> EXCLUDED.version
"""
_DROP = """
DELETE FROM campaign_schedules s USING enrollment_campaigns c
WHERE c.campaign_id = s.campaign_id AND (c.status = 'archived' OR c.entry->>'type' <> 'schedule')
"""
_CLAIM_DUE = """
SELECT s.campaign_id, s.checked_until FROM campaign_schedules s
JOIN enrollment_campaigns c ON c.campaign_id = s.campaign_id
WHERE s.due_at <= $1 AND c.status = 'active'
ORDER BY s.due_at
LIMIT $2
FOR UPDATE OF s SKIP LOCKED
"""
_MOVED = "UPDATE campaign_schedules SET checked_until = $2, due_at = $3 WHERE campaign_id = $1"
_AUDIENCE = """
SELECT m.customer_id, coalesce(d.time_zone, d.attributes->>'time_zone') AS time_zone
FROM segment_members m
JOIN segments s ON s.segment_id = m.segment_id
LEFT JOIN customer_directory d ON d.customer_id = m.customer_id
WHERE s.key = $1 AND NOT s.deleted AND d.merged_into IS NULL
"""
_ENTERED = """
INSERT INTO campaign_schedule_entries (campaign_id, occurrence, customer_id)
SELECT $1, * FROM unnest($2::timestamptz[], $3::uuid[])
ON CONFLICT DO NOTHING
RETURNING customer_id
"""


class PostgresCampaignSchedules:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def claim_due(self, now: datetime, limit: int) -> list[DueSchedule]:
        await self.conn.execute(_DROP)
        await self.conn.execute(_MAKE, now)
        rows = await self.conn.fetch(_CLAIM_DUE, now, limit)
        return [DueSchedule(row["campaign_id"], row["checked_until"]) for row in rows]

    async def moved(
        self, campaign_id: UUID, checked_until: datetime, due_at: datetime | None
    ) -> None:
        await self.conn.execute(_MOVED, campaign_id, checked_until, due_at)

    async def audience(self, segment: str) -> list[Audience]:
        rows = await self.conn.fetch(_AUDIENCE, segment)
        return [Audience(row["customer_id"], row["time_zone"]) for row in rows]

    async def entered(
        self, campaign_id: UUID, entries: Collection[tuple[UUID, datetime]]
    ) -> set[UUID]:
        if not entries:
            return set()
        customers = [customer for customer, _ in entries]
        occurrences = [occurrence for _, occurrence in entries]
        rows = await self.conn.fetch(_ENTERED, campaign_id, occurrences, customers)
        return {row[0] for row in rows}


class ScheduleTimers:
    """The durable scheduler's work: runs the due schedules in a transaction that takes turns
    with the enrollments process's pages and timer runs, so the claim, the entries and the
    timer's move commit together."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        process: TimedBroadcasts,
        ports: Callable[[asyncpg.Connection], ScheduledPorts],
    ) -> None:
        self.pool = pool
        self.process = process
        self.ports = ports
        self.log = structlog.get_logger("chorus.campaigns")

    async def __call__(self, batch: int) -> int:
        async with self.pool.acquire() as proxy, proxy.transaction():
            conn = cast("asyncpg.Connection", proxy)
            locked = await conn.fetchrow(LOCK_POSITION, self.process.name)
            if locked is None or locked["position"] is None:
                return 0
            return await self.process.scheduled(self.ports(conn), batch)
