"""A campaign named by a client, by its key or its id, loaded, changed and saved."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING
from uuid import UUID

from application.conflicts import retry_on_conflict
from domain.campaign.aggregate import Campaign, campaign_id
from domain.shared.errors import NotFound

if TYPE_CHECKING:
    from collections.abc import Callable

    from ports.unit_of_work import Repository, UnitsOfWork

__all__ = ["Written", "change_campaign", "load_campaign", "streams_named"]


@dataclass(frozen=True, slots=True)
class Written:
    """What a command did to a campaign."""

    campaign_id: UUID
    key: str
    created: bool  # the campaign is new
    changed: bool  # False: it was so already, nothing was recorded


def streams_named(ref: str) -> list[UUID]:
    """The streams `ref` may name: the id it reads as, if any, then the one of the key it is."""
    streams = []
    with contextlib.suppress(ValueError):
        streams.append(UUID(ref))
    with contextlib.suppress(ValueError):
        streams.append(campaign_id(ref))
    return streams


async def load_campaign(campaigns: Repository[Campaign], ref: str) -> Campaign:
    """The campaign under the id or key `ref`; NotFound if there is none."""
    streams = streams_named(ref)
    found = await campaigns.get(streams) if streams else {}
    for stream in streams:
        if stream in found:
            return found[stream]
    raise NotFound(f"no campaign {ref!r}")


async def change_campaign(
    uows: UnitsOfWork, ref: str, change: Callable[[Campaign], bool]
) -> Written:
    """Loads the campaign, calls `change` on it and saves what it recorded, if anything."""

    async def attempt() -> Written:
        async with uows() as uow:
            campaigns = uow.repository(Campaign)
            campaign = await load_campaign(campaigns, ref)
            changed = change(campaign)
            if changed:
                campaigns.add(campaign)
            return Written(campaign.id, campaign.key, created=False, changed=changed)

    return await retry_on_conflict(attempt)
