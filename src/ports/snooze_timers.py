"""Durable wake-up times of snoozed conversations.

A timer is set before the snooze commits, so a committed snooze always has one; a timer whose
snooze never committed, or that an earlier wake made moot, finds nothing to wake and is
forgotten. Due timers are leased, so two processes never wake the same conversation at once,
and one that dies mid-wake leaves the timer to fire again when the lease runs out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from datetime import datetime
    from uuid import UUID

__all__ = ["DueSnooze", "SnoozeTimers"]


@dataclass(frozen=True, slots=True)
class DueSnooze:
    """A conversation to wake, and the lease that holds its timer."""

    conversation_id: UUID
    leased_until: datetime


class SnoozeTimers(Protocol):
    """When each snoozed conversation wakes."""

    async def set(self, conversation_id: UUID, due_at: datetime) -> None:
        """The conversation wakes at `due_at` (replacing any earlier time)."""
        ...

    async def lease_due(self, now: datetime, limit: int, lease_seconds: float) -> list[DueSnooze]:
        """Timers due by `now`, held for `lease_seconds` so no other process takes them."""
        ...

    async def forget(self, due: DueSnooze) -> None:
        """The timer fired: gone, unless it was set again since it was leased."""
        ...
