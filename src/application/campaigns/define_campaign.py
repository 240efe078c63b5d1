"""Creates a campaign as a draft, and edits its journey: in place while it is a draft, as a new
version once it went live (moving enrolled customers only as its migration says).

A journey is read and checked whole, against the templates and segments that exist, before
anything is recorded; its faults are named by their path in a draft `{name, journey,
migration}` (`$.journey.steps.welcome.template`), as the aggregate names a migration's. The
steps a migration moves customers to are reached by them, whatever leads there. Every fault
of the journey and of the migration is answered at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from application.campaigns.stored import Written, load_campaign
from application.campaigns.teams import check_campaign, check_journey
from application.conflicts import retry_on_conflict
from domain.campaign.aggregate import (
    Campaign,
    CampaignStatus,
    Migration,
    campaign_id,
    check_campaign_key,
)
from domain.campaign.journey_reader import (
    JourneyFault,
    JourneyInvalid,
    decode_journey,
    decode_part,
    read_part,
    under_faults,
)
from domain.shared.errors import DomainError

if TYPE_CHECKING:
    from collections.abc import Set

    from domain.campaign.journey import Journey
    from ports.campaigns import JourneyReferences
    from ports.clock import Clock
    from ports.unit_of_work import UnitsOfWork

__all__ = [
    "CampaignDraft",
    "CampaignExists",
    "CreateCampaign",
    "EditCampaign",
    "read_journey",
    "read_migration",
]


@dataclass(frozen=True, slots=True)
class CampaignDraft:
    """A campaign as a client writes it: its name and its journey document."""

    name: str
    journey: Mapping[str, Any]


class CampaignExists(DomainError):
    """A create under a key that holds another campaign; an edit changes it."""


async def read_journey(
    references: JourneyReferences,
    document: Mapping[str, Any],
    entries: Set[str] = frozenset(),
) -> Journey:
    """The journey, checked against the templates and segments that exist; JourneyInvalid
    names each fault under `$.journey`. `entries`: the steps a migration moves customers to."""
    templates, segments = await asyncio.gather(
        references.template_keys(), references.segment_keys()
    )
    try:
        return decode_journey(document, templates=templates, segments=segments, entries=entries)
    except JourneyInvalid as invalid:
        faults = [
            JourneyFault("$.journey" + fault.path.removeprefix("$"), fault.reason)
            for fault in invalid.faults
        ]
        raise JourneyInvalid.of(faults) from None


def read_migration(document: Mapping[str, Any] | Migration | None) -> Migration | None:
    """A migration as a client wrote it (`{"moves": [...]}`), None for one that moves nobody;
    JourneyInvalid names each fault under `$.migration`."""
    if isinstance(document, Migration | None):
        migration = document
    else:
        migration = decode_part(document, Migration, "$.migration")
    return migration if migration is not None and migration.moves else None


class CreateCampaign:
    """A new draft under a key; the same draft again records nothing, so a retry is harmless."""

    def __init__(self, uows: UnitsOfWork, clock: Clock, references: JourneyReferences) -> None:
        self.uows = uows
        self.clock = clock
        self.references = references

    async def __call__(
        self, key: str, draft: CampaignDraft, by: str, teams: Set[str] | None = None
    ) -> Written:
        """`teams`: those of a key limited to teams, which may only write a journey that sends
        as them (SendsAsOtherTeams); None: every team."""
        stream = campaign_id(check_campaign_key(key))
        journey = await read_journey(self.references, draft.journey)
        check_journey(journey, teams)

        async def attempt() -> Written:
            async with self.uows() as uow:
                campaigns = uow.repository(Campaign)
                campaign = (await campaigns.get([stream])).get(stream)
                if campaign is None:
                    campaign = Campaign.create(key, draft.name, journey, by, self.clock.now())
                    campaigns.add(campaign)
                    return Written(campaign.id, key, created=True, changed=True)
                if (campaign.name, campaign.journey) != (draft.name, journey):
                    raise CampaignExists(
                        f"campaign {key!r} exists with another name or journey; PUT changes it"
                    )
                check_campaign(campaign.versions, teams)
                return Written(campaign.id, key, created=False, changed=False)

        return await retry_on_conflict(attempt)


class EditCampaign:
    """A draft changes in place; a live or paused campaign publishes a new version, with the
    migration of its enrolled customers. The same edit again records nothing."""

    def __init__(self, uows: UnitsOfWork, clock: Clock, references: JourneyReferences) -> None:
        self.uows = uows
        self.clock = clock
        self.references = references

    async def __call__(
        self,
        ref: str,
        draft: CampaignDraft,
        by: str,
        migration: Migration | Mapping[str, Any] | None = None,
        teams: Set[str] | None = None,
    ) -> Written:
        """`migration`: a Migration, or its document as the client wrote it. `teams`: those of
        a key limited to teams, which may only edit a campaign whose every version, and the
        journey written, send as them (SendsAsOtherTeams); None: every team."""
        if teams is not None:
            async with self.uows() as uow:
                check_campaign((await load_campaign(uow.repository(Campaign), ref)).versions, teams)
        faults: list[JourneyFault] = []
        moves: Migration | None = None
        if isinstance(migration, Migration | None):
            moves = read_migration(migration)
        else:
            # a move with a faulty field still has its other fields checked
            moves, faults = read_part(migration, Migration, "$.migration")
            moves = moves if moves is not None and moves.moves else None
        try:
            journey = await read_journey(
                self.references, draft.journey, moves.targets if moves else frozenset()
            )
        except JourneyInvalid as invalid:
            faults[:0] = invalid.faults
        if faults:
            faulty = frozenset(fault.path for fault in faults)
            more = await self._migration_faults(ref, draft, moves)
            more = [
                fault
                for fault in more
                if not under_faults(fault, faulty) and f"{fault.path}_version" not in faulty
            ]  # nor a move's from, checked against a from_version that is a stand-in
            raise JourneyInvalid.of([*faults, *more])
        check_journey(journey, teams)

        async def attempt() -> Written:
            async with self.uows() as uow:
                campaigns = uow.repository(Campaign)
                campaign = await load_campaign(campaigns, ref)
                check_campaign(campaign.versions, teams)
                same = (campaign.name, campaign.journey) == (draft.name, journey)
                if same and moves == campaign.migrations.get(campaign.number):
                    return Written(campaign.id, campaign.key, created=False, changed=False)
                changed = campaign.edit(draft.name, journey, by, self.clock.now(), moves)
                if changed:
                    campaigns.add(campaign)
                return Written(campaign.id, campaign.key, created=False, changed=changed)

        return await retry_on_conflict(attempt)

    async def _migration_faults(
        self, ref: str, draft: CampaignDraft, migration: Migration | None
    ) -> list[JourneyFault]:
        """With a journey refused, what is wrong with its migration too, if the campaign can
        tell (it has enrolled customers to move, and versions to move them from)."""
        if migration is None:
            return []
        async with self.uows() as uow:
            try:
                campaign = await load_campaign(uow.repository(Campaign), ref)
            except DomainError:
                return []  # the journey's faults answer first
        if campaign.status is CampaignStatus.DRAFT:
            return []
        steps = draft.journey.get("steps")
        return campaign.migration_faults(migration, steps if isinstance(steps, Mapping) else ())
