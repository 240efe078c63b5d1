"""A campaign's history from its own stream: every change, who made it, when and why, and the
journey of each version (the enrollments' journals name their steps' kinds from it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime  # a change's type, resolved when it is served
from typing import TYPE_CHECKING, Any

from application.queries.campaigns import CampaignQueries
from domain.campaign.aggregate import CampaignStatus

if TYPE_CHECKING:
    from collections.abc import Sequence
    from uuid import UUID

    from domain.campaign.journey import Journey
    from ports.campaigns import CampaignReadModel, CampaignSummary
    from ports.history import History

__all__ = ["CampaignChange", "CampaignHistory", "CampaignHistoryQueries", "versions_of"]

# The Campaign's events by their names (domain/campaign/aggregate.py), as the history calls them.
_CHANGES = {
    "Created": "created",
    "DraftEdited": "draft_edited",
    "VersionPublished": "version_published",
    "Activated": "activated",
    "Paused": "paused",
    "Resumed": "resumed",
    "Archived": "archived",
}
_STATUS_AFTER = {
    "Created": CampaignStatus.DRAFT,
    "Activated": CampaignStatus.ACTIVE,
    "Paused": CampaignStatus.PAUSED,
    "Resumed": CampaignStatus.ACTIVE,
    "Archived": CampaignStatus.ARCHIVED,
}


@dataclass(frozen=True, slots=True)
class CampaignChange:
    """One change: what it was, when, by which API key (its name, role and id), the status and
    version in force after it, and the reason given (a pause's, if any; an archive's)."""

    change: str
    at: datetime
    by: str
    status: CampaignStatus
    version: int
    reason: str | None
    name: str | None  # the campaign's name as a create or an edit wrote it
    migrated: bool  # a version whose migration moves enrolled customers


@dataclass(frozen=True, slots=True)
class CampaignHistory:
    campaign: CampaignSummary
    changes: list[CampaignChange]


def versions_of(events: Sequence[Any]) -> dict[int, Journey]:
    """Each version's journey, as a campaign's events wrote it."""
    versions: dict[int, Journey] = {}
    number = 1
    for event in events:
        name = type(event).__name__
        if name in ("Created", "DraftEdited"):
            versions[number] = event.journey
        elif name == "VersionPublished":
            number = event.number
            versions[number] = event.journey
    return versions


def _changes(events: Sequence[Any]) -> list[CampaignChange]:
    changes = []
    status, version = CampaignStatus.DRAFT, 1
    for event in events:
        name = type(event).__name__
        if name not in _CHANGES:
            continue
        status = _STATUS_AFTER.get(name, status)
        if name == "VersionPublished":
            version = event.number
        migration = getattr(event, "migration", None)
        changes.append(
            CampaignChange(
                _CHANGES[name],
                event.timestamp,
                event.by,
                status,
                version,
                getattr(event, "reason", None),
                getattr(event, "name", None),
                bool(migration is not None and migration.moves),
            )
        )
    return changes


class CampaignHistoryQueries:
    """Reads a campaign's stream from the event store, the campaign named as it is listed."""

    def __init__(self, campaigns: CampaignReadModel, history: History) -> None:
        self.campaigns = CampaignQueries(campaigns)
        self.history = history

    async def get(self, ref: str) -> CampaignHistory:
        """Every change of the campaign `ref` (key or id), oldest first; NotFound if none."""
        summary = (await self.campaigns.get(ref)).summary
        return CampaignHistory(summary, _changes(await self.history.stream(summary.campaign_id)))

    async def versions(self, campaign_id: UUID) -> dict[int, Journey]:
        """Each version's journey."""
        return versions_of(await self.history.stream(campaign_id))
