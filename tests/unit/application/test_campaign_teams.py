"""A key limited to teams acts on and reads only the campaigns whose every version sends as its
teams alone: the check itself, the use cases that write campaigns, and the read side."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.inmemory.campaigns import InMemoryCampaigns
from adapters.inmemory.history import InMemoryHistory
from adapters.inmemory.unit_of_work import InMemoryUnitsOfWork
from application.campaigns.change_status import ChangeCampaignStatus, StatusChange
from application.campaigns.define_campaign import CampaignDraft
from application.campaigns.teams import (
    SendsAsOtherTeams,
    campaign_teams,
    check_campaign,
    check_journey,
    sends_as_other_teams,
)
from application.queries.campaign_teams import CampaignTeams
from domain.campaign.aggregate import CampaignStatus, Migration, StepMove
from domain.shared.errors import NotFound
from tests.unit.application.test_campaigns import Campaigns
from tests.unit.domain.campaign.journeys import example, journey, read, send

GROWTH = frozenset({"growth"})


def of_team(team: str, step: str = "w") -> dict[str, Any]:
    """A journey entered through the API whose one send is `team`'s."""
    return journey({step: send(team=team)})


def draft(team: str, step: str = "w") -> CampaignDraft:
    return CampaignDraft(f"Of {team}", of_team(team, step))


class ScopedCampaigns(Campaigns):
    """The campaign use cases, their changes of status asked by a key of `teams`."""

    def __init__(self) -> None:
        super().__init__()
        self.status = ChangeCampaignStatus(InMemoryUnitsOfWork(self.storage), self.clock)

    async def change(
        self, ref: str, change: StatusChange, teams: frozenset[str] | None = None
    ) -> None:
        reason = "done" if change is StatusChange.ARCHIVE else None
        await self.status(ref, change, "ana" if teams else "admin", reason, teams)


def refused(error: SendsAsOtherTeams) -> list[tuple[str, str]]:
    return [(fault.path, fault.reason) for fault in error.faults]


class TestTeamsOfAJourney:
    def test_are_those_its_send_steps_send_as(self) -> None:
        document = journey({"w": send(team="billing", next="x"), "x": send(team="growth")})
        assert read(document).teams() == {"billing", "growth"}
        assert read(example()).teams() == {"growth"}

    def test_a_journey_without_a_send_sends_as_no_team(self) -> None:
        assert read(journey({"bye": {"type": "exit"}})).teams() == frozenset()

    def test_a_campaigns_are_those_of_every_version(self) -> None:
        assert campaign_teams([read(of_team("growth")), read(of_team("billing"))]) == {
            "billing",
            "growth",
        }
        assert campaign_teams([]) == frozenset()


class TestSendsAsOtherTeams:
    def test_a_journey_of_the_keys_teams_has_none(self) -> None:
        assert sends_as_other_teams(read(of_team("growth")), GROWTH) == []
        assert sends_as_other_teams(read(of_team("growth")), {"growth", "billing"}) == []
        check_journey(read(of_team("growth")), GROWTH)

    def test_a_key_of_every_team_may_write_any(self) -> None:
        assert sends_as_other_teams(read(of_team("billing")), None) == []
        check_journey(read(of_team("billing")), None)

    def test_each_send_of_another_team_is_named_by_the_path_of_its_team(self) -> None:
        document = journey(
            {
                "w": send(team="billing", next="x"),
                "x": send(team="growth", next="y"),
                "y": send(team="support"),
            }
        )
        with pytest.raises(SendsAsOtherTeams) as refusal:
            check_journey(read(document), GROWTH)
        assert refused(refusal.value) == [
            ("$.journey.steps.w.team", "sends as team 'billing'; this key acts for growth only"),
            ("$.journey.steps.y.team", "sends as team 'support'; this key acts for growth only"),
        ]

    def test_a_journey_without_a_send_is_any_keys(self) -> None:
        check_journey(read(journey({"bye": {"type": "exit"}})), GROWTH)

    def test_a_campaign_is_refused_for_a_send_of_another_team_in_any_version(self) -> None:
        versions = {1: read(of_team("billing")), 2: read(of_team("growth"))}
        with pytest.raises(SendsAsOtherTeams) as refusal:
            check_campaign(versions, GROWTH)
        assert refused(refusal.value) == [
            (
                "$.journey.steps.w.team",
                "version 1 sends as team 'billing'; this key acts for growth only",
            )
        ]
        check_campaign(versions, {"growth", "billing"})
        check_campaign(versions, None)


