"""The SLA timers process in PostgreSQL (`0029_sla_deadlines.sql`): its deadlines on its
runner's connection, its ports, the process as a member of a lane, and the durable
scheduler's work of firing the due deadlines."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, cast

import structlog

from adapters.postgres.campaign_enrollments import PostgresStreams
from adapters.postgres.event_store import PostgresEventStore
from adapters.postgres.process_ports import PostgresAggregateSaves
from adapters.postgres.processes import ProcessProjection
from adapters.postgres.projections import LOCK_POSITION
from domain.conversation.sla import SlaKind
from ports.inbox import SlaDeadline

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping
    from datetime import datetime
    from uuid import UUID

    import asyncpg

    from ports.clock import Clock
    from ports.processes import Process
    from ports.sla_timers import TimedSla

__all__ = [
    "PostgresSlaDeadlines",
    "PostgresSlaPorts",
    "SlaPortsOn",
    "SlaTimerProjection",
    "SlaTimerRuns",
]

_SET = """
INSERT INTO sla_deadlines (conversation_id, sla, due_at, breached)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::bool[])
ON CONFLICT (conversation_id) DO UPDATE
SET sla = EXCLUDED.sla, due_at = EXCLUDED.due_at, breached = EXCLUDED.breached
"""
_CLEAR = "DELETE FROM sla_deadlines WHERE conversation_id = ANY($1::uuid[])"
_CLAIM_DUE = """
SELECT conversation_id FROM sla_deadlines
WHERE NOT breached AND due_at <= $1
ORDER BY due_at LIMIT $2
FOR UPDATE SKIP LOCKED
"""
_PUT_OFF = """
UPDATE sla_deadlines SET due_at = due_at + $2 WHERE conversation_id = $1 AND NOT breached
"""
_FIRST_DUE = """
SELECT conversation_id FROM sla_deadlines WHERE NOT breached AND due_at <= $1
ORDER BY due_at LIMIT 1 FOR UPDATE SKIP LOCKED
"""
_OF = """
SELECT conversation_id, sla, due_at, breached FROM sla_deadlines
WHERE conversation_id = ANY($1::uuid[])
"""


class PostgresSlaDeadlines:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def set(self, deadlines: Mapping[UUID, SlaDeadline]) -> None:
        ids = list(deadlines)
        await self.conn.execute(
            _SET,
            ids,
            [str(deadlines[c].sla) for c in ids],
            [deadlines[c].due for c in ids],
            [deadlines[c].breached for c in ids],
        )

    async def clear(self, conversation_ids: Collection[UUID]) -> None:
        await self.conn.execute(_CLEAR, list(conversation_ids))

    async def claim_due(self, now: datetime, limit: int) -> list[UUID]:
        return [row[0] for row in await self.conn.fetch(_CLAIM_DUE, now, limit)]

    async def put_off(self, conversation_id: UUID, by: timedelta) -> None:
        await self.conn.execute(_PUT_OFF, conversation_id, by)

    async def of(self, conversation_ids: Collection[UUID]) -> dict[UUID, SlaDeadline]:
        rows = await self.conn.fetch(_OF, list(conversation_ids))
        return {
            row["conversation_id"]: SlaDeadline(SlaKind(row["sla"]), row["due_at"], row["breached"])
            for row in rows
        }


class PostgresSlaPorts:
    """The SLA timers' ports on one connection: a breach's conversation is saved as the unit
    of work saves one, its holder (priority, team, agent) with its events."""

    def __init__(self, conn: asyncpg.Connection, store: PostgresEventStore) -> None:
        self.conversations = PostgresAggregateSaves(conn, store)
        self.streams = PostgresStreams(conn, store)
        self.sla_deadlines = PostgresSlaDeadlines(conn)


class SlaPortsOn:
    """Binds the SLA timers' ports to a connection."""

    def __init__(self, store: PostgresEventStore | None = None) -> None:
        self.store = store or PostgresEventStore()

    def __call__(self, conn: asyncpg.Connection) -> PostgresSlaPorts:
        return PostgresSlaPorts(conn, self.store)


class SlaTimerProjection(ProcessProjection[PostgresSlaPorts]):
    """The SLA timers process as a lane's member, on ports of its own."""

    def __init__(self, process: Process[PostgresSlaPorts], ports: SlaPortsOn | None = None) -> None:
        bound = ports or SlaPortsOn()
        super().__init__(process, bound, bound.store.codec)


class SlaTimerRuns:
    """The durable scheduler's work: fires the due deadlines in a transaction that takes turns
    with the process's pages (and with other timer runs). A run that fails is taken again one
    deadline at a time; one that fails on its own (its conversation written meanwhile, say)
    is put off (`retry_after`), its error logged, and holds up no other."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        process: TimedSla,
        clock: Clock,
        ports: SlaPortsOn | None = None,
        retry_after: timedelta = timedelta(seconds=10),
    ) -> None:
        self.pool = pool
        self.process = process
        self.clock = clock
        self.ports = ports or SlaPortsOn()
        self.retry_after = retry_after
        self.log = structlog.get_logger("chorus.sla")

    async def __call__(self, batch: int) -> int:
        try:
            return await self._fire(batch)
        except Exception:
            if batch <= 1:
                raise
            self.log.exception("sla timer run failed: firing one at a time")
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
        async with self.pool.acquire() as proxy, proxy.transaction():
            conn = cast("asyncpg.Connection", proxy)
            await conn.fetchrow(LOCK_POSITION, self.process.name)
            first = await conn.fetchval(_FIRST_DUE, self.clock.now())
            if first is not None:
                await PostgresSlaDeadlines(conn).put_off(first, self.retry_after)
        self.log.error(
            "sla timer failed: put off",
            conversation=str(first),
            retry_after=str(self.retry_after),
            error=repr(error),
        )
