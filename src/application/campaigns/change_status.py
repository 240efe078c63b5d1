"""A campaign's life: activate it, pause and resume it, archive it with a reason.

Each is harmless to repeat: a campaign already so records nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from application.campaigns.stored import change_campaign

if TYPE_CHECKING:
    from application.campaigns.stored import Written
    from ports.clock import Clock
    from ports.unit_of_work import UnitsOfWork

__all__ = ["ActivateCampaign", "ArchiveCampaign", "PauseCampaign", "ResumeCampaign"]


class ActivateCampaign:
    """A draft goes live: customers may enter its version in force."""

    def __init__(self, uows: UnitsOfWork, clock: Clock) -> None:
        self.uows = uows
        self.clock = clock

    async def __call__(self, ref: str, by: str) -> Written:
        return await change_campaign(self.uows, ref, lambda c: c.activate(by, self.clock.now()))


class PauseCampaign:
    """Holds every enrollment and takes no one new."""

    def __init__(self, uows: UnitsOfWork, clock: Clock) -> None:
        self.uows = uows
        self.clock = clock

    async def __call__(self, ref: str, by: str) -> Written:
        return await change_campaign(self.uows, ref, lambda c: c.pause(by, self.clock.now()))


class ResumeCampaign:
    """A paused campaign continues its enrollments."""

    def __init__(self, uows: UnitsOfWork, clock: Clock) -> None:
        self.uows = uows
        self.clock = clock

    async def __call__(self, ref: str, by: str) -> Written:
        return await change_campaign(self.uows, ref, lambda c: c.resume(by, self.clock.now()))


class ArchiveCampaign:
    """Ends the campaign for good; every enrollment exits with the reason."""

    def __init__(self, uows: UnitsOfWork, clock: Clock) -> None:
        self.uows = uows
        self.clock = clock

    async def __call__(self, ref: str, by: str, reason: str) -> Written:
        return await change_campaign(
            self.uows, ref, lambda c: c.archive(by, reason, self.clock.now())
        )
