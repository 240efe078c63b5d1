"""The conversation commands refuse alike over HTTP and NATS: each error of a command is one
problem (`problem_of`), which both edges answer with."""

from __future__ import annotations

from uuid import uuid4

from application.conversations.assign import AgentAtCapacity, NotOnRoster
from domain.conversation.aggregate import AlreadyAssigned, NotOnTeam
from entrypoints.conversation_commands import COMMAND_ERRORS, COMMANDS, problem_of
from entrypoints.workers.nats_problems import problem_for
from ports.conversation_roster import AgentOverCapacity


class TestAssignmentRefusals:
    def test_a_commit_past_an_agents_capacity_is_a_409_agent_at_capacity(self) -> None:
        error = AgentOverCapacity("agent ana has no free chat capacity")
        assert AgentOverCapacity in COMMAND_ERRORS
        found = problem_of(error)
        assert found is not None
        assert (found.status, found.slug) == (409, "agent-at-capacity")

    def test_over_nats_it_is_the_same_problem_rather_than_an_internal_error(self) -> None:
        refused = problem_for(AgentOverCapacity("agent ana has no free chat capacity"))
        assert refused is not None
        assert refused.status == 409
        assert refused.body()["type"].endswith("/agent-at-capacity")

    def test_a_conversation_held_by_another_agent_is_a_409_naming_the_holder(self) -> None:
        found = problem_of(AlreadyAssigned(uuid4(), "rui"))
        assert found is not None
        assert (found.status, found.slug) == (409, "already-assigned")
        assert found.errors == [{"field": "$.agent", "reason": "held by rui: transfer it instead"}]

    def test_an_agent_with_no_room_read_before_the_commit_is_a_409_naming_agent(self) -> None:
        found = problem_of(AgentAtCapacity("ana", "agent 'ana' has no free email capacity"))
        assert found is not None
        assert (found.status, found.slug, found.errors[0]["field"]) == (
            409,
            "agent-at-capacity",
            "$.agent",
        )

    def test_an_agent_off_the_conversations_team_is_a_403_naming_agent(self) -> None:
        found = problem_of(NotOnTeam("bo", "support"))
        assert found is not None
        assert (found.status, found.slug) == (403, "not-on-team")
        assert found.errors == [
            {
                "field": "$.agent",
                "reason": "agent 'bo' is not on team 'support', which holds the conversation",
            }
        ]

    def test_an_agent_or_a_team_nobody_registered_is_a_404_naming_its_field(self) -> None:
        for field, detail in (("agent", "no agent 'nobody'"), ("team", "no team 'nowhere'")):
            found = problem_of(NotOnRoster(field, detail))
            assert found is not None
            assert (found.status, found.slug) == (404, "not-found")
            assert found.errors == [{"field": f"$.{field}", "reason": detail}]
            over_nats = problem_for(NotOnRoster(field, detail))
            assert over_nats is not None
            assert (over_nats.status, over_nats.body()["errors"]) == (404, found.errors)


class TestTheCommandsOverNats:
    def test_assign_and_transfer_are_commands_beside_the_others(self) -> None:
        assert set(COMMANDS) == {
            "reply",
            "note",
            "snooze",
            "resolve",
            "reopen",
            "assign",
            "transfer",
            "tags",
            "priority",
        }
