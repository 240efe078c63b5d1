"""Agents, teams and agent keys on PostgreSQL: the listings are written with the events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from uuid import uuid4

import pytest

from adapters.postgres.api_keys import PostgresApiKeyStore
from adapters.postgres.conversation_roster import PostgresRoster
from adapters.postgres.snooze_timers import PostgresSnoozeTimers
from adapters.postgres.staff import PostgresStaffDirectory
from adapters.postgres.unit_of_work import PostgresUnitsOfWork
from adapters.system.clock import SystemClock
from adapters.system.ids import RandomIds
from application.conversations.agents import AgentQueries, ChangeAgentPresence, RegisterAgent
from application.conversations.teams import AddTeamMember, CreateTeam, TeamQueries
from domain.conversation.vocabulary import ChannelKind, Presence
from domain.conversation.working_hours import OpenWindow, WorkingHours
from ports.api_keys import Role

if TYPE_CHECKING:
    import asyncpg

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 1, 10, tzinfo=UTC)

OFFICE = WorkingHours(
    time_zone="Europe/Lisbon", windows=(OpenWindow(days=("mon",), start="09:00", end="18:00"),)
)


class TestStaffOnPostgres:
    async def test_agents_and_teams_are_listed_and_read_back_as_they_were_written(
        self, pool: asyncpg.Pool
    ) -> None:
        uows, clock = PostgresUnitsOfWork(pool), SystemClock()
        staff = PostgresStaffDirectory(pool)
        capacity = {ChannelKind.CHAT: 3, ChannelKind.EMAIL: 10}
        register = RegisterAgent(uows, clock)
        await register("ana.silva", "Ana Silva", frozenset({"billing"}), capacity, "admin")
        await register("bruno.costa", "Bruno Costa", frozenset(), {}, "admin")
        await ChangeAgentPresence(uows, clock)("ana.silva", Presence.AVAILABLE, "ana.silva")
        await CreateTeam(uows, clock)("billing", "Billing", "admin", frozenset({"billing"}), OFFICE)
        await CreateTeam(uows, clock)("support", "Support", "admin")
        for team in ("billing", "support"):
            await AddTeamMember(uows, clock)(team, "ana.silva", "admin")

        assert await staff.agent_keys() == ["ana.silva", "bruno.costa"]
        assert await staff.team_keys() == ["billing", "support"]
        assert await staff.teams_of("ana.silva") == {"billing", "support"}
        assert await staff.teams_of("bruno.costa") == frozenset()
        ana = await AgentQueries(uows, staff, PostgresRoster(pool)).get("ana.silva")
        assert (ana.capacity, ana.presence, ana.teams) == (
            {"chat": 3, "email": 10},
            "available",
            ("billing", "support"),
        )
        billing = await TeamQueries(uows, staff, clock).get("billing")
        assert (billing.working_hours, billing.members) == (OFFICE, ("ana.silva",))


class TestAgentKeys:
    async def test_an_agent_key_names_its_agent(self, pool: asyncpg.Pool) -> None:
        keys = PostgresApiKeyStore(pool, SystemClock(), RandomIds())
        created = await keys.create(Role.AGENT, "ana's key", agent="ana.silva")
        fresh = PostgresApiKeyStore(pool, SystemClock(), RandomIds())  # nothing cached
        found = await fresh.authenticate(created.secret)
        assert found is not None
        assert (found.role, found.agent) == (Role.AGENT, "ana.silva")

    async def test_only_an_agent_key_names_an_agent(self, pool: asyncpg.Pool) -> None:
        keys = PostgresApiKeyStore(pool, SystemClock(), RandomIds())
        with pytest.raises(ValueError, match="only an agent key"):
            await keys.create(Role.MARKETER, "m", agent="ana.silva")


class TestSnoozeTimersOnPostgres:
    async def test_a_due_timer_is_leased_once_and_forgotten_unless_set_again(
        self, pool: asyncpg.Pool
    ) -> None:
        timers = PostgresSnoozeTimers(pool)
        first, second = uuid4(), uuid4()
        await timers.set(first, NOW)
        await timers.set(second, NOW + timedelta(hours=1))
        [due] = await timers.lease_due(NOW, 10, 60)
        assert due.conversation_id == first
        assert await timers.lease_due(NOW, 10, 60) == []  # leased: no second taker
        await timers.set(first, NOW + timedelta(hours=2))  # snoozed again meanwhile
        await timers.forget(due)
        later = await timers.lease_due(NOW + timedelta(hours=2), 10, 60)
        assert {d.conversation_id for d in later} == {first, second}
        for leased in later:
            await timers.forget(leased)
        assert await pool.fetchval("SELECT count(*) FROM conversation_snoozes") == 0
