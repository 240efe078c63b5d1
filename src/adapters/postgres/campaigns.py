"""Campaigns as listed with their events (`listings.CAMPAIGNS`); the keys journeys may name."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING

from adapters.cursors import cursor_of_key, key_of_cursor
from domain.campaign.aggregate import CampaignStatus
from ports.campaigns import CampaignDetail, CampaignPage, CampaignSummary, CampaignVersion

if TYPE_CHECKING:
    from uuid import UUID

    import asyncpg

__all__ = ["PostgresCampaigns", "PostgresJourneyReferences"]

_SUMMARY = "key, campaign_id, name, status, version, updated_at"
_PAGE = f"""
SELECT {_SUMMARY} FROM campaigns
WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR key > $2)
ORDER BY key LIMIT $3
"""
_DETAIL = f"SELECT {_SUMMARY}, journey, versions FROM campaigns WHERE campaign_id = $1"


class PostgresCampaigns:
    """The `campaigns` listing (CampaignReadModel)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def page(
        self, *, status: CampaignStatus | None, after: str | None, limit: int
    ) -> CampaignPage:
        rows = await self.pool.fetch(
            _PAGE, None if status is None else str(status), key_of_cursor(after), limit + 1
        )
        items = [_summary(row) for row in rows[:limit]]
        more = len(rows) > limit
        return CampaignPage(items, cursor_of_key(items[-1].key) if more else None)

    async def detail(self, campaign_id: UUID) -> CampaignDetail | None:
        row = await self.pool.fetchrow(_DETAIL, campaign_id)
        if row is None:
            return None
        versions = json.loads(row["versions"])
        return CampaignDetail(
            _summary(row),
            json.loads(row["journey"]),
            tuple(
                CampaignVersion(int(number), datetime.fromisoformat(v["at"]), v["by"])
                for number, v in sorted(versions.items(), key=lambda item: int(item[0]))
            ),
        )


def _summary(row: asyncpg.Record) -> CampaignSummary:
    return CampaignSummary(
        row["key"],
        row["campaign_id"],
        row["name"],
        CampaignStatus(row["status"]),
        row["version"],
        row["updated_at"],
    )


class PostgresJourneyReferences:
    """Template and segment keys from their listings (JourneyReferences)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def template_keys(self) -> set[str]:
        return {row["key"] for row in await self.pool.fetch("SELECT key FROM templates")}

    async def segment_keys(self) -> set[str]:
        rows = await self.pool.fetch("SELECT key FROM segments WHERE NOT deleted")
        return {row["key"] for row in rows}
