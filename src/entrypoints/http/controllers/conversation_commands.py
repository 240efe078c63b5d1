"""An agent's commands on a conversation: reply, note, snooze, resolve, reopen.

An agent key acts on its teams' conversations only (403 otherwise); admin and service keys on
any. Each takes an `Idempotency-Key` header (or `idempotency_key` field).
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
    ReasonIn,
    ReplyIn,
    SnoozeIn,
    problem_of,
)
from entrypoints.http.auth import allow
from entrypoints.http.principal import principal_of
from entrypoints.http.problems import problem
from ports.api_keys import Role

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from application.conversations.actors import Actor

__all__ = ["ConversationCommandsController"]

D = TypeVar("D")

_ACTORS = (Role.AGENT, Role.SERVICE)


def _refused(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    found = problem_of(exc)
    assert found is not None  # registered for these errors only
    return problem(
        found.status, found.slug, found.title, found.detail, errors=found.errors, **found.extra
    )


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
    exception_handlers = {error: _refused for error in COMMAND_ERRORS}

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
            "approved `templates`. A reply to a resolved conversation reopens it. An agent not "
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
    )
    @inject
    async def resolve(
        self,
        conversation_id: UUID,
        data: ReasonIn,
        request: Request[Any, Any, Any],
        desk: FromDishka[ConversationDesk],
    ) -> dict[str, Any]:
        return await _run(desk.resolve, conversation_id, data, request)

    @post(
        "/reopen",
        operation_id="reopenConversation",
        name="conversations:reopen",
        guards=[allow(*_ACTORS)],
        status_code=200,
        summary="Reopen a resolved conversation",
    )
    @inject
    async def reopen(
        self,
        conversation_id: UUID,
        data: ReasonIn,
        request: Request[Any, Any, Any],
        desk: FromDishka[ConversationDesk],
    ) -> dict[str, Any]:
        return await _run(desk.reopen, conversation_id, data, request)
