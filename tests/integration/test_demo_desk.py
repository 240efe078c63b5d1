"""The demo's agents, teams and routing, loaded through the service's container."""

from __future__ import annotations

import msgspec
import pytest

from application.conversations.agents import AgentQueries
from application.conversations.routing_document import RoutingQueries
from application.conversations.teams import TeamQueries
from entrypoints.demo_desk import DEMO_AGENTS, DEMO_TEAMS, load_demo_desk
from entrypoints.ioc import make_container
from entrypoints.settings import Settings

pytestmark = pytest.mark.integration


class TestTheDemoDesk:
    async def test_loading_it_twice_leaves_one_of_each(self, database_url: str) -> None:
        settings = msgspec.structs.replace(Settings.from_env(), database_url=database_url)
        container = make_container(settings)
        try:
            await load_demo_desk(container)
            await load_demo_desk(container)
            agents = await (await container.get(AgentQueries)).list()
            teams = await (await container.get(TeamQueries)).list()
            routing = await (await container.get(RoutingQueries)).current()
        finally:
            await container.close()
        assert [a.key for a in agents] == sorted(DEMO_AGENTS)
        assert {t.key: set(t.members) for t in teams} == {
            key: set(members) for key, (_, _, _, members) in DEMO_TEAMS.items()
        }
        assert routing.policy.version == 1
