"""One problem for the NATS edges, and one mapping from an error to it: the send command and the
conversation commands answer each error alike, as HTTP answers it, and a signal's dead letter
says the same problem as its reason."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any, cast
from uuid import uuid4

import pytest

from application.conversations.assign import AgentAtCapacity, NotOnRoster
from application.conversations.lifecycle import ConversationClosed
from application.conversations.replies import ChannelUnavailable, ReplyNeedsTemplate
from application.messages.request_message import IdempotencyKeyReused
from domain.conversation.aggregate import AlreadyAssigned, NoReplyChannel, NotOnTeam, TemplateNeeded
from domain.customer.aggregate import CustomerWasErased
from domain.policy.vocabulary import Channel
from domain.shared.errors import InvalidValue, NotFound
from entrypoints.conversation_commands import COMMAND_ERRORS
from entrypoints.http.problems import exception_handlers
from entrypoints.http.problems import not_json as http_not_json
from entrypoints.workers.nats_keys import KeyRefused, missing_key
from entrypoints.workers.nats_problems import (
    NatsProblem,
    forbidden,
    internal,
    invalid,
    not_json,
    problem_for,
)
from ports.conversation_roster import AgentOverCapacity
from ports.templates import RenderError, TemplateNotFound

BASE = "https://chorus.dev/problems/"


def mapped(error: Exception) -> NatsProblem:
    problem = problem_for(error)
    assert problem is not None
    return problem


def http_body(error: Exception) -> dict[str, Any]:
    """What HTTP's handler for the error answers (the handlers named here read no request)."""
    handler = exception_handlers[type(error)]
    response = cast("Any", handler)(None, error)
    return cast("dict[str, Any]", response.content)


class TestTheProblem:
    def test_its_body_is_rfc_9457_with_errors_where_it_has_them_then_its_extensions(self) -> None:
        problem = NatsProblem(
            422,
            "some-slug",
            "A title",
            "the detail",
            [{"field": "$.x", "reason": "why"}],
            extra={"more": 1},
            headers={"Retry-After": "2"},
        )
        assert problem.body() == {
            "type": BASE + "some-slug",
            "title": "A title",
            "status": 422,
            "detail": "the detail",
            "errors": [{"field": "$.x", "reason": "why"}],
            "more": 1,
        }
        assert list(problem.body()) == ["type", "title", "status", "detail", "errors", "more"]
        assert problem.headers == {"Retry-After": "2"}
        assert str(problem) == "the detail"

    def test_naming_no_field_it_has_no_errors_unless_asked_always(self) -> None:
        problem = NatsProblem(404, "not-found", "Not found", "nothing")
        assert problem.errors is None
        assert "errors" not in problem.body()
        assert problem.body(errors_always=True)["errors"] == []
        assert problem.extra == {}
        assert problem.headers == {}

    def test_its_dead_letter_reason_is_status_slug_and_detail(self) -> None:
        assert NatsProblem(409, "slug", "T", "why not").reason == "409 slug: why not"

    def test_a_raised_problem_is_itself_the_answer(self) -> None:
        problem = NatsProblem(404, "not-found", "No such command", "no command 'x'")
        assert problem_for(problem) is problem

    def test_an_error_no_problem_answers_is_left_to_the_responder(self) -> None:
        assert problem_for(RuntimeError("boom")) is None
        assert problem_for(KeyError("k")) is None


class TestTheSmallProblems:
    def test_invalid_is_a_400_naming_the_field(self) -> None:
        problem = invalid("header.Idempotency-Key", "longer than 200 characters")
        assert (problem.status, problem.slug, problem.title) == (
            400,
            "invalid-request",
            "The request is not valid",
        )
        assert problem.detail == "header.Idempotency-Key: longer than 200 characters"
        assert problem.errors == [
            {"field": "header.Idempotency-Key", "reason": "longer than 200 characters"}
        ]

    @pytest.mark.parametrize(
        ("reason", "body"),
        [
            ("JSON is malformed: object keys must be strings (byte 1)", b"{not json"),
            ("Input data was truncated", b'{"text": "hi"'),
            ("Input data was truncated", b" \n"),
        ],
    )
    def test_a_body_that_is_no_json_is_http_s_invalid_json_problem(
        self, reason: str, body: bytes
    ) -> None:
        problem = not_json(reason, body)
        assert problem.body() == http_not_json(reason, body).content
        assert (problem.status, problem.slug) == (400, "invalid-json")
        assert problem.errors == [{"field": "$", "reason": problem.detail}]

    def test_forbidden_is_the_403_of_http_guards_naming_no_field(self) -> None:
        problem = forbidden("role 'auditor' may not do this; needs admin")
        assert (problem.status, problem.slug, problem.title) == (
            403,
            "forbidden",
            "This key's role may not do that",
        )
        assert problem.errors is None
        # A signal's dead letter says it so.
        assert problem.reason == "403 forbidden: role 'auditor' may not do this; needs admin"

    def test_internal_is_a_500_saying_nothing_of_the_error(self) -> None:
        body = internal().body(errors_always=True)
        assert body == {
            "type": BASE + "internal",
            "title": "Something went wrong on our side",
            "status": 500,
            "detail": "internal error",
            "errors": [],
        }


