"""Delivery: what an allowed message will say, its fallback, and what the read side asks."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime  # stored with deferred messages; read at run time
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol
from uuid import UUID

from domain.policy.decision import SendRequest
from domain.policy.vocabulary import Channel
from ports.templates import RenderedContent

if TYPE_CHECKING:
    from collections.abc import Sequence

    from domain.message.aggregate import Message
    from ports.providers import StatusUpdate

__all__ = [
    "CostLine",
    "Delivery",
    "DeliveryStore",
    "DueFallback",
    "Fallback",
    "FallbackPlan",
]


@dataclass(frozen=True, slots=True)
class Fallback:
    """If the message is not delivered within `after_seconds` (or fails), request it again on
    these channels: decided by the rules like any request."""

    channels: tuple[Channel, ...]
    after_seconds: float


@dataclass(frozen=True, slots=True)
class Delivery:
    """What an allowed message will say, rendered when it was requested, per channel."""

    contents: dict[Channel, RenderedContent]
    campaign: str | None = None
    correlation_id: str | None = None
    fallback: Fallback | None = None


@dataclass(frozen=True, slots=True)
class FallbackPlan:
    """The request a message falls back to, kept with the message until it is delivered."""

    request: SendRequest
    delivery: Delivery
    due_at: datetime


@dataclass(frozen=True, slots=True)
class DueFallback:
    """A message that was not delivered in time, or failed: its fallback is due."""

    message_id: UUID
    customer_id: UUID
    plan_request: SendRequest
    plan_delivery: Delivery
    status: str


@dataclass(frozen=True, slots=True)
class CostLine:
    """Cost and count of messages for one group in a period."""

    group: dict[str, str | None]
    messages: int
    cost: Decimal
    currency: str | None
    by_status: dict[str, int] = field(default_factory=dict)


class DeliveryStore(Protocol):
    """What delivery reads beside the unit of work, and statuses parked until their message
    is known; messages are changed through `uow.repository(Message)` and `uow.outbox`."""

    async def get(self, message_id: UUID) -> Message | None:
        """The message as last committed, for reading only."""
        ...

    async def by_provider_id(self, provider: str, provider_message_id: str) -> UUID | None: ...

    async def park(self, update: StatusUpdate) -> None:
        """Keeps a status whose message is not known yet (once per status)."""
        ...

    async def parked(self, limit: int) -> list[tuple[UUID, StatusUpdate]]:
        """Parked statuses whose message is now known, with the message's id."""
        ...

    async def unpark(self, update: StatusUpdate) -> None: ...

    async def decisions_of(self, message_id: UUID) -> list[UUID]:
        """Every decision made on this message id, oldest first (a deferral, then the rest)."""
        ...

    async def costs(
        self,
        since: datetime,
        until: datetime,
        group_by: Sequence[str],
        teams: frozenset[str] | None = None,
    ) -> list[CostLine]:
        """Messages queued in [since, until), grouped by channel, provider, team or campaign;
        with `teams`, only those teams' messages (None: every message, of a team or none)."""
        ...
