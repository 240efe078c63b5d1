"""Where received signals are committed before they are attributed to customers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence
    from datetime import datetime
    from uuid import UUID

__all__ = ["ReceivedSignal", "SignalIntake"]


@dataclass(frozen=True, slots=True)
class ReceivedSignal:
    """One validated signal as the producer sent it, with the producer's event id."""

    event_id: str
    payload: bytes


class SignalIntake(Protocol):
    """Commits received signals once each, and tells which of them are attributed."""

    async def receive(self, signals: Sequence[ReceivedSignal], at: datetime) -> list[bool]:
        """Commits the signals not received before; for each, whether it was new."""
        ...

    async def attributed(self, signal_ids: Collection[UUID]) -> dict[UUID, UUID]:
        """The customer of each of these signals that is recorded already."""
        ...
