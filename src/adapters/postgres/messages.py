"""Messages on PostgreSQL: the outbox, the messages' streams and the state the read side needs."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

import msgspec

from adapters.postgres.event_store import PostgresEventStore, SideTable
from domain.message.aggregate import Message, MessageStatus
from domain.policy.decision import SendRequest
from ports.delivery import Claimed, CostLine, Delivery, DueFallback
from ports.providers import StatusUpdate

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime
    from uuid import UUID

    import asyncpg

    from domain.policy.vocabulary import Channel
    from ports.delivery import FallbackPlan, Settlement

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

OUTBOX = SideTable("INSERT INTO outbox (message_id, channel)", ("uuid", "text"))
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
# Statement heads around `SELECT * FROM unnest(...)`, so they join the events' statement.
_SENT_OFF = SideTable("DELETE FROM outbox WHERE message_id IN (", ("uuid",), ")")
_RETRY = SideTable(
    "UPDATE outbox o SET due_at = now() + make_interval(secs => r.delay),"
    " attempts = o.attempts + 1, leased_until = NULL FROM (",
    ("uuid", "float8"),
    ") AS r (message_id, delay) WHERE o.message_id = r.message_id",
)
_CLAIM = """
WITH due AS (
    SELECT message_id FROM outbox
    WHERE channel = $1 AND due_at <= now() AND (leased_until IS NULL OR leased_until < now())
    ORDER BY due_at LIMIT $2
    FOR UPDATE SKIP LOCKED
)
UPDATE outbox o SET leased_until = now() + make_interval(secs => $3)
FROM due WHERE o.message_id = due.message_id
RETURNING o.message_id, o.attempts
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
_request_decoder = msgspec.json.Decoder(SendRequest)
_status_encoder = msgspec.json.Encoder()
_status_decoder = msgspec.json.Decoder(StatusUpdate)
_delivery_decoder = msgspec.json.Decoder(Delivery)
GROUPS = ("channel", "provider", "team", "campaign")
"""What a cost report may group by."""


def outbox_row(message: Message) -> tuple[Any, ...]:
    return (message.id, message.channel.value)


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
    """The outbox, leased with SKIP LOCKED; each settlement commits in one statement."""

    def __init__(self, pool: asyncpg.Pool, events: PostgresEventStore | None = None) -> None:
        self.pool = pool
        self.events = events or PostgresEventStore()

    async def claim(self, channel: Channel, limit: int, lease_seconds: float) -> list[Claimed]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(_CLAIM, channel.value, limit, lease_seconds)
            if not rows:
                return []
            loaded = await self.events.load(
                cast("asyncpg.Connection", conn), [row[0] for row in rows]
            )
        claimed = []
        for row in rows:
            message = loaded.get(row[0])
            if isinstance(message, Message):
                claimed.append(Claimed(message, row[1]))
        return claimed

    async def renew(self, message_ids: Sequence[UUID], lease_seconds: float) -> None:
        if message_ids:
            await self.pool.execute(
                "UPDATE outbox SET leased_until = now() + make_interval(secs => $2)"
                " WHERE message_id = ANY($1::uuid[])",
                list(message_ids),
                lease_seconds,
            )

    async def settle(self, settlements: Sequence[Settlement]) -> None:
        if not settlements:
            return
        side: dict[SideTable, list[tuple[Any, ...]]] = defaultdict(list)
        for settlement in settlements:
            message = settlement.message
            if settlement.retry_in is None:
                side[_SENT_OFF].append((message.id,))
            else:
                side[_RETRY].append((message.id, settlement.retry_in))
            side[MESSAGES].append(message_row(message))
        async with self.pool.acquire() as conn:
            await self.events.append(
                cast("asyncpg.Connection", conn), [s.message for s in settlements], (), side
            )

    async def get(self, message_id: UUID) -> Message | None:
        loaded = await self.events.load(self.pool, [message_id])
        message = loaded.get(message_id)
        return message if isinstance(message, Message) else None

    async def save(self, message: Message) -> None:
        async with self.pool.acquire() as conn:
            await self.events.append(
                cast("asyncpg.Connection", conn), [message], (), {MESSAGES: [message_row(message)]}
            )

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

    async def claim_fallbacks(
        self, now: datetime, limit: int, lease_seconds: float
    ) -> list[DueFallback]:
        rows = await self.pool.fetch(_CLAIM_FALLBACKS, now, limit, lease_seconds)
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

    async def forget_fallback(self, message_id: UUID) -> None:
        await self.pool.execute("DELETE FROM fallbacks WHERE message_id = $1", message_id)

    async def costs(
        self, since: datetime, until: datetime, group_by: Sequence[str]
    ) -> list[CostLine]:
        columns = [name for name in GROUPS if name in group_by]
        statuses = [status.value for status in MessageStatus]
        counts = ", ".join(
            f"count(*) FILTER (WHERE status = '{status}') AS {status}" for status in statuses
        )
        keys = ", ".join([*columns, "currency"])
        rows = await self.pool.fetch(
            f"SELECT {keys}, count(*) AS messages, coalesce(sum(cost), 0) AS cost, {counts}"
            f" FROM messages WHERE queued_at >= $1 AND queued_at < $2"
            f" GROUP BY {keys} ORDER BY {keys}",
            since,
            until,
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
