"""Recorded signals and segment entries, read back for a campaign's dry run; never written."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, TypeAlias

if TYPE_CHECKING:
    from collections.abc import Collection
    from datetime import datetime
    from uuid import UUID

    from domain.segments.aggregate import Membership
    from domain.signals.aggregate import Signal

__all__ = ["Happening", "JourneyHistory"]

Happening: TypeAlias = "Signal.Recorded | Membership.Entered | Membership.Exited"
"""What a journey reacts to: a customer's recorded signal, or entry into or exit from a segment."""


class JourneyHistory(Protocol):
    """The event log read for dry runs: what happened to customers, in the order it was recorded."""

    async def entering(
        self,
        since: datetime,
        until: datetime,
        signal_types: Collection[str],
        segment_keys: Collection[str],
        max_customers: int,
    ) -> list[UUID]:
        """The customers, first met first, with a signal of one of `signal_types` or an entry
        into one of `segment_keys` recorded from `since` to `until` (both included); at most
        `max_customers` of them."""
        ...

    async def lives(self, customers: Collection[UUID], until: datetime) -> list[Happening]:
        """Every signal and segment entry or exit of these customers recorded up to `until`
        (included), in the order they were recorded."""
        ...
