"""An agent's commands on a conversation: reply, note, snooze, resolve, reopen, tags, priority.

An agent key acts on its teams' conversations only (403 otherwise); admin and service keys on
any. Each takes an `Idempotency-Key` header (or `idempotency_key` field): a reply or a note
retried under it is recorded once; the others set a state, and the same command again records
nothing (`changed: false`) with or without a key. `resolve` and `reopen` take no body at all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from dishka.integrations.litestar import FromDishka, inject
from litestar import Controller, Request, Response, post

from entrypoints.conversation_commands import (
    COMMAND_ERRORS,
    ConversationDesk,
    NoteIn,
    PriorityIn,
    ReasonIn,
    ReplyIn,
    SnoozeIn,
    TagsIn,
    problem_of,
)
from entrypoints.http.auth import allow
from entrypoints.http.principal import principal_of
from entrypoints.http.problems import problem
from ports.api_keys import Role

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from litestar.types import ExceptionHandlersMap

    from application.conversations.actors import Actor

__all__ = ["COMMAND_PROBLEMS", "ConversationCommandsController"]

D = TypeVar("D")

_ACTORS = (Role.AGENT, Role.SERVICE)


def _refused(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    found = problem_of(exc)
    assert found is not None  # registered for these errors only
    return problem(
        found.status, found.slug, found.title, found.detail, errors=found.errors, **found.extra
    )


COMMAND_PROBLEMS: ExceptionHandlersMap = {error: _refused for error in COMMAND_ERRORS}
"""The conversation commands' own refusals, answered over HTTP as over NATS (`problem_of`)."""


async def _run(
    command: Callable[[UUID, Actor, D, str | None], Awaitable[dict[str, Any]]],
    conversation_id: UUID,
    data: D,
    request: Request[Any, Any, Any],
) -> dict[str, Any]:
    """One of the desk's commands, as the request's key, under its `Idempotency-Key` header."""
    actor = (await principal_of(request)).actor()
    return await command(conversation_id, actor, data, request.headers.get("idempotency-key"))


class ConversationCommandsController(Controller):
    path = "/v1/conversations/{conversation_id:uuid}"
    tags = ["conversations"]
    exception_handlers = COMMAND_PROBLEMS

    @post(
        "/replies",
        operation_id="replyToConversation",
        name="conversations:reply",
        guards=[allow(*_ACTORS)],
        status_code=200,
        summary="Reply to the customer, through the rules and delivery as a service message",
        description=(
            'Body: `{"text": "..."}` or `{"template": "key", "variables": {...}}`, with '
            '`"channel"` to pick one other than the customer\'s last. `sent: false` with the '
            "decision when the rules suppress or defer it: nothing goes and the thread is "
            "unchanged. Outside WhatsApp's 24-hour window: 422 `template-needed`, listing the "
            "approved `templates`. A channel no provider serves (picked, or the customer's "
            "last): 422 `channel-unavailable` naming `$.channel`, with the `channels` that one "
            "serves; nothing is recorded. A reply to a resolved conversation reopens it. An agent not "
            "on the conversation's team: 403."
        ),
    )
    @inject
    async def reply(
        self,
        conversation_id: UUID,
        data: ReplyIn,
        request: Request[Any, Any, Any],
        desk: FromDishka[ConversationDesk],
    ) -> dict[str, Any]:
        return await _run(desk.reply, conversation_id, data, request)

    @post(
        "/notes",
        operation_id="addConversationNote",
        name="conversations:note",
        guards=[allow(*_ACTORS)],
        status_code=200,
        summary="Add an internal note: agents see it, the customer never does",
    )
    @inject
    async def note(
        self,
        conversation_id: UUID,
        data: NoteIn,
        request: Request[Any, Any, Any],
        desk: FromDishka[ConversationDesk],
    ) -> dict[str, Any]:
        return await _run(desk.note, conversation_id, data, request)

    @post(
        "/snooze",
        operation_id="snoozeConversation",
        name="conversations:snooze",
        guards=[allow(*_ACTORS)],
        status_code=200,
        summary="Set the conversation aside until a time; the customer writing wakes it",
    )
    @inject
    async def snooze(
        self,
        conversation_id: UUID,
        data: SnoozeIn,
        request: Request[Any, Any, Any],
        desk: FromDishka[ConversationDesk],
    ) -> dict[str, Any]:
        return await _run(desk.snooze, conversation_id, data, request)

    @post(
        "/resolve",
        operation_id="resolveConversation",
        name="conversations:resolve",
        guards=[allow(*_ACTORS)],
        status_code=200,
        summary="Resolve the conversation; the customer writing again reopens it",
        description="Body, optional: `{reason}`. Already resolved: `changed: false`.",
    )
    @inject
    async def resolve(
        self,
        conversation_id: UUID,
        request: Request[Any, Any, Any],
        desk: FromDishka[ConversationDesk],
        data: ReasonIn | None = None,
    ) -> dict[str, Any]:
        return await _run(desk.resolve, conversation_id, data, request)

    @post(
        "/reopen",
        operation_id="reopenConversation",
        name="conversations:reopen",
        guards=[allow(*_ACTORS)],
        status_code=200,
        summary="Reopen a resolved conversation",
        description="Body, optional: `{reason}`. Not resolved: `changed: false`.",
    )
    @inject
    async def reopen(
        self,
        conversation_id: UUID,
        request: Request[Any, Any, Any],
        desk: FromDishka[ConversationDesk],
        data: ReasonIn | None = None,
    ) -> dict[str, Any]:
        return await _run(desk.reopen, conversation_id, data, request)

    @post(
        "/tags",
        operation_id="tagConversation",
        name="conversations:tags",
        guards=[allow(*_ACTORS)],
        status_code=200,
        summary="Set the conversation's tags, or add and remove some",
        description=(
            'Body: `{"tags": [...]}` (the whole set; `[]` clears it) or `{"add": [...], '
            '"remove": [...]}`. Tags are keys (a-z, 0-9, `_ . -`, at most 64 characters), at '
            "most 20 on a conversation. 200 `{conversation_id, tags, priority, changed}`; "
            "`changed: false` when it held them already. An agent not on the conversation's "
            "team: 403 `not-on-team`."
        ),
    )
    @inject
    async def set_tags(
        self,
        conversation_id: UUID,
        data: TagsIn,
        request: Request[Any, Any, Any],
        desk: FromDishka[ConversationDesk],
    ) -> dict[str, Any]:
        return await _run(desk.tags, conversation_id, data, request)

    @post(
        "/priority",
        operation_id="prioritiseConversation",
        name="conversations:priority",
        guards=[allow(*_ACTORS)],
        status_code=200,
        summary="Set the conversation's priority, with why; its team's queue orders by it",
        description=(
            'Body: `{"priority": "low|normal|high|urgent", "reason": "..."}` (reason optional). '
            "200 `{conversation_id, tags, priority, changed}`; `changed: false` when it had "
            "that priority already. An agent not on the conversation's team: 403 "
            "`not-on-team`."
        ),
    )
    @inject
    async def set_priority(
        self,
        conversation_id: UUID,
        data: PriorityIn,
        request: Request[Any, Any, Any],
        desk: FromDishka[ConversationDesk],
    ) -> dict[str, Any]:
        return await _run(desk.priority, conversation_id, data, request)
