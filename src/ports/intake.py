"""Where received signals are committed before they are attributed to customers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence
    from datetime import datetime
    from uuid import UUID

    from domain.signals.document import ReceivedSignal

__all__ = ["Attribution", "SignalIntake"]


@dataclass(frozen=True, slots=True)
class Attribution:
    """Where a received signal ended: on its customer, or refused, with the reason."""

    customer_id: UUID | None = None
    refused: str | None = None


class SignalIntake(Protocol):
    """Commits received signals once each, and tells which of them are attributed."""

    async def receive(self, signals: Sequence[ReceivedSignal], at: datetime) -> list[bool]:
        """Commits the signals not received before; for each, whether it was new."""
        ...

    async def refuse(self, intake_id: UUID, reason: str, at: datetime) -> None:
        """Records that the received signal `intake_id` cannot be attributed, and why (once)."""
        ...

    async def refused(self, intake_ids: Collection[UUID]) -> set[UUID]:
        """Those of these received signals that were refused already."""
        ...

    async def attributed(self, event_ids: Collection[str]) -> dict[str, Attribution]:
        """Where each of these signals (by producer event id) ended, for those that did."""
        ...