class TestWritesOfAKeyLimitedToTeams:
    async def test_it_creates_a_campaign_of_its_teams(self) -> None:
        campaigns = Campaigns()
        written = await campaigns.create("ours", draft("growth"), "ana", GROWTH)
        assert written.created

    async def test_it_cannot_create_one_that_sends_as_another_team_and_nothing_is_stored(
        self,
    ) -> None:
        campaigns = Campaigns()
        with pytest.raises(SendsAsOtherTeams) as refusal:
            await campaigns.create("theirs", draft("billing"), "ana", GROWTH)
        assert [path for path, _ in refused(refusal.value)] == ["$.journey.steps.w.team"]
        assert campaigns.recorded("theirs") == []

    async def test_the_same_draft_again_is_not_answered_for_a_campaign_of_another_team(
        self,
    ) -> None:
        campaigns = Campaigns()
        await campaigns.create("mixed", draft("billing"), "admin")
        await campaigns.activate("mixed", "admin")
        await campaigns.edit("mixed", draft("growth"), "admin")
        with pytest.raises(SendsAsOtherTeams):
            await campaigns.create("mixed", draft("growth"), "ana", GROWTH)

    async def test_it_cannot_edit_its_campaign_into_one_that_sends_as_another_team(
        self,
    ) -> None:
        campaigns = Campaigns()
        await campaigns.create("ours", draft("growth"), "ana", GROWTH)
        await campaigns.activate("ours", "ana")
        with pytest.raises(SendsAsOtherTeams) as refusal:
            await campaigns.edit("ours", draft("billing"), "ana", None, GROWTH)
        assert [path for path, _ in refused(refusal.value)] == ["$.journey.steps.w.team"]
        assert campaigns.recorded("ours") == ["Created", "Activated"]

    async def test_it_cannot_edit_another_teams_campaign_even_into_its_own(self) -> None:
        campaigns = Campaigns()
        await campaigns.create("theirs", draft("billing"), "admin")
        await campaigns.activate("theirs", "admin")
        moves = Migration(moves=(StepMove(from_="w", to="w"),))
        with pytest.raises(SendsAsOtherTeams):
            await campaigns.edit("theirs", draft("growth"), "ana", moves, GROWTH)
        assert campaigns.recorded("theirs") == ["Created", "Activated"]

    async def test_an_earlier_version_of_another_team_keeps_the_campaign_from_it(self) -> None:
        campaigns = ScopedCampaigns()
        await campaigns.create("mixed", draft("billing"), "admin")
        await campaigns.change("mixed", StatusChange.ACTIVATE)
        await campaigns.edit("mixed", draft("growth"), "admin")
        await campaigns.change("mixed", StatusChange.PAUSE)
        # Those still on version 1 would go on with billing's sends.
        for change in (StatusChange.RESUME, StatusChange.ARCHIVE):
            with pytest.raises(SendsAsOtherTeams) as refusal:
                await campaigns.change("mixed", change, GROWTH)
            assert "version 1 sends as team 'billing'" in str(refusal.value)
        found = await campaigns.queries.get("mixed")
        assert found.summary.status is CampaignStatus.PAUSED

    async def test_it_takes_its_campaign_through_its_life_and_no_other_teams(self) -> None:
        campaigns = ScopedCampaigns()
        await campaigns.create("ours", draft("growth"), "admin")
        await campaigns.create("theirs", draft("billing"), "admin")
        with pytest.raises(SendsAsOtherTeams):
            await campaigns.change("theirs", StatusChange.ACTIVATE, GROWTH)
        await campaigns.change("theirs", StatusChange.ACTIVATE)
        for change in (StatusChange.ACTIVATE, StatusChange.PAUSE, StatusChange.RESUME):
            await campaigns.change("ours", change, GROWTH)
            if change is not StatusChange.ACTIVATE:
                with pytest.raises(SendsAsOtherTeams):
                    await campaigns.change("theirs", change, GROWTH)
        await campaigns.change("ours", StatusChange.ARCHIVE, GROWTH)
        with pytest.raises(SendsAsOtherTeams):
            await campaigns.change("theirs", StatusChange.ARCHIVE, GROWTH)
        assert campaigns.recorded("theirs") == ["Created", "Activated"]
        assert campaigns.recorded("ours") == [
            "Created",
            "Activated",
            "Paused",
            "Resumed",
            "Archived",
        ]


class TestReadsOfAKeyLimitedToTeams:
    @staticmethod
    def teams_of(campaigns: Campaigns) -> CampaignTeams:
        return CampaignTeams(
            InMemoryCampaigns(campaigns.storage), InMemoryHistory(campaigns.storage)
        )

    async def test_it_lists_only_the_campaigns_of_its_teams_a_full_page_at_a_time(self) -> None:
        campaigns = Campaigns()
        for key, team in (("a", "growth"), ("b", "billing"), ("c", "billing"), ("d", "growth")):
            await campaigns.create(key, draft(team), "admin")
        await campaigns.create(
            "e", CampaignDraft("No sends", journey({"x": {"type": "exit"}})), "admin"
        )
        teams = self.teams_of(campaigns)
        everything = await teams.list(None)
        assert [s.key for s in everything.items] == ["a", "b", "c", "d", "e"]
        first = await teams.list(GROWTH, limit=2)
        assert [s.key for s in first.items] == ["a", "d"]
        assert first.next_cursor is not None
        rest = await teams.list(GROWTH, after=first.next_cursor, limit=2)
        assert [s.key for s in rest.items] == ["e"]
        assert rest.next_cursor is None
        billing = await teams.list({"billing"}, status=CampaignStatus.DRAFT)
        assert [s.key for s in billing.items] == ["b", "c", "e"]

    async def test_one_campaign_of_another_team_is_refused(self) -> None:
        campaigns = Campaigns()
        await campaigns.create("theirs", draft("billing"), "admin")
        teams = self.teams_of(campaigns)
        with pytest.raises(SendsAsOtherTeams):
            await teams.get("theirs", GROWTH)
        with pytest.raises(SendsAsOtherTeams):
            await teams.check("theirs", GROWTH)
        assert (await teams.get("theirs", None)).summary.key == "theirs"
        await teams.check("theirs", {"billing"})
        with pytest.raises(NotFound):
            await teams.check("nobody", GROWTH)
