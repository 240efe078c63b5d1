"""Who a request acts as: an agent on their teams, or a key that supervises every team."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest
from litestar.exceptions import PermissionDeniedException

from application.conversations.actors import MayNotAct, acting_agent_key, actor_of
from application.queries.team_scope import EVERY_TEAM, TeamScope
from domain.conversation.aggregate import ActingAgent
from entrypoints.http.principal import Principal
from ports.api_keys import ApiKey, Role, check_agent_key

AT = datetime(2026, 12, 1, tzinfo=UTC)


def principal(
    role: Role, agent: ActingAgent | None = None, teams: frozenset[str] = frozenset()
) -> Principal:
    key = ApiKey(uuid4(), "k", role, AT, None if agent is None else agent.key, teams)
    return Principal(key, f"k ({role.value} key)", agent)


ANA = ActingAgent("ana.silva", frozenset({"support"}))


class TestPrincipal:
    def test_an_agent_sees_only_their_teams_conversations(self) -> None:
        ana = principal(Role.AGENT, ANA)
        assert ana.may_see("support")
        assert not ana.may_see(None)
        assert not ana.may_see("billing")

    def test_admin_service_and_auditor_keys_see_every_team(self) -> None:
        for role in (Role.ADMIN, Role.SERVICE, Role.AUDITOR):
            assert principal(role).may_see("billing")
        assert not principal(Role.MARKETER).may_see("billing")

    def test_a_service_key_limited_to_teams_sees_only_those_teams(self) -> None:
        growth = principal(Role.SERVICE, teams=frozenset({"growth"}))
        assert growth.visible_teams == frozenset({"growth"})
        assert growth.may_see("growth")
        assert not growth.may_see("support")
        assert not growth.may_see(None)

    def test_an_agent_key_limited_to_teams_sees_its_agents_teams_within_them(self) -> None:
        both = ActingAgent("ana.silva", frozenset({"support", "billing"}))
        ana = principal(Role.AGENT, both, frozenset({"billing"}))
        assert ana.visible_teams == frozenset({"billing"})

    def test_a_key_limited_to_teams_acts_on_those_teams_only(self) -> None:
        service = principal(Role.SERVICE, teams=frozenset({"growth"})).actor()
        assert service.agent is not None
        assert service.agent.teams == frozenset({"growth"})
        both = ActingAgent("ana.silva", frozenset({"support", "billing"}))
        ana = principal(Role.AGENT, both, frozenset({"billing"})).actor()
        assert ana.agent == ActingAgent("ana.silva", frozenset({"billing"}))

    def test_a_marketer_limited_to_teams_still_sees_no_conversation(self) -> None:
        assert principal(Role.MARKETER, teams=frozenset({"growth"})).visible_teams == frozenset()

    def test_an_agent_acts_as_themselves_and_a_supervisor_as_its_key(self) -> None:
        assert principal(Role.AGENT, ANA).actor().agent == ANA
        supervisor = principal(Role.ADMIN).actor()
        assert (supervisor.by, supervisor.agent) == ("k (admin key)", None)

    def test_an_agent_key_naming_no_agent_and_a_marketer_may_not_act(self) -> None:
        for role in (Role.AGENT, Role.MARKETER, Role.AUDITOR):
            with pytest.raises(PermissionDeniedException):
                principal(role).actor()


class TestWhatOfACustomerAKeyReads:
    def test_admin_auditor_and_unlimited_service_keys_read_every_teams(self) -> None:
        for role in (Role.ADMIN, Role.AUDITOR, Role.SERVICE):
            assert principal(role).team_scope is EVERY_TEAM

    def test_a_service_key_limited_to_teams_reads_their_sends_and_conversations(self) -> None:
        growth = frozenset({"growth"})
        assert principal(Role.SERVICE, teams=growth).team_scope == TeamScope(growth, growth)

    def test_a_marketer_reads_sends_of_its_teams_and_no_conversation(self) -> None:
        growth = frozenset({"growth"})
        assert principal(Role.MARKETER).team_scope == TeamScope(None, frozenset())
        assert principal(Role.MARKETER, teams=growth).team_scope == TeamScope(growth, frozenset())

    def test_an_agent_reads_every_teams_sends_and_their_teams_conversations(self) -> None:
        assert principal(Role.AGENT, ANA).team_scope == TeamScope(None, frozenset({"support"}))


class TestAgentKeys:
    def test_only_an_agent_key_names_an_agent_and_by_its_key(self) -> None:
        check_agent_key(Role.AGENT, "ana.silva")
        check_agent_key(Role.ADMIN, None)
        with pytest.raises(ValueError, match="only an agent key"):
            check_agent_key(Role.SERVICE, "ana.silva")
        with pytest.raises(ValueError, match="not an agent key"):
            check_agent_key(Role.AGENT, "Ana Silva")


def a_key(role: Role, agent: str | None = None, teams: frozenset[str] = frozenset()) -> ApiKey:
    return ApiKey(uuid4(), "k", role, AT, agent, teams)


class TestWhoAKeyActsAsOnEveryEdge:
    """`acting_agent_key` and `actor_of`: HTTP's principal and NATS's conversation commands
    follow this one rule."""

    def test_an_agent_key_acts_as_its_agent_and_names_no_other(self) -> None:
        key = a_key(Role.AGENT, "ana.silva")
        assert acting_agent_key(key) == "ana.silva"
        assert acting_agent_key(key, "ana.silva") == "ana.silva"
        with pytest.raises(MayNotAct, match=r"not as 'bruno\.costa'") as refused:
            acting_agent_key(key, "bruno.costa", "acting_agent")
        assert refused.value.field == "acting_agent"

    def test_a_supervising_key_acts_as_the_agent_named_or_as_itself(self) -> None:
        for role in (Role.ADMIN, Role.SERVICE):
            assert acting_agent_key(a_key(role)) is None
            assert acting_agent_key(a_key(role), "bruno.costa") == "bruno.costa"
        assert acting_agent_key(a_key(Role.AUDITOR), "bruno.costa") is None

    def test_a_named_agent_acts_within_the_keys_teams(self) -> None:
        both = ActingAgent("ana.silva", frozenset({"support", "billing"}))
        service = a_key(Role.SERVICE, teams=frozenset({"billing"}))
        assert actor_of(service, "k", both).agent == ActingAgent(
            "ana.silva", frozenset({"billing"})
        )
        assert actor_of(a_key(Role.ADMIN), "k", both).agent == both

    def test_the_principal_decides_as_actor_of_does(self) -> None:
        for role, agent, teams in (
            (Role.AGENT, ANA, frozenset[str]()),
            (Role.AGENT, ANA, frozenset({"billing"})),
            (Role.SERVICE, None, frozenset({"growth"})),
            (Role.ADMIN, None, frozenset[str]()),
        ):
            made = principal(role, agent, teams)
            assert made.actor() == actor_of(made.key, made.by, agent)

    def test_an_agent_key_naming_no_agent_and_an_auditor_may_not_act(self) -> None:
        with pytest.raises(MayNotAct, match="names no agent"):
            actor_of(a_key(Role.AGENT), "k", None)
        with pytest.raises(MayNotAct, match="role 'auditor'"):
            actor_of(a_key(Role.AUDITOR), "k", ANA)
