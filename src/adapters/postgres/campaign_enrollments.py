"""The campaign enrollments process's memory in PostgreSQL (`0016_campaign_timers.sql`, its goal
windows `0033_enrollment_goal_windows.sql`), on its runner's connection; the entries counted
against each version's enrollment cap (`0048_campaign_entry_counts.sql`), by the process and by
the API's units of work; and the durable scheduler's work of firing its timers."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

import msgspec
import structlog

from adapters.postgres.projections import LOCK_POSITION
from adapters.postgres.unit_of_work import PostgresUnitOfWork
from domain.campaign.aggregate import CampaignStatus
from domain.campaign.enrollment import PastEntry
from domain.campaign.journey import Entry
from ports.campaign_enrollments import EnrollmentRow, KnownCampaign, SentBy

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Sequence
    from datetime import datetime
    from uuid import UUID

    import asyncpg
    from eventsourcing.domain import Aggregate

    from adapters.postgres.event_store import PostgresEventStore
    from ports.campaign_enrollments import CampaignEnrollmentPorts, TimedEnrollments
    from ports.unit_of_work import UnitOfWork

__all__ = [
    "EnrollmentTimers",
    "PostgresCampaignStates",
    "PostgresCampaignTimers",
    "PostgresCustomerSegments",
    "PostgresEnrollmentCounts",
    "PostgresEnrollmentIndex",
    "PostgresStreams",
]

_entry = msgspec.json.Decoder(Entry)
_encoder = msgspec.json.Encoder()

_CAMPAIGNS = (
    "SELECT campaign_id, key, status, version, entry, archived_reason, live_since"
    " FROM enrollment_campaigns"
)
_SAVE_CAMPAIGNS = """
INSERT INTO enrollment_campaigns
    (campaign_id, key, status, version, entry, archived_reason, live_since)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int4[], $5::jsonb[], $6::text[],
                     $7::timestamptz[])
ON CONFLICT (campaign_id) DO UPDATE
SET key = EXCLUDED.key, status = EXCLUDED.status, version = EXCLUDED.version,
    entry = EXCLUDED.entry, archived_reason = EXCLUDED.archived_reason,
    live_since = EXCLUDED.live_since
"""
_COLUMNS = (
    "enrollment_id, campaign_id, version, customer_id, entry, entered_at, exited_at, sends,"
    " goal_until"
)
_PAST = """
SELECT customer_id, entered_at, exited_at FROM enrollment_index
WHERE campaign_id = $1 AND customer_id = ANY($2::uuid[]) ORDER BY customer_id, entry
"""
_ENROLLED = "SELECT count(*) FROM enrollment_index WHERE campaign_id = $1 AND version = $2"
# The row is locked until the entry's transaction ends: entries at once wait for it, and each
# sees the count the one before left (or the row it inserted), so none passes the cap.
_TAKE_PLACE = """
INSERT INTO campaign_entry_counts AS c (campaign_id, version, entered)
SELECT $1, $2, 1 WHERE $3::int4 > 0
ON CONFLICT (campaign_id, version) DO UPDATE SET entered = c.entered + 1
WHERE c.entered < $3::int4
RETURNING c.entered
"""
_SENDS = """
SELECT coalesce(sum(sends), 0) FROM enrollment_index
WHERE campaign_id = $1 AND customer_id = $2 AND enrollment_id IS DISTINCT FROM $3::uuid
"""
_ACTIVE = f"""
SELECT {_COLUMNS} FROM enrollment_index
WHERE exited_at IS NULL AND ($1::uuid[] IS NULL OR customer_id = ANY($1::uuid[]))
  AND ($2::uuid IS NULL OR campaign_id = $2)
"""
_OPEN_GOALS = f"""
SELECT {_COLUMNS} FROM enrollment_index
WHERE customer_id = ANY($1::uuid[]) AND goal_until >= $2 AND exited_at IS NOT NULL
"""
_KNOWN = "SELECT enrollment_id FROM enrollment_index WHERE enrollment_id = ANY($1::uuid[])"
_SAVE_ROWS = f"""
INSERT INTO enrollment_index ({_COLUMNS})
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int4[], $4::uuid[], $5::int4[],
                     $6::timestamptz[], $7::timestamptz[], $8::int4[], $9::timestamptz[])
ON CONFLICT (enrollment_id) DO UPDATE
SET version = EXCLUDED.version, exited_at = EXCLUDED.exited_at, sends = EXCLUDED.sends,
    goal_until = EXCLUDED.goal_until
"""
_NOTE_MESSAGES = """
INSERT INTO enrollment_messages (message_id, enrollment_id, step)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[]) ON CONFLICT (message_id) DO NOTHING
"""
_SENT_BY = """
SELECT message_id, enrollment_id, step FROM enrollment_messages
WHERE message_id = ANY($1::uuid[])
"""
_MESSAGES_OF = """
SELECT message_id FROM enrollment_messages WHERE enrollment_id = $1 AND step = $2
"""
_SET_TIMERS = """
INSERT INTO campaign_timers (enrollment_id, campaign_id, due_at)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[])
ON CONFLICT (enrollment_id) DO UPDATE SET campaign_id = EXCLUDED.campaign_id,
                                          due_at = EXCLUDED.due_at
