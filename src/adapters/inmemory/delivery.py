"""The outbox and the messages' streams in memory, leased by the clock a test moves."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from domain.message.aggregate import Message, MessageStatus
from ports.delivery import Claimed, CostLine, DueFallback

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime
    from uuid import UUID

    from adapters.inmemory.storage import InMemoryStorage
    from domain.policy.vocabulary import Channel
    from ports.clock import Clock
    from ports.delivery import Settlement
    from ports.providers import StatusUpdate

__all__ = ["GROUPS", "InMemoryDeliveryStore"]

GROUPS = ("channel", "provider", "team", "campaign")
_FALLS_BACK_AT_ONCE = frozenset({MessageStatus.FAILED, MessageStatus.BOUNCED})


def _free(leased_until: datetime | None, now: datetime) -> bool:
    return leased_until is None or leased_until < now


class InMemoryDeliveryStore:
    """Entries put in the outbox by units of work on the same storage; leases end by the clock."""

    def __init__(self, storage: InMemoryStorage, clock: Clock) -> None:
        self.storage = storage
        self.clock = clock

    async def claim(self, channel: Channel, limit: int, lease_seconds: float) -> list[Claimed]:
        now = self.clock.now()
        due = [
            entry
            for entry in self.storage.outbox.values()
            if entry.channel is channel
            and (entry.due_at is None or entry.due_at <= now)
            and _free(entry.leased_until, now)
        ][:limit]
        loaded = self.storage.events.load([entry.message_id for entry in due])
        claimed = []
        for entry in due:
            entry.leased_until = now + timedelta(seconds=lease_seconds)
            message = loaded.get(entry.message_id)
            if isinstance(message, Message):
                claimed.append(Claimed(message, entry.attempts))
        return claimed

    async def renew(self, message_ids: Sequence[UUID], lease_seconds: float) -> None:
        until = self.clock.now() + timedelta(seconds=lease_seconds)
        for message_id in message_ids:
            entry = self.storage.outbox.get(message_id)
            if entry is not None:
                entry.leased_until = until

    async def settle(self, settlements: Sequence[Settlement]) -> None:
        self.storage.events.save(*(s.message for s in settlements))
        now = self.clock.now()
        for settlement in settlements:
            entry = self.storage.outbox.get(settlement.message.id)
            if entry is None:
                continue
            if settlement.retry_in is None:
                del self.storage.outbox[entry.message_id]
            else:
                entry.due_at = now + timedelta(seconds=settlement.retry_in)
                entry.attempts += 1
                entry.leased_until = None

    async def get(self, message_id: UUID) -> Message | None:
        found = self.storage.events.load([message_id]).get(message_id)
        return found if isinstance(found, Message) else None

    async def save(self, message: Message) -> None:
        self.storage.events.save(message)

    def _messages(self) -> list[Message]:
        loaded = self.storage.events.load(self.storage.messages)
        return [m for m in loaded.values() if isinstance(m, Message)]

    async def by_provider_id(self, provider: str, provider_message_id: str) -> UUID | None:
        for message in self._messages():
            if (message.provider, message.provider_message_id) == (provider, provider_message_id):
                return message.id
        return None

    async def claim_fallbacks(
        self, now: datetime, limit: int, lease_seconds: float
    ) -> list[DueFallback]:
        clock_now = self.clock.now()
        claimed: list[DueFallback] = []
        for row in sorted(self.storage.fallbacks.values(), key=lambda r: r.plan.due_at):
            if len(claimed) == limit or not _free(row.leased_until, clock_now):
                continue
            message = await self.get(row.message_id)
            status = message.status if message is not None else MessageStatus.QUEUED
            if row.plan.due_at <= now or status in _FALLS_BACK_AT_ONCE:
                row.leased_until = clock_now + timedelta(seconds=lease_seconds)
                claimed.append(
                    DueFallback(
                        row.message_id,
                        row.customer_id,
                        row.plan.request,
                        row.plan.delivery,
                        status.value,
                    )
                )
        return claimed

    async def forget_fallback(self, message_id: UUID) -> None:
        self.storage.fallbacks.pop(message_id, None)

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
        self, since: datetime, until: datetime, group_by: Sequence[str]
    ) -> list[CostLine]:
        columns = [name for name in GROUPS if name in group_by]
        groups: dict[tuple[Any, ...], list[Message]] = defaultdict(list)
        for message in self._messages():
            if since <= message.queued_at < until:
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
