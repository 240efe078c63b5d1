"""The ports processes work through, in memory, over the in-memory event store; and a runner
that hands a process the log's events of the classes it handles, as the PostgreSQL one does."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from adapters.inmemory.campaign_enrollments import (
    InMemoryCampaignStates,
    InMemoryCampaignTimers,
    InMemoryCustomerSegments,
    InMemoryEnrollmentIndex,
    InMemoryStreams,
)
from adapters.inmemory.event_store import declared_subject
from domain.customer.aggregate import Customer
from domain.customer.classified import CLASSIFIED_SIGNAL, classified_properties
from domain.policy.vocabulary import Channel, Purpose
from domain.segments.aggregate import Segment
from domain.segments.conditions import SegmentFacts, SignalFact
from domain.shared.topics import events_of
from domain.signals.aggregate import Signal
from ports.segment_evaluation import MembershipState, SegmentInForce

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence
    from datetime import datetime
    from uuid import UUID

    from eventsourcing.domain import Aggregate, CanMutateAggregate

    from adapters.inmemory.conversation_roster import RosterTables
    from adapters.inmemory.event_store import InMemoryEventStore
    from ports.processes import Process
    from ports.trigger_matching import KnownTrigger

__all__ = [
    "InMemoryAggregateSaves",
    "InMemoryCustomerFacts",
    "InMemoryEventLog",
    "InMemoryMembershipStates",
    "InMemoryProcessPorts",
    "InMemoryProcessRunner",
    "InMemorySegmentsInForce",
    "InMemoryTriggerStates",
]

_CLASSIFIED = events_of(Customer)["MessageClassified"]
_PROFILE_FIELDS = ("first_name", "last_name", "locale", "country", "time_zone")


class InMemoryEventLog:
    def __init__(self, store: InMemoryEventStore) -> None:
        self.store = store

    async def append(self, events: Collection[CanMutateAggregate[UUID]]) -> None:
        self.store.append([(event, declared_subject(event)) for event in events])

    async def append_new(self, events: Collection[CanMutateAggregate[UUID]]) -> int:
        new = [e for e in events if self.store.version_of(e.originator_id) < e.originator_version]
        await self.append(new)
        return len(new)


class InMemoryAggregateSaves:
    """Saves aggregates as the in-memory unit of work's commit does: their events, and the
    roster's tables (a conversation's holder, its agent's load) changed with them."""

    def __init__(self, store: InMemoryEventStore, roster: RosterTables) -> None:
        self.store = store
        self.roster = roster

    async def save(self, aggregates: Collection[Aggregate]) -> None:
        saved = [aggregate for aggregate in aggregates if aggregate.pending_events]
        pending = [
            (event, declared_subject(aggregate))
            for aggregate in saved
            for event in aggregate.pending_events
        ]
        self.store.check([event for event, _ in pending])
        apply = self.roster.prepare(saved)
        for aggregate in saved:
            aggregate.collect_events()
        self.store.append(pending)
        apply()


class InMemoryTriggerStates:
    def __init__(self) -> None:
        self.triggers: dict[UUID, KnownTrigger] = {}

    async def seen(self) -> int:
        return sum(known.events_seen for known in self.triggers.values())

    async def load(self) -> list[KnownTrigger]:
        return list(self.triggers.values())

    async def save(self, triggers: Collection[KnownTrigger]) -> None:
        self.triggers.update({known.trigger_id: known for known in triggers})


class InMemorySegmentsInForce:
    """The segments as their streams in the store hold them."""

    def __init__(self, store: InMemoryEventStore) -> None:
        self.store = store

    async def in_force(self) -> list[SegmentInForce]:
        found = self.store.load(self.store.started_by(Segment)).values()
        return [
            SegmentInForce(s.id, s.key, s.number, s.condition)
            for s in found
            if isinstance(s, Segment) and not s.deleted
        ]

    async def last_version(self, segment_id: UUID) -> tuple[str, int] | None:
        segment = self.store.load([segment_id]).get(segment_id)
        return None if not isinstance(segment, Segment) else (segment.key, segment.number)