class TestAKeyRefusal:
    def test_is_a_problem_as_it_is_raised_with_no_field_named(self) -> None:
        refused = KeyRefused(
            429,
            "rate-limited",
            "Too many requests",
            "over the limit; try again in 1 s",
            extra={"route_class": "send", "retry_after": 1},
            headers={"Retry-After": "1"},
        )
        assert isinstance(refused, NatsProblem)
        assert problem_for(refused) is refused
        # Both responders answer it with `errors: []` (docs/api.md), and the Retry-After header.
        assert refused.body() == refused.body(errors_always=True)
        assert refused.body() == {
            "type": BASE + "rate-limited",
            "title": "Too many requests",
            "status": 429,
            "detail": "over the limit; try again in 1 s",
            "errors": [],
            "route_class": "send",
            "retry_after": 1,
        }
        assert refused.headers == {"Retry-After": "1"}

    def test_a_missing_key_is_the_401_and_the_dead_letter_reason(self) -> None:
        refused = missing_key()
        assert (refused.status, refused.slug) == (401, "unauthorized")
        assert refused.body()["errors"] == []
        assert refused.reason.startswith("401 unauthorized: send an API key as")


class TestTheMappingAsHttpAnswers:
    def test_an_invalid_value_is_a_422_naming_the_field(self) -> None:
        error = InvalidValue("text", "a reply says something")
        problem = mapped(error)
        assert problem.body() == {
            "type": BASE + "invalid-value",
            "title": "A value was refused",
            "status": 422,
            "detail": "text: a reply says something",
            "errors": [{"field": "$.text", "reason": "a reply says something"}],
        }
        assert problem.body() == http_body(error)

    def test_nothing_found_is_a_404_naming_no_field(self) -> None:
        error = NotFound("no conversation 42")
        problem = mapped(error)
        assert (problem.status, problem.slug, problem.title, problem.detail) == (
            404,
            "not-found",
            "Not found",
            "no conversation 42",
        )
        assert problem.errors is None
        assert problem.body() == http_body(error)

    def test_an_erased_customer_is_a_409_as_over_http(self) -> None:
        error = CustomerWasErased(uuid.UUID(int=7))
        problem = mapped(error)
        assert (problem.status, problem.slug) == (409, "customer-erased")
        assert problem.body() == http_body(error)

    def test_a_reused_idempotency_key_is_a_409(self) -> None:
        error = IdempotencyKeyReused("key 'k' was used for another request")
        problem = mapped(error)
        assert (problem.status, problem.slug, problem.title) == (
            409,
            "idempotency-key-reused",
            "Idempotency key reused",
        )
        assert problem.errors is None
        assert problem.body() == http_body(error)

    def test_a_missing_template_is_a_422_naming_the_template(self) -> None:
        error = TemplateNotFound("there is no template 'order.shipped'")
        problem = mapped(error)
        assert (problem.status, problem.slug, problem.title, problem.detail) == (
            422,
            "template-not-found",
            "Template not found",
            "there is no template 'order.shipped'",
        )
        # HTTP's entry names the field as `template`, with no reason: NATS keeps its own.
        assert problem.errors == [
            {"field": "$.template", "reason": "there is no template 'order.shipped'"}
        ]
        http = http_body(error)
        assert {k: v for k, v in problem.body().items() if k != "errors"} == {
            k: v for k, v in http.items() if k != "errors"
        }

    @pytest.mark.parametrize(
        ("error", "entry"),
        [
            (
                RenderError("body: missing variable vars.eta", variable="vars.eta"),
                {
                    "field": "$.variables.eta",
                    "reason": "body: missing variable vars.eta",
                    "variable": "vars.eta",
                },
            ),
            (
                RenderError("body: missing variable customer.tier", variable="customer.tier"),
                {
                    "field": "$.customer_id",
                    "reason": "body: missing variable customer.tier",
                    "variable": "customer.tier",
                },
            ),
            (
                RenderError("body: over the budget", budget="operations", limit=100_000),
                {
                    "field": "$.content",
                    "reason": "body: over the budget",
                    "budget": "operations",
                    "limit": 100_000,
                },
            ),
            (
                RenderError("body: ZeroDivisionError: division by zero"),
                {"field": "$.content", "reason": "body: ZeroDivisionError: division by zero"},
            ),
        ],
    )
    def test_a_render_that_fails_is_the_one_render_problem(
        self, error: RenderError, entry: dict[str, Any]
    ) -> None:
        problem = mapped(error)
        assert (problem.status, problem.slug, problem.title) == (
            422,
            "render-error",
            "The content cannot be rendered",
        )
        assert problem.errors == [entry]
        assert problem.body() == http_body(error)

    def test_an_agent_over_capacity_at_the_commit_is_a_409(self) -> None:
        error = AgentOverCapacity("agent ana has no free chat capacity")
        problem = mapped(error)
        assert (problem.status, problem.slug) == (409, "agent-at-capacity")
        assert problem.errors == []
        http = http_body(error)
        assert {k: v for k, v in problem.body().items() if k != "errors"} == http