"""
# Joined to the ids rather than `enrollment_id = ANY($1)`: the connection's prepared statement
# may go generic after five runs, and the generic plan of `= ANY` made while the table was empty
# (a broadcast with no waits clears timers page after page) scans it whole ever after, 15 times
# slower once 100,000 timers wait; the join's generic plan still finds each row by its key.
_CLEAR_TIMERS = """
DELETE FROM campaign_timers t USING unnest($1::uuid[]) AS cleared(id)
WHERE t.enrollment_id = cleared.id
"""
_CLAIM_DUE = """
SELECT t.enrollment_id FROM campaign_timers t
WHERE t.due_at <= $1
  AND NOT EXISTS (SELECT 1 FROM enrollment_campaigns c
                  WHERE c.campaign_id = t.campaign_id AND c.status = 'paused')
ORDER BY t.due_at
LIMIT $2
FOR UPDATE OF t SKIP LOCKED
"""
_PUT_OFF = """
UPDATE campaign_timers SET due_at = due_at + $1
WHERE enrollment_id = (
    SELECT t.enrollment_id FROM campaign_timers t
    WHERE NOT EXISTS (SELECT 1 FROM enrollment_campaigns c
                      WHERE c.campaign_id = t.campaign_id AND c.status = 'paused')
    ORDER BY t.due_at LIMIT 1 FOR UPDATE OF t SKIP LOCKED)
