"""Creating a key checks it against the staff directory: an agent key names a registered
agent, and every team a key is limited to exists; nothing is created otherwise."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters.inmemory.api_keys import InMemoryApiKeyStore
from adapters.inmemory.ids import SequentialIds
from adapters.system.clock import ManualClock
from application.access.create_key import CreateKey
from domain.shared.errors import InvalidValue
from ports.api_keys import Role

AT = datetime(2026, 12, 5, 12, tzinfo=UTC)


class Staff:
    async def agent_keys(self) -> list[str]:
        return ["ana.silva"]

    async def team_keys(self) -> list[str]:
        return ["billing", "growth"]

    async def teams_of(self, agent: str) -> frozenset[str]:
        return frozenset({"billing"}) if agent == "ana.silva" else frozenset()


def create_key() -> tuple[CreateKey, InMemoryApiKeyStore]:
    keys = InMemoryApiKeyStore(ManualClock(AT), SequentialIds())
    return CreateKey(keys, Staff()), keys


class TestCreateKey:
    async def test_a_key_naming_what_exists_is_created(self) -> None:
        create, keys = create_key()
        made = await create(Role.AGENT, "ana", agent="ana.silva", teams=["billing"], by="t")
        assert (made.key.agent, made.key.teams) == ("ana.silva", frozenset({"billing"}))
        made = await create(Role.SERVICE, "s", teams=["growth", "billing"], by="t")
        assert [k.role for k in await keys.all_keys()] == [Role.AGENT, Role.SERVICE]

    @pytest.mark.parametrize(
        ("role", "agent", "teams", "field", "says"),
        [
            (Role.AGENT, None, [], "agent", "an agent key names the agent it acts as"),
            (Role.AGENT, "rui.sousa", [], "agent", "no agent 'rui.sousa'"),
            (Role.SERVICE, None, ["growth", "grwth"], "teams[1]", "no team 'grwth'"),
            (Role.MARKETER, None, ["nowhere"], "teams[0]", "no team 'nowhere'"),
            (Role.MARKETER, "ana.silva", [], "agent", "only an agent key names an agent"),
        ],
    )
    async def test_a_key_naming_what_does_not_exist_is_refused_naming_the_field(
        self, role: Role, agent: str | None, teams: list[str], field: str, says: str
    ) -> None:
        create, keys = create_key()
        with pytest.raises(InvalidValue) as refused:
            await create(role, "k", agent=agent, teams=teams, by="t")
        assert refused.value.field == field
        assert says in refused.value.reason
        assert await keys.all_keys() == []
