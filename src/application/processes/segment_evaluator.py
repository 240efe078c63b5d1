"""Keeps segment membership current: as signals, profiles and definitions change, and as time
passes, it records each customer's entries into and exits from each segment as events."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog

from application.processes.pages import of_kinds
from domain.catalog import class_of, topic_of
from domain.customer.aggregate import PROFILE_EVENTS, Customer
from domain.segments.aggregate import Membership, Segment, membership_id
from domain.signals.aggregate import Signal
from ports.segment_evaluation import MembershipState

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence
    from datetime import datetime
    from uuid import UUID

    from eventsourcing.domain import CanMutateAggregate

    from ports.clock import Clock
    from ports.segment_evaluation import SegmentEvaluationPorts, SegmentInForce

__all__ = ["SegmentEvaluator"]


def _events_of(aggregate: type, *kinds: str) -> tuple[type[Any], ...]:
    return tuple(class_of(f"{topic_of(aggregate)}.{kind}") for kind in kinds)


_SEGMENT_EVENTS = _events_of(Segment, "Defined", "Redefined", "Deleted", "Restored")
# What the customer directory reads: a customer's profile, identities and consents.
# And their classified messages, which the signal_activity read model keeps with their signals.
_CUSTOMER_EVENTS = _events_of(Customer, *PROFILE_EVENTS, "MessageClassified")
(_MERGED_INTO,) = _events_of(Customer, "MergedInto")


class SegmentEvaluator:
    """Runs after the read models it reads (`follows`), so the facts it sees include every
    event of its page. Not rebuildable: what it records are facts, and the `segment_members`
    read model is rebuilt from them."""

    name = "segment_evaluator"
    handles: tuple[type[Any], ...] = (Signal.Recorded, *_CUSTOMER_EVENTS, *_SEGMENT_EVENTS)
    follows = ("customer_directory", "signal_activity")
    # Work is per touched customer: a big page evaluates each busy customer once, not once
    # per page of their signals.
    page_size: int | None = 20_000

    def __init__(self, clock: Clock, page: int = 1000) -> None:
        self.clock = clock
        self.page = page
        self.log = structlog.get_logger("chorus.segments")

    async def handle(
        self, events: Sequence[CanMutateAggregate[UUID]], ports: SegmentEvaluationPorts
    ) -> None:
        now = self.clock.now()
        segments = {s.segment_id: s for s in await ports.segments.in_force()}
        redefined = {e.originator_id for e in of_kinds(events, *_SEGMENT_EVENTS)}
        customers: set[UUID] = set()
        if segments:  # else nobody can be in one
            for event in events:
                if isinstance(event, Signal.Recorded):
                    customers.add(event.customer_id)
                elif not isinstance(event, _SEGMENT_EVENTS):
                    customers.add(event.originator_id)
                    if isinstance(event, _MERGED_INTO):
                        customers.add(event.survivor_id)
        for gone in redefined - segments.keys():
            await self._empty(ports, gone, now)
        for sid in redefined & segments.keys():
            await self._backfill(ports, segments[sid], now)
            self.log.info("segment evaluated", segment=segments[sid].key)
        if customers and segments:
            await self.evaluate(ports, customers, list(segments.values()), now)

    async def due(self, ports: SegmentEvaluationPorts, limit: int) -> int:
        """Evaluates the customers whose membership may have changed with time alone; the
        caller holds the evaluator's turn, so no page runs meanwhile."""
        now = self.clock.now()
        customers = await ports.membership_states.take_due(now, limit)
        if not customers:
            return 0
        await self.evaluate(ports, customers, await ports.segments.in_force(), now)
        return len(customers)

    async def evaluate(
        self,
        ports: SegmentEvaluationPorts,
        customers: Collection[UUID],
        segments: Sequence[SegmentInForce],
        now: datetime,
    ) -> int:
        """Records who entered and exited; returns how many did."""
        facts = await ports.customer_facts.facts(customers, segments, now)
        states = await ports.membership_states.states(customers, [s.segment_id for s in segments])
        changes: list[CanMutateAggregate[UUID]] = []
        saved: list[tuple[UUID, UUID, MembershipState]] = []
        for customer in customers:
            known = facts.get(customer)
            for segment in segments:
                sid = segment.segment_id
                state = states.get((sid, customer)) or MembershipState()
                holds = known is not None and segment.condition.holds(known, now)
                due = segment.condition.changes_at(known, now) if known is not None else None
                if holds == state.member:
                    if due != state.due:
                        saved.append((sid, customer, MembershipState(holds, state.version, due)))
                    continue
                version = state.version + 1
                reason = "condition" if known is not None else "merged"
                changes.append(
                    _entered(
                        segment.segment_id, segment.key, segment.version, customer, version, now
                    )
                    if holds
                    else _exited(
                        segment.segment_id,
                        segment.key,
                        segment.version,
                        customer,
                        version,
                        now,
                        reason,
                    )
                )
                saved.append((sid, customer, MembershipState(holds, version, due)))
        if changes:
            await ports.events.append(changes)
        if saved:
            await ports.membership_states.save(saved)
        return len(changes)

    async def _backfill(
        self, ports: SegmentEvaluationPorts, segment: SegmentInForce, now: datetime
    ) -> None:
        after: UUID | None = None
        while customers := await ports.customer_facts.customers(after, self.page):
            after = customers[-1]
            await self.evaluate(ports, customers, [segment], now)

    async def _empty(self, ports: SegmentEvaluationPorts, sid: UUID, now: datetime) -> None:
        """A deleted segment: everyone in it exits."""
        last = await ports.segments.last_version(sid)
        if last is None:
            return
        key, version = last
        exits = [
            _exited(sid, key, version, customer, member_version + 1, now, "segment deleted")
            for customer, member_version in await ports.membership_states.members(sid)
        ]
        if exits:
            await ports.events.append(exits)
        await ports.membership_states.empty(sid)


def _entered(
    sid: UUID, key: str, version: int, customer: UUID, at_version: int, now: datetime
) -> Membership.Entered:
    return Membership.Entered(**_membership(sid, key, version, customer, at_version, now))


def _exited(
    sid: UUID, key: str, version: int, customer: UUID, at_version: int, now: datetime, reason: str
) -> Membership.Exited:
    fields = _membership(sid, key, version, customer, at_version, now)
    return Membership.Exited(**fields, reason=reason)  # type: ignore[call-arg]


def _membership(
    sid: UUID, key: str, version: int, customer: UUID, at_version: int, now: datetime
) -> dict[str, Any]:
    return {
        "originator_id": membership_id(sid, customer),
        "originator_version": at_version,
        "timestamp": now,
        "segment_id": sid,
        "segment_key": key,
        "segment_version": version,
        "customer_id": customer,
    }
