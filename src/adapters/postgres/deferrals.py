"""Deferred messages on PostgreSQL, waiting for their due time in a unit of work."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from adapters.postgres.event_store import SideTable
from domain.policy.decision import SendRequest
from ports.delivery import Delivery
from ports.unit_of_work import DueMessage

if TYPE_CHECKING:
    from collections.abc import Collection
    from datetime import datetime
    from uuid import UUID

    import asyncpg

    from adapters.postgres.unit_of_work import PostgresUnitOfWork

__all__ = ["DEFERRED", "PostgresDeferrals"]

DEFERRED = SideTable(
    "INSERT INTO deferred_messages"
    " (message_id, customer_id, due_at, request, origin, priority, delivery, approval_id)",
    ("uuid", "uuid", "timestamptz", "bytea", "text", "int4", "bytea", "uuid"),
    "ON CONFLICT (message_id) DO UPDATE SET due_at = excluded.due_at",
)
_CLAIM_DUE = """
SELECT message_id, customer_id, request, origin, delivery, approval_id FROM deferred_messages
WHERE due_at <= $1 ORDER BY priority DESC, due_at LIMIT $2
FOR UPDATE SKIP LOCKED
"""
_WITHDRAW = """
DELETE FROM deferred_messages WHERE message_id = $1
RETURNING message_id, customer_id, request, origin, delivery, approval_id
"""
_WITHDRAW_CUSTOMERS = """
DELETE FROM deferred_messages WHERE customer_id = ANY($1::uuid[])
RETURNING message_id, customer_id, request, origin, delivery, approval_id
"""
_request_decoder = msgspec.json.Decoder(SendRequest)
_delivery_decoder = msgspec.json.Decoder(Delivery)


class PostgresDeferrals:
    """The `deferred_messages` table: new due times join the events' statement."""

    def __init__(self, uow: PostgresUnitOfWork) -> None:
        self.uow = uow

    def defer(
        self,
        message_id: UUID,
        customer_id: UUID,
        due_at: datetime,
        request: SendRequest,
        origin: str,
        delivery: Delivery | None = None,
        approval_id: UUID | None = None,
    ) -> None:
        self.uow.rows_for(DEFERRED).append(
            (
                message_id,
                customer_id,
                due_at,
                msgspec.json.encode(request),
                origin,
                request.priority,
                None if delivery is None else msgspec.json.encode(delivery),
                approval_id,
            )
        )

    async def forget(self, message_id: UUID) -> None:
        conn = await self.uow.begun()
        await conn.execute("DELETE FROM deferred_messages WHERE message_id = $1", message_id)

    async def withdraw(self, message_id: UUID) -> DueMessage | None:
        row = await (await self.uow.begun()).fetchrow(_WITHDRAW, message_id)
        return None if row is None else _due(row)

    async def claim_due(self, now: datetime, limit: int) -> list[DueMessage]:
        rows = await (await self.uow.begun()).fetch(_CLAIM_DUE, now, limit)
        return [_due(row) for row in rows]

    async def withdraw_customers(self, customer_ids: Collection[UUID]) -> list[DueMessage]:
        rows = await (await self.uow.begun()).fetch(_WITHDRAW_CUSTOMERS, list(customer_ids))
        return [_due(row) for row in rows]


def _due(row: asyncpg.Record) -> DueMessage:
    return DueMessage(
        row[0],
        row[1],
        _request_decoder.decode(row[2]),
        row[3],
        None if row[4] is None else _delivery_decoder.decode(row[4]),
        row[5],
    )
