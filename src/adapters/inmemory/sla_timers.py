"""The SLA timers process's ports in memory, over the in-memory event store."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from adapters.inmemory.campaign_enrollments import InMemoryStreams
from adapters.inmemory.processes import InMemoryAggregateSaves

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping
    from datetime import datetime, timedelta
    from uuid import UUID

    from adapters.inmemory.storage import InMemoryStorage
    from ports.inbox import SlaDeadline

__all__ = ["InMemorySlaDeadlines", "InMemorySlaPorts"]


class InMemorySlaDeadlines:
    """Deadlines with no one else to race: a claim is the caller's until it sets them again."""

    def __init__(self) -> None:
        self.deadlines: dict[UUID, SlaDeadline] = {}

    async def set(self, deadlines: Mapping[UUID, SlaDeadline]) -> None:
        self.deadlines.update(deadlines)

    async def clear(self, conversation_ids: Collection[UUID]) -> None:
        for each in conversation_ids:
            self.deadlines.pop(each, None)

    async def claim_due(self, now: datetime, limit: int) -> list[UUID]:
        due = sorted(
            (d.due, c) for c, d in self.deadlines.items() if not d.breached and d.due <= now
        )
        return [c for _, c in due[:limit]]

    async def put_off(self, conversation_id: UUID, by: timedelta) -> None:
        found = self.deadlines.get(conversation_id)
        if found is not None and not found.breached:
            self.deadlines[conversation_id] = dataclasses.replace(found, due=found.due + by)

    async def of(self, conversation_ids: Collection[UUID]) -> dict[UUID, SlaDeadline]:
        return {c: self.deadlines[c] for c in conversation_ids if c in self.deadlines}


class InMemorySlaPorts:
    """The SLA timers' ports over one installation's storage: a breach's conversation is
    saved with its holder in the roster, as the unit of work saves one."""

    def __init__(self, storage: InMemoryStorage) -> None:
        self.conversations = InMemoryAggregateSaves(storage.events, storage.roster)
        self.streams = InMemoryStreams(storage.events)
        self.sla_deadlines = InMemorySlaDeadlines()
