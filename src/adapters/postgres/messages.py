"""Messages on PostgreSQL: the tables of the outbox and the messages, and what the read side
asks of them; the unit of work writes them (see `adapters.postgres.outbox`)."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

import msgspec

from adapters.postgres.event_store import PostgresEventStore, SideTable
from adapters.system.trace_context import current_traceparent
from domain.message.aggregate import Message, MessageStatus
from ports.delivery import CostLine
from ports.providers import StatusUpdate

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime
    from uuid import UUID

    import asyncpg

    from ports.delivery import FallbackPlan

__all__ = [
    "FALLBACKS",
    "GROUPS",
    "MESSAGES",
    "OUTBOX",
    "PostgresDeliveryStore",
    "fallback_row",
    "message_row",
    "outbox_row",
]

OUTBOX = SideTable(
    "INSERT INTO outbox (message_id, channel, trace_context)", ("uuid", "text", "text")
)
MESSAGES = SideTable(
    "INSERT INTO messages (message_id, customer_id, decision_id, channel, purpose, team,"
    " campaign, status, provider, provider_message_id, cost, currency, queued_at,"
    " stream_version)",
    (
        "uuid",
        "uuid",
        "uuid",
        "text",
        "text",
        "text",
        "text",
        "text",
        "text",
        "text",
        "numeric",
        "text",
        "timestamptz",
        "int4",
    ),
    "ON CONFLICT (message_id) DO UPDATE SET status = excluded.status,"
    " provider = excluded.provider, provider_message_id = excluded.provider_message_id,"
    " cost = excluded.cost, currency = excluded.currency,"
    " stream_version = excluded.stream_version",
)
FALLBACKS = SideTable(
    "INSERT INTO fallbacks (message_id, customer_id, due_at, request, delivery)",
    ("uuid", "uuid", "timestamptz", "bytea", "bytea"),
)
_status_encoder = msgspec.json.Encoder()
_status_decoder = msgspec.json.Decoder(StatusUpdate)
GROUPS = ("channel", "provider", "team", "campaign")
"""What a cost report may group by."""


def outbox_row(message: Message) -> tuple[Any, ...]:
    """The entry, with the trace context of the span that queued it (ADR 0020)."""
    return (message.id, message.channel.value, current_traceparent())


def fallback_row(message: Message, plan: FallbackPlan) -> tuple[Any, ...]:
    return (
        message.id,
        message.customer_id,
        plan.due_at,
        msgspec.json.encode(plan.request),
        msgspec.json.encode(plan.delivery),
    )


def message_row(message: Message) -> tuple[Any, ...]:
    return (
        message.id,
        message.customer_id,
        message.decision_id,
        message.channel.value,
        message.purpose.value,
        message.team,
        message.campaign,
        message.status.value,
        message.provider,
        message.provider_message_id,
        message.cost,
        message.currency,
        message.queued_at,
        message.version,
    )


class PostgresDeliveryStore:
    """Messages read from their streams and the `messages` listing; parked statuses."""

    def __init__(self, pool: asyncpg.Pool, events: PostgresEventStore | None = None) -> None:
        self.pool = pool
        self.events = events or PostgresEventStore()

    async def get(self, message_id: UUID) -> Message | None:
        loaded = await self.events.load(self.pool, [message_id])
        message = loaded.get(message_id)
        return message if isinstance(message, Message) else None

    async def by_provider_id(self, provider: str, provider_message_id: str) -> UUID | None:
        found: UUID | None = await self.pool.fetchval(
            "SELECT message_id FROM messages WHERE provider = $1 AND provider_message_id = $2",
            provider,
            provider_message_id,
        )
        return found

    async def park(self, update: StatusUpdate) -> None:
        await self.pool.execute(
            "INSERT INTO parked_statuses (provider, provider_message_id, status, update)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            update.provider,
            update.provider_message_id,
            update.status.value,
            _status_encoder.encode(update),
        )

    async def parked(self, limit: int) -> list[tuple[UUID, StatusUpdate]]:
        rows = await self.pool.fetch(
            """SELECT m.message_id, p.update FROM parked_statuses p
               JOIN messages m USING (provider, provider_message_id)
               ORDER BY p.parked_at LIMIT $1""",
            limit,
        )
        return [(row[0], _status_decoder.decode(row[1])) for row in rows]

    async def unpark(self, update: StatusUpdate) -> None:
        await self.pool.execute(
            "DELETE FROM parked_statuses"
            " WHERE provider = $1 AND provider_message_id = $2 AND status = $3",
            update.provider,
            update.provider_message_id,
            update.status.value,
        )

    async def decisions_of(self, message_id: UUID) -> list[UUID]:
        rows = await self.pool.fetch(
            "SELECT decision_id FROM decisions WHERE message_id = $1 ORDER BY stream_version",
            message_id,
        )
        return [row[0] for row in rows]

    async def costs(
        self,
        since: datetime,
        until: datetime,
        group_by: Sequence[str],
        teams: frozenset[str] | None = None,
    ) -> list[CostLine]:
        columns = [name for name in GROUPS if name in group_by]
        statuses = [status.value for status in MessageStatus]
        counts = ", ".join(
            f"count(*) FILTER (WHERE status = '{status}') AS {status}" for status in statuses
        )
        keys = ", ".join([*columns, "currency"])
        of_teams = "" if teams is None else " AND team = ANY($3::text[])"
        rows = await self.pool.fetch(
            f"SELECT {keys}, count(*) AS messages, coalesce(sum(cost), 0) AS cost, {counts}"
            f" FROM messages WHERE queued_at >= $1 AND queued_at < $2{of_teams}"
            f" GROUP BY {keys} ORDER BY {keys}",
            since,
            until,
            *(() if teams is None else (sorted(teams),)),
        )
        return [
            CostLine(
                group={name: row[name] for name in columns},
                messages=row["messages"],
                cost=Decimal(row["cost"]),
                currency=row["currency"],
                by_status={s: row[s] for s in statuses if row[s]},
            )
            for row in rows
        ]