class TestTheConversationCommandsOwnErrors:
    def test_each_is_mapped(self) -> None:
        for error_type in COMMAND_ERRORS:
            assert problem_for(_an(error_type)) is not None, error_type

    def test_an_agent_not_on_the_team_is_a_403_not_on_team(self) -> None:
        problem = mapped(NotOnTeam("ana", "billing"))
        assert (problem.status, problem.slug, problem.errors) == (
            403,
            "not-on-team",
            [
                {
                    "field": "$.agent",
                    "reason": "agent 'ana' is not on team 'billing', which holds the conversation",
                }
            ],
        )
        assert problem.title == "The agent is not on the conversation's team"

    def test_a_closed_window_is_a_422_listing_the_approved_templates(self) -> None:
        last = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
        error = ReplyNeedsTemplate(TemplateNeeded(Channel.WHATSAPP, last), ("follow.up",))
        body = mapped(error).body()
        assert (body["status"], body["type"]) == (422, BASE + "template-needed")
        assert body["errors"] == [{"field": "$.template", "reason": str(error)}]
        assert (body["channel"], body["last_inbound"], body["templates"]) == (
            "whatsapp",
            last.isoformat(),
            ["follow.up"],
        )
        json.dumps(body)  # as the reply carries it

    def test_no_reply_channel_is_a_422_naming_the_channel(self) -> None:
        problem = mapped(NoReplyChannel("the customer never wrote: pick a channel"))
        assert (problem.status, problem.slug) == (422, "no-reply-channel")
        assert problem.errors is not None
        assert problem.errors[0]["field"] == "$.channel"

    def test_a_channel_no_provider_serves_is_a_422_naming_the_channel(self) -> None:
        error = ChannelUnavailable(Channel.VOICE, (Channel.EMAIL, Channel.SMS), picked=True)
        body = mapped(error).body()
        assert (body["status"], body["type"]) == (422, BASE + "channel-unavailable")
        assert body["errors"] == [{"field": "$.channel", "reason": str(error)}]
        assert "no provider serves voice" in body["errors"][0]["reason"]
        assert (body["channel"], body["channels"]) == ("voice", ["email", "sms"])

    def test_a_resolved_conversation_is_a_409(self) -> None:
        problem = mapped(ConversationClosed("the conversation is resolved"))
        assert (problem.status, problem.slug, problem.errors) == (409, "conversation-resolved", [])

    def test_a_conversation_held_by_another_is_a_409_naming_the_holder(self) -> None:
        problem = mapped(AlreadyAssigned(uuid4(), "rui"))
        assert (problem.status, problem.slug) == (409, "already-assigned")
        assert problem.errors == [
            {"field": "$.agent", "reason": "held by rui: transfer it instead"}
        ]

    def test_an_agent_with_no_room_is_a_409_naming_agent(self) -> None:
        problem = mapped(AgentAtCapacity("ana", "agent 'ana' has no free email capacity"))
        assert (problem.status, problem.slug) == (409, "agent-at-capacity")
        assert problem.errors == [
            {"field": "$.agent", "reason": "agent 'ana' has no free email capacity"}
        ]


def _an(error_type: type[Exception]) -> Exception:
    """An instance of each of the conversation commands' own errors."""
    made: dict[type[Exception], Exception] = {
        NotOnTeam: NotOnTeam("ana", "billing"),
        ReplyNeedsTemplate: ReplyNeedsTemplate(TemplateNeeded(Channel.WHATSAPP, None), ()),
        AlreadyAssigned: AlreadyAssigned(uuid4(), "rui"),
        AgentAtCapacity: AgentAtCapacity("ana", "no room"),
        NotOnRoster: NotOnRoster("team", "no team 'nowhere'"),
        ChannelUnavailable: ChannelUnavailable(Channel.VOICE, (Channel.EMAIL,), picked=True),
    }
    return made.get(error_type) or error_type("refused")
