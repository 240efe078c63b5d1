"""What a customer's context reads beside the customer: their last signals and their last
decisions, newest first, each read with an index and a limit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime  # rendered by its run-time type hints
from typing import TYPE_CHECKING, Protocol
from uuid import UUID

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence

    from ports.customers import StoredEvent

__all__ = ["ContextReads", "RecentSignal"]


@dataclass(frozen=True, slots=True)
class RecentSignal:
    """A signal of the customer: its type and when it happened, never its properties."""

    signal_id: UUID
    signal_type: str
    occurred_at: datetime


class ContextReads(Protocol):
    """The customer's last signals (from the signal read models) and decisions (their events)."""

    async def last_signals(
        self, customer_id: UUID, types: Collection[str] | None, limit: int
    ) -> list[RecentSignal]:
        """The customer's `limit` latest signals, of `types` only when given, newest first;
        a merged customer's signals are their survivor's."""
        ...

    async def last_decisions(
        self, customer_ids: Collection[UUID], topics: Collection[str], limit: int
    ) -> Sequence[StoredEvent]:
        """The `limit` latest decision events (of `topics`) in these customers' streams, newest
        first."""
        ...
