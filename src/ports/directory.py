"""The customer directory read model: customers found by identity, attribute or segment, and
what they did in rolling windows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from datetime import datetime
    from uuid import UUID

__all__ = [
    "ActivityCount",
    "Directory",
    "DirectoryEntry",
    "DirectoryPage",
    "DirectorySearch",
    "InvalidCursor",
]


class InvalidCursor(ValueError):
    """A page cursor this service did not hand out."""


@dataclass(frozen=True, slots=True)
class DirectorySearch:
    """Every given criterion must hold; attribute values compare as JSON values."""

    identity: str | None = None  # TYPE:VALUE, normalised
    identity_type: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    segment_id: UUID | None = None


@dataclass(frozen=True, slots=True)
class DirectoryEntry:
    customer_id: UUID
    identities: list[str]
    profile: dict[str, str | None]
    attributes: dict[str, Any]
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class DirectoryPage:
    customers: list[DirectoryEntry]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class ActivityCount:
    """Signals of one type in the window, and the latest one of all time."""

    signal_type: str
    count: int
    last_at: datetime


class Directory(Protocol):
    """Reads of the customer_directory and signal_counters projections (a moment behind)."""

    async def search(
        self, criteria: DirectorySearch, *, after: str | None, limit: int
    ) -> DirectoryPage:
        """Customers not merged away, in a stable order; `after` is the last page's cursor."""
        ...

    async def activity(self, customer_id: UUID, since: datetime) -> list[ActivityCount]:
        """Signal counts per type since `since`, at the hour: buckets are whole hours."""
        ...
