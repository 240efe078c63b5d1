"""The teams a campaign sends as, and the check that a key limited to teams acts only on
campaigns that send as its teams alone (docs/campaigns.md, Teams).

A campaign's teams are the teams of the send steps of every version it has: customers enrolled
in an earlier version finish on it, and its stats and costs count every version's sends. A
campaign without a send step sends as no team, so any key may act on it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from domain.campaign.journey import Send
from domain.campaign.journey_reader import JourneyFault
from domain.shared.errors import DomainError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Set

    from domain.campaign.journey import Journey

__all__ = [
    "SendsAsOtherTeams",
    "campaign_teams",
    "check_campaign",
    "check_journey",
    "sends_as_other_teams",
]


class SendsAsOtherTeams(DomainError):
    """A key limited to teams asked for a campaign, or a journey, that sends as another team;
    `faults` name each such send step's team by its path in the journey."""

    def __init__(self, faults: Iterable[JourneyFault]) -> None:
        self.faults = tuple(faults)
        super().__init__("; ".join(f"{fault.path}: {fault.reason}" for fault in self.faults))


def campaign_teams(versions: Iterable[Journey]) -> frozenset[str]:
    """The teams a campaign sends as: those of every version's send steps."""
    return frozenset().union(*(journey.teams() for journey in versions))


def sends_as_other_teams(
    journey: Journey, teams: Set[str] | None, version: int | None = None
) -> list[JourneyFault]:
    """The send steps of `journey` whose team is not one of `teams` (None: every team), each
    named by the path of its team (`$.journey.steps.<step>.team`); `version`, the campaign's
    version the journey is, for a journey the request did not write."""
    if teams is None or journey.teams() <= teams:
        return []
    of_version = "" if version is None else f"version {version} "
    acts_for = ", ".join(sorted(teams)) or "no team"
    return [
        JourneyFault(
            f"$.journey.steps.{step_id}.team",
            f"{of_version}sends as team {step.team!r}; this key acts for {acts_for} only",
        )
        for step_id, step in journey.steps.items()
        if isinstance(step, Send) and step.team not in teams
    ]


def check_journey(journey: Journey, teams: Set[str] | None) -> None:
    """SendsAsOtherTeams unless every send step of `journey` is one of `teams`' (None: every
    team)."""
    faults = sends_as_other_teams(journey, teams)
    if faults:
        raise SendsAsOtherTeams(faults)


def check_campaign(versions: Mapping[int, Journey], teams: Set[str] | None) -> None:
    """SendsAsOtherTeams unless every send step of every version is one of `teams`' (None:
    every team)."""
    faults = [
        fault
        for number, journey in sorted(versions.items())
        for fault in sends_as_other_teams(journey, teams, number)
    ]
    if faults:
        raise SendsAsOtherTeams(faults)
