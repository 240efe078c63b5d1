"""What the trigger matcher keeps between pages: each trigger as of its place in the log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Collection
    from uuid import UUID

    from domain.triggers.definition import TriggerOn
    from ports.processes import EventLog

__all__ = ["KnownTrigger", "TriggerMatchingPorts", "TriggerStates"]


@dataclass(frozen=True, slots=True)
class KnownTrigger:
    """A trigger as of the matcher's place in the log; `events_seen` is its stream version."""

    trigger_id: UUID
    key: str
    version: int
    on: TriggerOn
    active: bool
    events_seen: int


class TriggerStates(Protocol):
    """The triggers the matcher has folded, kept with its position."""

    async def seen(self) -> int:
        """How many Trigger events the states hold, all triggers together."""
        ...

    async def load(self) -> list[KnownTrigger]:
        """Every trigger folded so far."""
        ...

    async def save(self, triggers: Collection[KnownTrigger]) -> None:
        """Replaces the states of these triggers."""
        ...


class TriggerMatchingPorts(Protocol):
    """The ports the matcher works through, bound to its runner's transaction."""

    @property
    def events(self) -> EventLog:
        """Where firings are recorded."""
        ...

    @property
    def trigger_states(self) -> TriggerStates:
        """The triggers as of the matcher's place in the log."""
        ...
