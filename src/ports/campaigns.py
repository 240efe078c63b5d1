"""Campaigns as the read side knows them, and the keys a journey may name.

Campaign aggregates are kept by the unit of work: `uow.repository(Campaign)`, by
`campaign_id(key)`. Their listing is written in the statement that records their events, so it
is never behind them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from domain.campaign.aggregate import Campaign, CampaignStatus
from domain.shared.topics import events_of
from ports.directory import InvalidCursor

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime
    from uuid import UUID

__all__ = [
    "CampaignDetail",
    "CampaignPage",
    "CampaignReadModel",
    "CampaignSummary",
    "CampaignVersion",
    "InvalidCursor",
    "JourneyReferences",
    "versions_written",
]


@dataclass(frozen=True, slots=True)
class CampaignVersion:
    """A version's number, when its journey was written last, and by whom."""

    version: int
    at: datetime
    by: str


@dataclass(frozen=True, slots=True)
class CampaignSummary:
    """A campaign as listed: its status and the version in force."""

    key: str
    campaign_id: UUID
    name: str
    status: CampaignStatus
    version: int
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class CampaignDetail:
    """A campaign with the journey in force and every version's history."""

    summary: CampaignSummary
    journey: dict[str, Any]
    versions: tuple[CampaignVersion, ...]


@dataclass(frozen=True, slots=True)
class CampaignPage:
    items: list[CampaignSummary]
    next_cursor: str | None


class CampaignReadModel(Protocol):
    """Campaign definitions, as committed."""

    async def page(
        self, *, status: CampaignStatus | None, after: str | None, limit: int
    ) -> CampaignPage:
        """Campaigns by key, of one status if given; `after` is the previous page's cursor
        (InvalidCursor if it is none)."""
        ...

    async def detail(self, campaign_id: UUID) -> CampaignDetail | None:
        """The campaign under that id, if there is one."""
        ...


class JourneyReferences(Protocol):
    """What a journey may name that lives outside it."""

    async def template_keys(self) -> set[str]:
        """The keys of the templates published."""
        ...

    async def segment_keys(self) -> set[str]:
        """The keys of the segments defined and not deleted."""
        ...


_EVENTS = events_of(Campaign)
_WRITE_A_VERSION = tuple(_EVENTS[name] for name in ("Created", "DraftEdited", "VersionPublished"))


def versions_written(events: Iterable[object]) -> list[CampaignVersion]:
    """The versions these events of a campaign wrote, in order: the draft's edits rewrite
    version 1, each published version is the next."""
    written = []
    for event in events:
        if isinstance(event, _WRITE_A_VERSION):
            # A draft is always version 1: only publishing a version moves the number on.
            fields: Any = event
            written.append(
                CampaignVersion(getattr(fields, "number", 1), fields.timestamp, fields.by)
            )
    return written
