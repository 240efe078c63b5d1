"""Agents and teams as data: every change an event carrying who made it."""

from __future__ import annotations

import pytest

from application.conversations.staff import AlreadyRegistered, KindLoad
from domain.conversation.agents import NotAMember
from domain.conversation.aggregate import Conversation
from domain.conversation.vocabulary import ChannelKind, Presence
from domain.conversation.working_hours import OpenWindow, WorkingHours
from domain.policy.vocabulary import Channel
from domain.shared.errors import InvalidValue, NotFound
from tests.unit.application.conversations.desk import Desk, ana

CAPACITY = {ChannelKind.CHAT: 3, ChannelKind.EMAIL: 10}
LISBON_OFFICE = WorkingHours(
    time_zone="Europe/Lisbon",
    windows=(OpenWindow(days=("mon", "tue", "wed", "thu", "fri"), start="09:00", end="18:00"),),
)


class TestRegisterAgent:
    async def test_a_registered_agent_is_listed_offline_with_skills_and_capacity(self) -> None:
        desk = Desk()
        done = await desk.register_agent(
            "ana.silva", "Ana Silva", frozenset({"billing"}), CAPACITY, "admin key"
        )
        assert (done.created, done.changed) == (True, True)
        [agent] = await desk.agents.list()
        assert (agent.key, agent.skills, agent.presence) == ("ana.silva", ("billing",), "offline")
        assert agent.capacity == {"chat": 3, "email": 10}
        assert desk.count("Agent.Registered") == 1

    async def test_the_same_registration_again_records_nothing(self) -> None:
        desk = Desk()
        await desk.register_agent("ana.silva", "Ana", frozenset(), CAPACITY, "admin")
        again = await desk.register_agent("ana.silva", "Ana", frozenset(), CAPACITY, "admin")
        assert (again.created, again.changed) == (False, False)
        assert desk.count("Agent.Registered") == 1

    async def test_another_agent_under_a_taken_key_is_refused(self) -> None:
        desk = Desk()
        await desk.register_agent("ana.silva", "Ana", frozenset(), CAPACITY, "admin")
        with pytest.raises(AlreadyRegistered):
            await desk.register_agent("ana.silva", "Ana Costa", frozenset(), CAPACITY, "admin")

    async def test_a_capacity_over_the_maximum_names_the_field(self) -> None:
        desk = Desk()
        with pytest.raises(InvalidValue) as refused:
            await desk.register_agent("ana.silva", "Ana", frozenset(), {ChannelKind.CHAT: 500}, "a")
        assert refused.value.field == "capacity.chat"


class TestChangeAgent:
    async def test_skills_capacity_and_presence_change_with_who_changed_them(self) -> None:
        desk = Desk()
        await desk.register_agent("ana.silva", "Ana", frozenset(), CAPACITY, "admin")
        await desk.change_agent_skills("ana.silva", frozenset({"es", "returns"}), "admin key")
        await desk.change_agent_capacity("ana.silva", {ChannelKind.CHAT: 5}, "admin key")
        await desk.change_agent_presence("ana.silva", Presence.AVAILABLE, "ana.silva")
        agent = await desk.agents.get("ana.silva")
        assert agent.skills == ("es", "returns")
        assert agent.capacity == {"chat": 5}
        assert agent.presence == "available"
        changes = [e for e in desk.storage.events.log if ":Agent." in e.topic][1:]
        assert [e.event.by for e in changes] == ["admin key", "admin key", "ana.silva"]

    async def test_a_change_to_what_the_agent_is_records_nothing(self) -> None:
        desk = Desk()
        await desk.register_agent("ana.silva", "Ana", frozenset(), CAPACITY, "admin")
        done = await desk.change_agent_presence("ana.silva", Presence.OFFLINE, "admin")
        assert done.changed is False
        assert desk.count("Agent.PresenceChanged") == 0

    async def test_an_unknown_agent_is_not_found(self) -> None:
        with pytest.raises(NotFound):
            await Desk().change_agent_skills("nobody", frozenset(), "admin")


class TestAnAgentsLoad:
    async def test_it_shows_what_they_hold_of_each_kind_beside_their_capacity(self) -> None:
        desk = Desk()
        await desk.staffed()
        assert (await desk.agents.get("ana.silva")).load == {
            "chat": KindLoad(0, 3),
            "email": KindLoad(0, 10),
        }
        conversation = await desk.conversation(Channel.WHATSAPP)
        async with desk.uows() as uow:
            thread = (await uow.repository(Conversation).get([conversation]))[conversation]
            thread.assign(ana("support").agent, "support", "t", "admin", desk.clock.now())  # type: ignore[arg-type]
            uow.repository(Conversation).add(thread)
        # Lowered under what she holds: she keeps it, and the load says so.
        await desk.change_agent_capacity("ana.silva", {ChannelKind.EMAIL: 10}, "admin")
        ana_now = await desk.agents.get("ana.silva")
        assert ana_now.load == {"chat": KindLoad(1, 0), "email": KindLoad(0, 10)}
        listed = {agent.key: agent.load for agent in await desk.agents.list()}
        assert listed == {
            "ana.silva": ana_now.load,
            "bruno.costa": {
                "chat": KindLoad(0, 3),
                "email": KindLoad(0, 10),
            },
        }


class TestTeams:
    async def test_a_team_lists_its_members_and_an_agent_their_teams(self) -> None:
        desk = Desk()
        await desk.staffed()
        await desk.add_member("billing", "ana.silva", "admin")
        billing = await desk.teams.get("billing")
        assert billing.members == ("ana.silva", "bruno.costa")
        assert (await desk.agents.get("ana.silva")).teams == ("billing", "support")
        assert await desk.staff.teams_of("bruno.costa") == {"billing"}

    async def test_only_a_registered_agent_joins_a_team(self) -> None:
        desk = Desk()
        await desk.create_team("support", "Support", "admin")
        with pytest.raises(NotFound):
            await desk.add_member("support", "nobody", "admin")

    async def test_an_agent_not_on_the_team_cannot_be_taken_off_it(self) -> None:
        desk = Desk()
        await desk.staffed()
        with pytest.raises(NotAMember):
            await desk.remove_member("support", "bruno.costa", "admin")
        await desk.remove_member("support", "ana.silva", "admin")
        assert (await desk.teams.get("support")).members == ()

    async def test_working_hours_in_the_team_s_time_zone_say_whether_it_is_open(self) -> None:
        desk = Desk()  # Monday noon UTC: noon in Lisbon too
        await desk.create_team("support", "Support", "admin", working_hours=LISBON_OFFICE)
        assert (await desk.teams.get("support")).open_now is True
        night = WorkingHours(
            time_zone="Asia/Tokyo", windows=(OpenWindow(start="09:00", end="18:00"),)
        )
        await desk.set_working_hours("support", night, "admin")
        team = await desk.teams.get("support")
        assert (team.working_hours, team.open_now) == (night, False)
        await desk.change_team_skills("support", frozenset({"returns"}), "admin")
        assert (await desk.teams.get("support")).skills == ("returns",)
        assert desk.count("Team.WorkingHoursSet") == 1

    async def test_another_team_under_a_taken_key_is_refused(self) -> None:
        desk = Desk()
        await desk.create_team("support", "Support", "admin")
        assert (await desk.create_team("support", "Support", "admin")).created is False
        with pytest.raises(AlreadyRegistered):
            await desk.create_team("support", "Help desk", "admin")
