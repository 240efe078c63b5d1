"""What the segment evaluator reads and keeps: segments in force, customers' facts, and each
customer's state in each segment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence
    from datetime import datetime
    from uuid import UUID

    from domain.segments.conditions import Condition, SegmentFacts
    from ports.processes import EventLog

__all__ = [
    "CustomerFacts",
    "MembershipState",
    "MembershipStates",
    "SegmentEvaluationPorts",
    "SegmentInForce",
    "SegmentsInForce",
    "TimedEvaluation",
]


@dataclass(frozen=True, slots=True)
class SegmentInForce:
    """A segment's version in force, and its condition."""

    segment_id: UUID
    key: str
    version: int
    condition: Condition


@dataclass(slots=True)
class MembershipState:
    """One customer in one segment: a member or not, its stream's version, when to look again."""

    member: bool = False
    version: int = 0
    due: datetime | None = None


class SegmentsInForce(Protocol):
    """The segments defined and not deleted."""

    async def in_force(self) -> list[SegmentInForce]:
        """Every segment in force."""
        ...

    async def last_version(self, segment_id: UUID) -> tuple[str, int] | None:
        """A segment's key and latest version, deleted or not; None if it never was."""
        ...


class CustomerFacts(Protocol):
    """What segment conditions hold over: profiles, identities, consents and signals."""

    async def facts(
        self, customers: Collection[UUID], segments: Sequence[SegmentInForce], now: datetime
    ) -> dict[UUID, SegmentFacts]:
        """The facts of each customer that exists and is not merged into another."""
        ...

    async def customers(self, after: UUID | None, limit: int) -> list[UUID]:
        """Up to `limit` customers not merged into another, by id, after `after`."""
        ...


class MembershipStates(Protocol):
    """Each customer's state in each segment."""

    async def states(
        self, customers: Collection[UUID], segments: Collection[UUID]
    ) -> dict[tuple[UUID, UUID], MembershipState]:
        """The states by (segment id, customer id); a missing one was never a member."""
        ...

    async def save(self, states: Sequence[tuple[UUID, UUID, MembershipState]]) -> None:
        """Stores states by segment and customer id."""
        ...

    async def members(self, segment: UUID) -> list[tuple[UUID, int]]:
        """The members of a segment, with their stream's version."""
        ...

    async def empty(self, segment: UUID) -> None:
        """Nobody is a member any more; each exit counts one more version of its stream."""
        ...

    async def take_due(self, now: datetime, limit: int) -> list[UUID]:
        """Up to `limit` customers with a state due by `now`, which stops being due."""
        ...


class SegmentEvaluationPorts(Protocol):
    """The ports the evaluator works through, bound to one transaction."""

    @property
    def events(self) -> EventLog:
        """Where entries and exits are recorded."""
        ...

    @property
    def segments(self) -> SegmentsInForce:
        """The segments to evaluate."""
        ...

    @property
    def customer_facts(self) -> CustomerFacts:
        """What their conditions hold over."""
        ...

    @property
    def membership_states(self) -> MembershipStates:
        """Who is in which segment, and when to look again."""
        ...


class TimedEvaluation(Protocol):
    """The evaluator's work that time alone brings: memberships whose state falls due."""

    @property
    def name(self) -> str:
        """The evaluator's name, whose turn a timer run takes."""
        ...

    async def due(self, ports: SegmentEvaluationPorts, limit: int) -> int:
        """Evaluates up to `limit` customers whose state fell due; how many it evaluated."""
        ...
