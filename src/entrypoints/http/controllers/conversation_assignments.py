"""Assigning and transferring conversations: who holds one, and why, over HTTP.

Each is an event on the conversation with its reason, and the agents' loads change in its
commit: two agents racing for one conversation, exactly one wins and the other gets 409
`already-assigned`; an agent with no free capacity for its channel kind, 409
`agent-at-capacity`. An agent key acts on its teams' conversations only (403 `not-on-team`);
admin and service keys on any. Each refusal names the field (`$.agent`, `$.team` for a team
that does not exist), as over NATS (`conversation_commands.problem_of`). With an
`Idempotency-Key` header (or `idempotency_key` field; both given, the same key), a retry of the
same request answers what it did, and the same key for another request is a 409.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

from dishka.integrations.litestar import FromDishka, inject
from litestar import Controller, Request, post

from application.conversations.assign import AssignConversation
from application.conversations.transfer import TransferConversation
from entrypoints.conversation_commands import AssignIn, AssignmentOut, TransferIn, assignment_out
from entrypoints.http.auth import allow
from entrypoints.http.controllers.conversation_commands import COMMAND_PROBLEMS
from entrypoints.http.idempotency import idempotency_key
from entrypoints.http.principal import principal_of
from ports.api_keys import Role

if TYPE_CHECKING:
    from application.conversations.actors import Actor

__all__ = ["ConversationAssignmentsController"]


async def _acting(
    request: Request[Any, Any, Any], data: AssignIn | TransferIn
) -> tuple[Actor, str | None]:
    """Who acts (the request's key) and the request's idempotency key: the header's or the
    body's, the same key when both are given."""
    key = idempotency_key(request, data.idempotency_key)
    return (await principal_of(request)).actor(), key


class ConversationAssignmentsController(Controller):
    path = "/v1/conversations"
    tags = ["conversations"]
    exception_handlers = COMMAND_PROBLEMS

    @post(
        "/{conversation_id:uuid}/assign",
        operation_id="assignConversation",
        name="conversations:assign",
        guards=[allow(Role.AGENT, Role.SERVICE)],
        status_code=200,
        summary="Give a conversation to an agent of its team, with the reason",
        description=(
            "Body: `{agent, reason}` (and `team` for a conversation no team holds yet). 200 with "
            "who holds it; `changed` is false when the agent held it already or the request is "
            "a retry under its `Idempotency-Key`. Held by another agent: 409 "
            "`already-assigned` (two racing: exactly one wins). No free capacity for its "
            "channel kind: 409 `agent-at-capacity`. An agent not on the team: 422; no such "
            "agent: 404. An agent key acting on another team's conversation: 403 "
            "`not-on-team`. Each names `$.agent`."
        ),
    )
    @inject
    async def assign(
        self,
        conversation_id: UUID,
        data: AssignIn,
        request: Request[Any, Any, Any],
        assign: FromDishka[AssignConversation],
    ) -> AssignmentOut:
        actor, key = await _acting(request, data)
        done = await assign(conversation_id, data.agent, data.reason, actor, data.team, key)
        return assignment_out(done)

    @post(
        "/{conversation_id:uuid}/transfer",
        operation_id="transferConversation",
        name="conversations:transfer",
        guards=[allow(Role.AGENT, Role.SERVICE)],
        status_code=200,
        summary="Move a conversation to another team, or to one of its agents, with the reason",
        description=(
            "Body: `{team, reason}`, and `agent` to give it straight to a member of the team; "
            "without one it waits in the team's queue until a member has room. The agent it "
            "leaves has one conversation less at once. No such team or agent: 404 naming "
            "`$.team` or `$.agent`. An agent with no free capacity: 409 `agent-at-capacity`; "
            "not on the team: 422. An agent key acting on another team's conversation: 403 "
            "`not-on-team`, naming `$.agent`."
        ),
    )
    @inject
    async def transfer(
        self,
        conversation_id: UUID,
        data: TransferIn,
        request: Request[Any, Any, Any],
        transfer: FromDishka[TransferConversation],
    ) -> AssignmentOut:
        actor, key = await _acting(request, data)
        done = await transfer(conversation_id, data.team, data.reason, actor, data.agent, key)
        return assignment_out(done)
