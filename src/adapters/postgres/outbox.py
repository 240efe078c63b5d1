"""The outbox in a unit of work: new messages and the ends of their rounds are rows of the
events' statement; leases are statements of the unit's own transaction."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from adapters.postgres.event_store import SideTable
from adapters.postgres.messages import FALLBACKS, OUTBOX, fallback_row, outbox_row
from domain.policy.decision import SendRequest
from ports.delivery import Delivery, DueFallback
from ports.unit_of_work import Leased

if TYPE_CHECKING:
    from collections.abc import Collection
    from datetime import datetime
    from uuid import UUID

    from adapters.postgres.unit_of_work import PostgresUnitOfWork
    from domain.message.aggregate import Message
    from domain.policy.vocabulary import Channel
    from ports.delivery import FallbackPlan

__all__ = ["PostgresOutbox"]

# Statement heads around `SELECT * FROM unnest(...)`, so they join the events' statement.
_SENT_OFF = SideTable("DELETE FROM outbox WHERE message_id IN (", ("uuid",), ")")
_RETRY = SideTable(
    "UPDATE outbox o SET due_at = now() + make_interval(secs => r.delay),"
    " attempts = o.attempts + 1, leased_until = NULL FROM (",
    ("uuid", "float8"),
    ") AS r (message_id, delay) WHERE o.message_id = r.message_id",
)
_FORGOTTEN_FALLBACKS = SideTable("DELETE FROM fallbacks WHERE message_id IN (", ("uuid",), ")")
_CLAIM = """
WITH due AS (
    SELECT message_id FROM outbox
    WHERE channel = $1 AND due_at <= now() AND (leased_until IS NULL OR leased_until < now())
    ORDER BY due_at LIMIT $2
    FOR UPDATE SKIP LOCKED
)
UPDATE outbox o SET leased_until = now() + make_interval(secs => $3)
FROM due WHERE o.message_id = due.message_id
RETURNING o.message_id, o.attempts, o.trace_context
"""
_RENEW = """
UPDATE outbox SET leased_until = now() + make_interval(secs => $2)
WHERE message_id = ANY($1::uuid[])
"""
_CLAIM_FALLBACKS = """
WITH due AS (
    SELECT f.message_id FROM fallbacks f JOIN messages m USING (message_id)
    WHERE (f.due_at <= $1 OR m.status IN ('failed', 'bounced'))
      AND (f.leased_until IS NULL OR f.leased_until < now())
    ORDER BY f.due_at LIMIT $2
    FOR UPDATE OF f SKIP LOCKED
)
UPDATE fallbacks f SET leased_until = now() + make_interval(secs => $3)
FROM due, messages m
WHERE f.message_id = due.message_id AND m.message_id = due.message_id
RETURNING f.message_id, f.customer_id, f.request, f.delivery, m.status
"""
# Only an entry no dispatcher holds: one under lease may be with a provider already, and one
# locked is being claimed or settled right now. It never waits for that lock: the caller holds
# the message (in-process, `queue_for`) that the claim or settle may be about to load, so
# waiting could deadlock; the dispatcher withdraws the message itself instead.
_WITHDRAW = """
DELETE FROM outbox WHERE message_id = (
    SELECT message_id FROM outbox
    WHERE message_id = $1 AND (leased_until IS NULL OR leased_until < now())
    FOR UPDATE SKIP LOCKED
)
RETURNING message_id
"""
_WAITING_FOR = """
SELECT o.message_id FROM outbox o JOIN messages m USING (message_id)
WHERE m.customer_id = ANY($1::uuid[]) ORDER BY o.message_id
"""
_request_decoder = msgspec.json.Decoder(SendRequest)
_delivery_decoder = msgspec.json.Decoder(Delivery)


class PostgresOutbox:
    """Rows of `outbox` and `fallbacks`; the `messages` row is the message's listing. Leases
    and retries are measured on the database's clock, so the callers' `now` is not needed."""

    def __init__(self, uow: PostgresUnitOfWork) -> None:
        self.uow = uow

    def put(self, message: Message, fallback: FallbackPlan | None = None) -> None:
        self.uow.to_save[message.id] = message
        self.uow.rows_for(OUTBOX).append(outbox_row(message))
        if fallback is not None:
            self.uow.rows_for(FALLBACKS).append(fallback_row(message, fallback))

    async def claim(
        self, channel: Channel, limit: int, lease_seconds: float, now: datetime
    ) -> list[Leased]:
        conn = await self.uow.begun()
        rows = await conn.fetch(_CLAIM, channel.value, limit, lease_seconds)
        return [Leased(row[0], row[1], row[2]) for row in rows]

    async def renew(
        self, message_ids: Collection[UUID], lease_seconds: float, now: datetime
    ) -> None:
        if message_ids:
            conn = await self.uow.begun()
            await conn.execute(_RENEW, list(message_ids), lease_seconds)

    def sent_off(self, message_id: UUID) -> None:
        self.uow.rows_for(_SENT_OFF).append((message_id,))

    def retry_later(self, message_id: UUID, delay: float, now: datetime) -> None:
        self.uow.rows_for(_RETRY).append((message_id, delay))

    async def claim_fallbacks(
        self, now: datetime, limit: int, lease_seconds: float
    ) -> list[DueFallback]:
        conn = await self.uow.begun()
        rows = await conn.fetch(_CLAIM_FALLBACKS, now, limit, lease_seconds)
        return [
            DueFallback(
                row[0],
                row[1],
                _request_decoder.decode(row[2]),
                _delivery_decoder.decode(row[3]),
                row[4],
            )
            for row in rows
        ]

    async def withdraw(self, message_id: UUID, now: datetime) -> bool:
        conn = await self.uow.begun()
        return await conn.fetchval(_WITHDRAW, message_id) is not None

    def forget_fallback(self, message_id: UUID) -> None:
        self.uow.rows_for(_FORGOTTEN_FALLBACKS).append((message_id,))

    async def waiting_for(self, customer_ids: Collection[UUID]) -> list[UUID]:
        conn = await self.uow.begun()
        return [row[0] for row in await conn.fetch(_WAITING_FOR, list(customer_ids))]
