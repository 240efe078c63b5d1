"""Snooze timers in `conversation_snoozes` (SnoozeTimers)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from ports.snooze_timers import DueSnooze

if TYPE_CHECKING:
    from datetime import datetime
    from uuid import UUID

    import asyncpg

__all__ = ["PostgresSnoozeTimers"]

_SET = """
INSERT INTO conversation_snoozes (conversation_id, due_at) VALUES ($1, $2)
ON CONFLICT (conversation_id) DO UPDATE SET due_at = EXCLUDED.due_at
"""
_LEASE = """
UPDATE conversation_snoozes SET due_at = $3
WHERE conversation_id IN (
    SELECT conversation_id FROM conversation_snoozes WHERE due_at <= $1
    ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED
)
RETURNING conversation_id
"""
_FORGET = "DELETE FROM conversation_snoozes WHERE conversation_id = $1 AND due_at = $2"


class PostgresSnoozeTimers:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def set(self, conversation_id: UUID, due_at: datetime) -> None:
        await self.pool.execute(_SET, conversation_id, due_at)

    async def lease_due(self, now: datetime, limit: int, lease_seconds: float) -> list[DueSnooze]:
        until = now + timedelta(seconds=lease_seconds)
        rows = await self.pool.fetch(_LEASE, now, limit, until)
        return [DueSnooze(row["conversation_id"], until) for row in rows]

    async def forget(self, due: DueSnooze) -> None:
        await self.pool.execute(_FORGET, due.conversation_id, due.leased_until)
