"""Snooze timers in a dict (SnoozeTimers), leased as PostgreSQL leases them."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from ports.snooze_timers import DueSnooze

if TYPE_CHECKING:
    from datetime import datetime
    from uuid import UUID

__all__ = ["InMemorySnoozeTimers"]


class InMemorySnoozeTimers:
    def __init__(self) -> None:
        self.due: dict[UUID, datetime] = {}

    async def set(self, conversation_id: UUID, due_at: datetime) -> None:
        self.due[conversation_id] = due_at

    async def lease_due(self, now: datetime, limit: int, lease_seconds: float) -> list[DueSnooze]:
        until = now + timedelta(seconds=lease_seconds)
        found = sorted((at, id) for id, at in self.due.items() if at <= now)[:limit]
        for _, conversation_id in found:
            self.due[conversation_id] = until
        return [DueSnooze(conversation_id, until) for _, conversation_id in found]

    async def forget(self, due: DueSnooze) -> None:
        if self.due.get(due.conversation_id) == due.leased_until:
            del self.due[due.conversation_id]