class InMemoryCustomerFacts:
    """Facts from the customers' aggregates and the signals recorded in the store."""

    def __init__(self, store: InMemoryEventStore) -> None:
        self.store = store

    async def facts(
        self, customers: Collection[UUID], segments: Sequence[SegmentInForce], now: datetime
    ) -> dict[UUID, SegmentFacts]:
        wanted = set(customers)
        signals: dict[UUID, dict[str, list[SignalFact]]] = {}
        last_seen: dict[UUID, dict[str, datetime]] = {}
        for recorded in self.store.log:
            event = recorded.event
            if isinstance(event, Signal.Recorded) and event.customer_id in wanted:
                kind = event.signal_type
                signals.setdefault(event.customer_id, {}).setdefault(kind, []).append(
                    SignalFact(event.occurred_at, dict(event.properties))
                )
                seen = last_seen.setdefault(event.customer_id, {})
                seen[kind] = max(seen.get(kind, event.occurred_at), event.occurred_at)
            elif isinstance(event, _CLASSIFIED) and event.originator_id in wanted:
                signals.setdefault(event.originator_id, {}).setdefault(
                    CLASSIFIED_SIGNAL, []
                ).append(SignalFact(vars(event)["received_at"], classified_properties(vars(event))))
        found: dict[UUID, SegmentFacts] = {}
        for customer_id, customer in self.store.load(wanted).items():
            if not isinstance(customer, Customer) or customer.merged_into is not None:
                continue
            attributes: dict[str, Any] = dict(customer.attributes)
            for name in _PROFILE_FIELDS:
                value = getattr(customer.profile, name)
                if value is not None:
                    attributes[name] = value
            found[customer_id] = SegmentFacts(
                attributes=attributes,
                identity_types=frozenset(i.type for i in customer.identities),
                consents=_consents(customer),
                signals=signals.get(customer_id, {}),
                last_seen=last_seen.get(customer_id, {}),
            )
        return found

    async def customers(self, after: UUID | None, limit: int) -> list[UUID]:
        found = self.store.load(self.store.started_by(Customer))
        ids = sorted(
            c for c, customer in found.items() if getattr(customer, "merged_into", None) is None
        )
        return [c for c in ids if after is None or c > after][:limit]


class InMemoryMembershipStates:
    def __init__(self) -> None:
        self.states_by: dict[tuple[UUID, UUID], MembershipState] = {}

    async def states(
        self, customers: Collection[UUID], segments: Collection[UUID]
    ) -> dict[tuple[UUID, UUID], MembershipState]:
        return {
            (s, c): replace(self.states_by[(s, c)])
            for s in segments
            for c in customers
            if (s, c) in self.states_by
        }

    async def save(self, states: Sequence[tuple[UUID, UUID, MembershipState]]) -> None:
        for segment, customer, state in states:
            self.states_by[(segment, customer)] = replace(state)

    async def members(self, segment: UUID) -> list[tuple[UUID, int]]:
        return [
            (customer, state.version)
            for (s, customer), state in self.states_by.items()
            if s == segment and state.member
        ]

    async def empty(self, segment: UUID) -> None:
        for (s, _), state in self.states_by.items():
            if s == segment:
                state.version += int(state.member)
                state.member, state.due = False, None

    async def take_due(self, now: datetime, limit: int) -> list[UUID]:
        due = sorted(
            (state.due, customer)
            for (_, customer), state in self.states_by.items()
            if state.due is not None and state.due <= now
        )
        customers = list(dict.fromkeys(customer for _, customer in due[:limit]))
        for (_, customer), state in self.states_by.items():
            if customer in customers and state.due is not None and state.due <= now:
                state.due = None
        return customers


class InMemoryProcessPorts:
    """Every process's ports over one store; each process reads the ones it names."""

    def __init__(self, store: InMemoryEventStore) -> None:
        self.events = InMemoryEventLog(store)
        self.trigger_states = InMemoryTriggerStates()
        self.segments = InMemorySegmentsInForce(store)
        self.customer_facts = InMemoryCustomerFacts(store)
        self.membership_states = InMemoryMembershipStates()
        self.streams = InMemoryStreams(store)
        self.campaign_states = InMemoryCampaignStates()
        self.enrollment_index = InMemoryEnrollmentIndex()
        self.campaign_timers = InMemoryCampaignTimers(self.campaign_states)
        self.customer_segments = InMemoryCustomerSegments(store)


class InMemoryProcessRunner:
    """Hands a process the store's new events of the classes it handles, page by page."""

    def __init__(
        self, process: Process[Any], ports: InMemoryProcessPorts, store: InMemoryEventStore
    ) -> None:
        self.process = process
        self.ports = ports
        self.store = store
        self.position = 0

    async def catch_up(self) -> int:
        """Handles what was appended since the last call; the number of events handled."""
        handled = 0
        while self.position < len(self.store.log):
            page = self.store.log[self.position :]
            self.position += len(page)
            events = [r.event for r in page if isinstance(r.event, self.process.handles)]
            if events:
                await self.process.handle(events, self.ports)
                handled += len(events)
        return handled


def _consents(customer: Customer) -> dict[tuple[Channel, Purpose], bool]:
    found = {key: state.granted for key, state in customer.consents.items()}
    for channel, state in customer.opted_out.items():
        if not state.granted:
            for purpose in Purpose:
                found[(channel, purpose)] = False
    return found
