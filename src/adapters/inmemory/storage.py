"""What one in-memory installation holds: the event log and the side tables beside it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from uuid import UUID

from adapters.inmemory.conversation_roster import RosterTables
from adapters.inmemory.event_store import InMemoryEventStore

if TYPE_CHECKING:
    from datetime import datetime

    from domain.customer.identities import Identity
    from domain.policy.decision import SendRequest
    from domain.policy.vocabulary import Channel
    from ports.approvals import ApprovalRecord
    from ports.delivery import Delivery, FallbackPlan
    from ports.providers import StatusUpdate
    from ports.unit_of_work import EarlierRequest

__all__ = ["DecisionRow", "DeferredRow", "FallbackRow", "InMemoryStorage", "OutboxEntry"]


@dataclass(frozen=True, slots=True)
class DecisionRow:
    decision_id: UUID
    message_id: UUID
    customer_id: UUID
    stream_version: int


@dataclass(frozen=True, slots=True)
class DeferredRow:
    message_id: UUID
    customer_id: UUID
    due_at: datetime
    request: SendRequest
    origin: str
    delivery: Delivery | None = None
    approval_id: UUID | None = None


@dataclass(slots=True)
class OutboxEntry:
    """An allowed message waiting for a dispatcher; None for `due_at`: due at once."""

    message_id: UUID
    channel: Channel
    due_at: datetime | None = None
    attempts: int = 0
    leased_until: datetime | None = None
    trace_context: str | None = None  # the queuing span's `traceparent` (ADR 0020)


@dataclass(slots=True)
class FallbackRow:
    message_id: UUID
    customer_id: UUID
    plan: FallbackPlan
    leased_until: datetime | None = None


@dataclass
class InMemoryStorage:
    """Shared by the adapters of one test, as PostgreSQL is by those of one service."""

    events: InMemoryEventStore = field(default_factory=InMemoryEventStore)
    identities: dict[Identity, UUID] = field(default_factory=dict)
    merges: dict[UUID, UUID] = field(default_factory=dict)  # merged id -> its survivor now
    decisions: dict[UUID, DecisionRow] = field(default_factory=dict)
    requests: dict[str, EarlierRequest] = field(default_factory=dict)
    deferred: dict[UUID, DeferredRow] = field(default_factory=dict)
    held: set[UUID] = field(default_factory=set)  # deferred messages a unit of work claimed
    outbox: dict[UUID, OutboxEntry] = field(default_factory=dict)
    fallbacks: dict[UUID, FallbackRow] = field(default_factory=dict)
    approvals: dict[UUID, ApprovalRecord] = field(default_factory=dict)
    messages: set[UUID] = field(default_factory=set)  # every message ever put in the outbox
    parked: list[StatusUpdate] = field(default_factory=list)
    roster: RosterTables = field(default_factory=RosterTables)  # listings and agents' loads
