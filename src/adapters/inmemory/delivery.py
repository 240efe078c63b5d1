"""What delivery reads in memory beside the unit of work, and parked statuses."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from domain.message.aggregate import Message
from ports.delivery import CostLine

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime
    from uuid import UUID

    from adapters.inmemory.storage import InMemoryStorage
    from ports.providers import StatusUpdate

__all__ = ["GROUPS", "InMemoryDeliveryStore"]

GROUPS = ("channel", "provider", "team", "campaign")


class InMemoryDeliveryStore:
    """Messages written by units of work on the same storage, and statuses parked beside them."""

    def __init__(self, storage: InMemoryStorage) -> None:
        self.storage = storage

    async def get(self, message_id: UUID) -> Message | None:
        found = self.storage.events.load([message_id]).get(message_id)
        return found if isinstance(found, Message) else None

    def _messages(self) -> list[Message]:
        loaded = self.storage.events.load(self.storage.messages)
        return [m for m in loaded.values() if isinstance(m, Message)]

    async def by_provider_id(self, provider: str, provider_message_id: str) -> UUID | None:
        for message in self._messages():
            if (message.provider, message.provider_message_id) == (provider, provider_message_id):
                return message.id
        return None

    async def park(self, update: StatusUpdate) -> None:
        if not any(_same_status(update, parked) for parked in self.storage.parked):
            self.storage.parked.append(update)

    async def parked(self, limit: int) -> list[tuple[UUID, StatusUpdate]]:
        known = []
        for update in self.storage.parked:
            message_id = await self.by_provider_id(update.provider, update.provider_message_id)
            if message_id is not None:
                known.append((message_id, update))
        return known[:limit]

    async def unpark(self, update: StatusUpdate) -> None:
        self.storage.parked = [p for p in self.storage.parked if not _same_status(update, p)]

    async def decisions_of(self, message_id: UUID) -> list[UUID]:
        rows = [row for row in self.storage.decisions.values() if row.message_id == message_id]
        return [row.decision_id for row in sorted(rows, key=lambda row: row.stream_version)]

    async def costs(
        self,
        since: datetime,
        until: datetime,
        group_by: Sequence[str],
        teams: frozenset[str] | None = None,
    ) -> list[CostLine]:
        columns = [name for name in GROUPS if name in group_by]
        groups: dict[tuple[Any, ...], list[Message]] = defaultdict(list)
        for message in self._messages():
            of_teams = teams is None or message.team in teams
            if since <= message.queued_at < until and of_teams:
                values = {
                    "channel": message.channel.value,
                    "provider": message.provider,
                    "team": message.team,
                    "campaign": message.campaign,
                }
                groups[(*(values[c] for c in columns), message.currency)].append(message)
        lines = []
        for key in sorted(groups, key=lambda k: [(v is None, v or "") for v in k]):
            messages = groups[key]
            by_status: dict[str, int] = defaultdict(int)
            for message in messages:
                by_status[message.status.value] += 1
            lines.append(
                CostLine(
                    group=dict(zip(columns, key, strict=False)),
                    messages=len(messages),
                    cost=sum((m.cost or Decimal(0) for m in messages), Decimal(0)),
                    currency=key[-1],
                    by_status=dict(by_status),
                )
            )
        return lines


def _same_status(one: StatusUpdate, other: StatusUpdate) -> bool:
    return (one.provider, one.provider_message_id, one.status) == (
        other.provider,
        other.provider_message_id,
        other.status,
    )
