"""A campaign's life: activate it, pause and resume it, archive it; one interactor for the four.

Each is harmless to repeat: a campaign already so records nothing. A pause may say why; an
archive must, as every enrollment exits with its reason.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from application.campaigns.stored import change_campaign
from application.campaigns.teams import check_campaign
from domain.shared.errors import InvalidValue

if TYPE_CHECKING:
    from collections.abc import Set

    from application.campaigns.stored import Written
    from domain.campaign.aggregate import Campaign
    from ports.clock import Clock
    from ports.unit_of_work import UnitsOfWork

__all__ = ["ChangeCampaignStatus", "StatusChange"]


class StatusChange(StrEnum):
    """What a client may do to a campaign's status."""

    ACTIVATE = "activate"
    PAUSE = "pause"
    RESUME = "resume"
    ARCHIVE = "archive"


class ChangeCampaignStatus:
    """Activates, pauses, resumes or archives the campaign named by its key or id."""

    def __init__(self, uows: UnitsOfWork, clock: Clock) -> None:
        self.uows = uows
        self.clock = clock

    async def __call__(
        self,
        ref: str,
        change: StatusChange,
        by: str,
        reason: str | None = None,
        teams: Set[str] | None = None,
    ) -> Written:
        """`teams`: those of a key limited to teams, which may only change a campaign whose
        every version sends as them (SendsAsOtherTeams); None: every team."""
        if change is StatusChange.ARCHIVE and not reason:
            raise InvalidValue(
                "reason", "an archive needs a reason: every enrollment exits with it"
            )
        if reason is not None and change in (StatusChange.ACTIVATE, StatusChange.RESUME):
            raise InvalidValue("reason", f"{change} takes no reason; pause and archive do")

        def apply(campaign: Campaign) -> bool:
            check_campaign(campaign.versions, teams)
            now = self.clock.now()
            if change is StatusChange.ACTIVATE:
                return campaign.activate(by, now)
            if change is StatusChange.PAUSE:
                return campaign.pause(by, now, reason)
            if change is StatusChange.RESUME:
                return campaign.resume(by, now)
            return campaign.archive(by, reason or "", now)

        return await change_campaign(self.uows, ref, apply)
