"""The in-memory log read for auditors, as the PostgreSQL one reads `events`."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from domain.catalog import topic_of
from domain.customer.aggregate import Customer
from domain.segments.aggregate import Membership
from domain.shared.topics import events_of
from ports.audit import (
    AuditedEvent,
    CustomerHistory,
    KeptReplay,
    LogCursor,
    LogPlan,
    MessageHistory,
    WaitingContent,
)

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime
    from uuid import UUID

    from eventsourcing.domain import CanMutateAggregate

    from adapters.inmemory.event_store import RecordedEvent
    from adapters.inmemory.storage import InMemoryStorage
    from ports.audit import LogFilter

__all__ = ["InMemoryAuditLog"]

_REGISTERED = events_of(Customer)["Registered"]
_APPROVAL_SETTLED = events_of(Customer)["ApprovalSettled"]


def _topic(recorded: RecordedEvent) -> str:
    """The stable name the PostgreSQL store would hold for it."""
    return recorded.topic if recorded.event is None else topic_of(type(recorded.event))


def _matches(recorded: RecordedEvent, where: LogFilter) -> bool:
    return (
        (not where.streams or recorded.stream_id in where.streams)
        and (not where.topics or _topic(recorded) in where.topics)
        and (where.since is None or recorded.recorded_at >= where.since)
        and (where.until is None or recorded.recorded_at < where.until)
    )


class InMemoryAuditLog:
    """Reads the storage's log; every event is visible at once, in the order appended."""

    def __init__(self, storage: InMemoryStorage, scan_budget: int = 50_000) -> None:
        self.storage = storage
        self.scan_budget = scan_budget
        self.replays: dict[UUID, dict[int, tuple[str, KeptReplay]]] = {}

    async def customer_history(
        self, customer_id: UUID, as_of: datetime, after_version: int = 0
    ) -> CustomerHistory:
        stream = self.storage.events.stream(customer_id)
        if not stream or not isinstance(stream[0].event, _REGISTERED):
            return CustomerHistory([], 0)
        known = []
        for recorded in stream:
            if recorded.recorded_at > as_of:
                break
            known.append(recorded)
        if not known:
            return CustomerHistory([], 0)
        memberships = [
            copy.deepcopy(recorded.event)
            for recorded in self.storage.events.log
            if recorded.subject_id == customer_id
            and isinstance(recorded.event, (Membership.Entered, Membership.Exited))
            and recorded.recorded_at <= as_of
        ]
        return CustomerHistory(
            [
                copy.deepcopy(recorded.event)
                for recorded in known
                if recorded.event is not None
                and recorded.version > after_version
                and not isinstance(recorded.event, Customer.MessageDecided)
            ],
            known[-1].version,
            memberships,  # type: ignore[arg-type]
        )

    async def registered_at(self, customer_id: UUID) -> datetime | None:
        stream = self.storage.events.stream(customer_id)
        if stream and isinstance(stream[0].event, _REGISTERED):
            return stream[0].recorded_at
        return None

    async def kept_replay(self, customer_id: UUID, as_of: datetime, code: str) -> KeptReplay | None:
        kept = self.replays.get(customer_id, {})
        usable = [
            replay
            for _, (by, replay) in sorted(kept.items())
            if by == code and replay.recorded_at <= as_of
        ]
        return usable[-1] if usable else None

    async def keep_replays(
        self, customer_id: UUID, code: str, replays: Sequence[KeptReplay]
    ) -> None:
        kept = self.replays.setdefault(customer_id, {})
        for replay in replays:
            if kept.get(replay.version, ("",))[0] != code:
                kept[replay.version] = (code, replay)

    async def end(self) -> LogCursor:
        return LogCursor(0, len(self.storage.events.log))

    async def merged_into(self, customer_id: UUID) -> list[UUID]:
        return sorted(m for m, survivor in self.storage.merges.items() if survivor == customer_id)

    async def plan(self, where: LogFilter, after: LogCursor, limit: int) -> LogPlan:
        log = self.storage.events.log
        scanned = log[after.position : after.position + self.scan_budget]
        places: list[LogCursor] = []
        for recorded in scanned:
            if _matches(recorded, where):
                places.append(LogCursor(0, recorded.position))
                if len(places) == limit:
                    return LogPlan(places, places[-1], at_end=False)
        last = LogCursor(0, scanned[-1].position) if scanned else after
        return LogPlan(places, last, at_end=len(scanned) < self.scan_budget)

    async def read(self, where: LogFilter, places: Sequence[LogCursor]) -> list[AuditedEvent]:
        log = self.storage.events.log
        read = []
        for place in places:
            recorded = log[place.position - 1]
            read.append(
                AuditedEvent(
                    place,
                    recorded.stream_id,
                    recorded.version,
                    _topic(recorded),
                    recorded.recorded_at,
                    recorded.payload,
                )
            )
        return read

    async def message_history(self, message_id: UUID) -> MessageHistory:
        decisions = [
            copy.deepcopy(recorded.event)
            for recorded in self.storage.events.log
            if isinstance(recorded.event, Customer.MessageDecided | _APPROVAL_SETTLED)
            and vars(recorded.event)["message_id"] == message_id
        ]
        deferred = self.storage.deferred.get(message_id)
        delivery = None if deferred is None else deferred.delivery
        waiting = (
            ()
            if delivery is None
            else tuple(
                WaitingContent(channel.value, rendered.template, rendered.version)
                for channel, rendered in delivery.contents.items()
            )
        )
        return MessageHistory(decisions, await self.stream(message_id), waiting)

    async def stream(self, stream_id: UUID) -> list[CanMutateAggregate[UUID]]:
        return [
            copy.deepcopy(recorded.event)
            for recorded in self.storage.events.stream(stream_id)
            if recorded.event is not None
        ]
