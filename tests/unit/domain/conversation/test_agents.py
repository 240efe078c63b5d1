"""Agents and teams as data, and a team's working hours in its own time zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.conversation.agents import Agent, NotAMember, Team, agent_id, team_id
from domain.conversation.vocabulary import ChannelKind, Presence
from domain.conversation.working_hours import WorkingHoursInvalid, decode_working_hours
from domain.shared.errors import InvalidValue

from .stored import rebuilt, stored_and_read_back

T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)  # a Tuesday
WEEKDAYS = {
    "time_zone": "Europe/Lisbon",
    "windows": [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "18:00"}],
}


def ana() -> Agent:
    return Agent.register(
        "ana",
        "Ana Silva",
        frozenset({"billing", "es"}),
        {ChannelKind.CHAT: 3, ChannelKind.EMAIL: 10},
        "admin",
        T0,
    )


def support() -> Team:
    return Team.create("support", "Support", "admin", T0, skills=frozenset({"billing"}))


class TestAgents:
    def test_an_agent_is_registered_offline_under_their_key_s_id(self) -> None:
        agent = ana()
        assert agent.id == agent_id("ana")
        assert agent.presence is Presence.OFFLINE
        assert agent.capacity_for(ChannelKind.CHAT) == 3
        assert agent.capacity_for(ChannelKind.VOICE) == 0

    def test_every_change_is_an_event_carrying_who_made_it(self) -> None:
        agent = ana()
        assert agent.change_presence(Presence.AVAILABLE, "ana", T0)
        assert not agent.change_presence(Presence.AVAILABLE, "ana", T0)
        assert agent.change_skills(frozenset({"billing"}), "lead", T0)
        assert agent.change_capacity({ChannelKind.CHAT: 5}, "lead", T0)
        events, read_back = stored_and_read_back(agent)
        assert read_back == events
        assert [type(e).__name__ for e in events] == [
            "Registered",
            "PresenceChanged",
            "SkillsChanged",
            "CapacityChanged",
        ]
        assert all(e.by for e in events)
        again = rebuilt(read_back)
        assert (again.presence, again.skills, again.capacity) == (
            Presence.AVAILABLE,
            frozenset({"billing"}),
            {ChannelKind.CHAT: 5},
        )

    def test_a_capacity_out_of_bounds_is_refused(self) -> None:
        with pytest.raises(InvalidValue, match="chat: -1 is not between 0 and 100") as refused:
            ana().change_capacity({ChannelKind.CHAT: -1}, "lead", T0)
        assert refused.value.field == "capacity.chat"  # the edges name `$.capacity.chat`

    def test_a_skill_must_be_a_key(self) -> None:
        with pytest.raises(InvalidValue, match="skill key"):
            ana().change_skills(frozenset({"Billing Stuff"}), "lead", T0)

    def test_routing_sees_the_agent_with_their_load(self) -> None:
        agent = ana()
        agent.change_presence(Presence.AVAILABLE, "ana", T0)
        candidate = agent.candidate({ChannelKind.CHAT: 2})
        assert candidate.free(ChannelKind.CHAT) == 1
        assert candidate.free(ChannelKind.EMAIL) == 10


class TestTeams:
    def test_members_come_and_go_by_key(self) -> None:
        team = support()
        assert team.id == team_id("support")
        assert team.add_member("ana", "admin", T0)
        assert not team.add_member("ana", "admin", T0)
        team.remove_member("ana", "admin", T0)
        assert team.members == frozenset()
        with pytest.raises(NotAMember):
            team.remove_member("ana", "admin", T0)

    def test_a_team_without_working_hours_is_always_open(self) -> None:
        assert support().is_open(datetime(2026, 12, 6, 3, tzinfo=UTC))

    def test_a_team_is_open_in_its_hours_in_its_own_time_zone(self) -> None:
        team = support()
        team.set_working_hours(decode_working_hours(WEEKDAYS), "admin", T0)
        assert team.is_open(datetime(2026, 12, 1, 9, tzinfo=UTC))
        assert not team.is_open(datetime(2026, 12, 1, 18, tzinfo=UTC))
        assert not team.is_open(datetime(2026, 12, 5, 12, tzinfo=UTC))  # a Saturday
        # Lisbon is UTC+1 in summer: 09:00 there is 08:00 UTC
        assert team.is_open(datetime(2026, 7, 1, 8, tzinfo=UTC))
        assert not team.is_open(datetime(2026, 7, 1, 7, 59, tzinfo=UTC))

    def test_its_events_are_stored_and_read_back(self) -> None:
        team = support()
        team.add_member("ana", "admin", T0)
        team.set_working_hours(decode_working_hours(WEEKDAYS), "admin", T0)
        team.change_skills(frozenset({"billing", "returns"}), "admin", T0)
        events, read_back = stored_and_read_back(team)
        assert read_back == events
        assert rebuilt(read_back).working_hours == decode_working_hours(WEEKDAYS)

    def test_routing_sees_the_team_with_its_queue(self) -> None:
        team = support()
        team.add_member("ana", "admin", T0)
        view = team.view(queued=4)
        assert (view.key, view.members, view.queued) == ("support", frozenset({"ana"}), 4)


class TestWorkingHours:
    def test_open_time_skips_nights_and_weekends(self) -> None:
        hours = decode_working_hours(WEEKDAYS)
        friday_late = datetime(2026, 12, 4, 17, tzinfo=UTC)
        assert hours.add_open_time(friday_late, timedelta(hours=2)) == datetime(
            2026, 12, 7, 10, tzinfo=UTC
        )

    def test_time_counted_from_a_closed_moment_starts_at_the_next_opening(self) -> None:
        hours = decode_working_hours(WEEKDAYS)
        saturday = datetime(2026, 12, 5, 12, tzinfo=UTC)
        assert hours.next_opening(saturday) == datetime(2026, 12, 7, 9, tzinfo=UTC)

    def test_a_window_to_midnight_joins_the_next_day_s_from_midnight(self) -> None:
        hours = decode_working_hours(
            {
                "time_zone": "UTC",
                "windows": [
                    {"days": ["mon"], "start": "20:00", "end": "24:00"},
                    {"days": ["tue"], "start": "00:00", "end": "04:00"},
                ],
            }
        )
        monday = datetime(2026, 11, 30, 23, tzinfo=UTC)
        assert hours.is_open(monday)
        assert hours.add_open_time(monday, timedelta(hours=3)) == datetime(
            2026, 12, 1, 2, tzinfo=UTC
        )

    def test_a_window_that_ends_before_it_starts_is_refused_naming_its_path(self) -> None:
        with pytest.raises(WorkingHoursInvalid) as refused:
            decode_working_hours(
                {"time_zone": "UTC", "windows": [{"start": "18:00", "end": "09:00"}]}
            )
        assert refused.value.path == "$.windows[0].end"
        assert "night shift is two windows" in refused.value.reason

    def test_an_unknown_time_zone_is_refused_naming_its_path(self) -> None:
        with pytest.raises(WorkingHoursInvalid) as refused:
            decode_working_hours(
                {"time_zone": "Mars/Olympus", "windows": [{"start": "09:00", "end": "17:00"}]}
            )
        assert refused.value.path == "$.time_zone"

    def test_working_hours_without_a_window_are_refused(self) -> None:
        with pytest.raises(WorkingHoursInvalid) as refused:
            decode_working_hours({"time_zone": "UTC", "windows": []})
        assert refused.value.path == "$.windows"