RETURNING enrollment_id
"""
_SEGMENTS_OF = """
SELECT m.customer_id, array_agg(s.key) AS keys
FROM segment_members m JOIN segments s ON s.segment_id = m.segment_id
WHERE m.customer_id = ANY($1::uuid[])
GROUP BY m.customer_id
"""


class PostgresStreams:
    def __init__(self, conn: asyncpg.Connection, store: PostgresEventStore) -> None:
        self.conn = conn
        self.store = store

    async def load(self, ids: Collection[UUID]) -> dict[UUID, Aggregate]:
        return await self.store.load(self.conn, ids)


class PostgresCampaignStates:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def load(self, campaign_ids: Collection[UUID] | None = None) -> list[KnownCampaign]:
        found = [
            KnownCampaign(
                row["campaign_id"],
                row["key"],
                CampaignStatus(row["status"]),
                row["version"],
                _entry.decode(row["entry"]),
                row["archived_reason"],
                row["live_since"],
            )
            for row in await self.conn.fetch(_CAMPAIGNS)
        ]
        if campaign_ids is None:
            return found
        return [c for c in found if c.campaign_id in campaign_ids]

    async def save(self, campaigns: Collection[KnownCampaign]) -> None:
        rows = [
            (
                c.campaign_id,
                c.key,
                c.status.value,
                c.version,
                _encoder.encode(c.entry).decode(),
                c.archived_reason,
                c.live_since,
            )
            for c in campaigns
        ]
        await self.conn.execute(_SAVE_CAMPAIGNS, *_columns(rows, 7))


class PostgresEnrollmentIndex:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def past(
        self, campaign_id: UUID, customers: Collection[UUID]
    ) -> dict[UUID, list[PastEntry]]:
        found: dict[UUID, list[PastEntry]] = {}
        for row in await self.conn.fetch(_PAST, campaign_id, list(customers)):
            entry = PastEntry(row["entered_at"], row["exited_at"])
            found.setdefault(row["customer_id"], []).append(entry)
        return found

    async def enrolled(self, campaign_id: UUID, version: int) -> int:
        count: int = await self.conn.fetchval(_ENROLLED, campaign_id, version)
        return count

    async def sends(
        self, campaign_id: UUID, customer_id: UUID, excluding: UUID | None = None
    ) -> int:
        count: int = await self.conn.fetchval(_SENDS, campaign_id, customer_id, excluding)
        return count

    async def active(
        self, customers: Collection[UUID] | None = None, campaign_id: UUID | None = None
    ) -> list[EnrollmentRow]:
        if customers is not None and not customers:
            return []
        wanted = None if customers is None else list(customers)
        return [EnrollmentRow(*row) for row in await self.conn.fetch(_ACTIVE, wanted, campaign_id)]

    async def open_goals(self, customers: Collection[UUID], at: datetime) -> list[EnrollmentRow]:
        if not customers:
            return []
        found = await self.conn.fetch(_OPEN_GOALS, list(customers), at)
        return [EnrollmentRow(*row) for row in found]

    async def known(self, enrollment_ids: Collection[UUID]) -> set[UUID]:
        return {row[0] for row in await self.conn.fetch(_KNOWN, list(enrollment_ids))}

    async def save(self, rows: Collection[EnrollmentRow]) -> None:
        values = [
            (
                r.enrollment_id,
                r.campaign_id,
                r.version,
                r.customer_id,
                r.entry,
                r.entered_at,
                r.exited_at,
                r.sends,
                r.goal_until,
            )
            for r in rows
        ]
        await self.conn.execute(_SAVE_ROWS, *_columns(values, 9))

    async def note_messages(self, messages: Sequence[tuple[UUID, SentBy]]) -> None:
        values = [(m, s.enrollment_id, s.step) for m, s in messages]
        await self.conn.execute(_NOTE_MESSAGES, *_columns(values, 3))

    async def sent_by(self, message_ids: Collection[UUID]) -> dict[UUID, SentBy]:
        rows = await self.conn.fetch(_SENT_BY, list(message_ids))
        return {row["message_id"]: SentBy(row["enrollment_id"], row["step"]) for row in rows}

    async def messages_of(self, sent: SentBy) -> list[UUID]:
        rows = await self.conn.fetch(_MESSAGES_OF, sent.enrollment_id, sent.step)
        return [row["message_id"] for row in rows]

    async def take_place(self, campaign_id: UUID, version: int, cap: int) -> bool:
        return await self.conn.fetchval(_TAKE_PLACE, campaign_id, version, cap) is not None


class PostgresCampaignTimers:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def set(self, timers: Collection[tuple[UUID, UUID, datetime]]) -> None:
        await self.conn.execute(_SET_TIMERS, *_columns(list(timers), 3))

    async def clear(self, enrollment_ids: Collection[UUID]) -> None:
        await self.conn.execute(_CLEAR_TIMERS, list(enrollment_ids))

    async def claim_due(self, now: datetime, limit: int) -> list[UUID]:
        return [row[0] for row in await self.conn.fetch(_CLAIM_DUE, now, limit)]


class PostgresCustomerSegments:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def of(self, customers: Collection[UUID]) -> dict[UUID, frozenset[str]]:
        rows = await self.conn.fetch(_SEGMENTS_OF, list(customers))
        return {row["customer_id"]: frozenset(row["keys"]) for row in rows}


class PostgresEnrollmentCounts:
    """Takes a place in the unit of work's own transaction, begun for it if it was not yet, so
    the place and the entry it counts commit together."""

    async def take_place(self, uow: UnitOfWork, campaign_id: UUID, version: int, cap: int) -> bool:
        if not isinstance(uow, PostgresUnitOfWork):
            raise TypeError(f"{uow!r} is not a PostgreSQL unit of work")
        conn = await uow.begun()
        return await conn.fetchval(_TAKE_PLACE, campaign_id, version, cap) is not None


class EnrollmentTimers:
    """The durable scheduler's work: fires the enrollments' due timers in a transaction that
    takes turns with the process's pages (and with other timer runs).

    A run that fails is taken again one timer at a time, and a timer that fails on its own is
    put off (`retry_after`) with its error logged, so that it holds up no other enrollment.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        process: TimedEnrollments,
        ports: Callable[[asyncpg.Connection], CampaignEnrollmentPorts],
        retry_after: timedelta = timedelta(minutes=5),
    ) -> None:
        self.pool = pool
        self.process = process
        self.ports = ports
        self.retry_after = retry_after
        self.log = structlog.get_logger("chorus.campaigns")

    async def __call__(self, batch: int) -> int:
        try:
            return await self._fire(batch)
        except Exception:
            if batch <= 1:
                raise
            self.log.exception("timer run failed: firing one at a time")
        done = 0
        for _ in range(batch):
            try:
                fired = await self._fire(1)
            except Exception as error:
                await self._put_off_the_first(error)
                continue
            if not fired:
                break
            done += fired
        return done

    async def _fire(self, batch: int) -> int:
        async with self.pool.acquire() as proxy, proxy.transaction():
            conn = cast("asyncpg.Connection", proxy)
            # The process's pages hold this lock while they run.
            locked = await conn.fetchrow(LOCK_POSITION, self.process.name)
            if locked is None or locked["position"] is None:
                return 0
            return await self.process.due(self.ports(conn), batch)

    async def _put_off_the_first(self, error: Exception) -> None:
        """The timer a run of one failed on is the first due: it waits `retry_after`."""
        async with self.pool.acquire() as proxy, proxy.transaction():
            conn = cast("asyncpg.Connection", proxy)
            await conn.fetchrow(LOCK_POSITION, self.process.name)
            put_off = await conn.fetchval(_PUT_OFF, self.retry_after)
        self.log.error(
            "campaign timer failed: put off",
            enrollment=str(put_off),
            retry_after=str(self.retry_after),
            error=repr(error),
        )


def _columns(rows: Sequence[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """The rows as one list per column, for `unnest`."""
    return [[row[i] for row in rows] for i in range(width)]
