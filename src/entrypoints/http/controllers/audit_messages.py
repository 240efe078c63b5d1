"""The audit API's story of one message: what asked for it, its decisions, what it became."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from dishka.integrations.litestar import FromDishka, inject
from litestar import Controller, Request, get

from application.audit.message_story import MessageStory, ReadMessageStory
from entrypoints.http.auth import allow, check_team
from entrypoints.text_checks import InputRefused, TextFault
from ports.api_keys import Role

__all__ = ["AuditMessagesController"]

_MAX_TEXT = 200


def _message_id(text: str) -> UUID:
    try:
        return UUID(text[:_MAX_TEXT])
    except ValueError:
        raise InputRefused(
            TextFault("path.message_id", f"{text[:_MAX_TEXT]!r} is not a UUID")
        ) from None


class AuditMessagesController(Controller):
    """A message's whole story. Readers of `GET /v1/messages/{id}` may read it too, a key
    limited to teams only its teams' (the story holds nothing their trace does not)."""

    tags = ["audit"]

    @get(
        "/v1/audit/messages/{message_id:str}",
        operation_id="auditMessage",
        name="audit:message",
        guards=[allow(Role.SERVICE, Role.MARKETER, Role.AGENT, Role.AUDITOR)],
        summary="The whole story of one message, rebuilt from the event log",
        description=(
            "What asked for it (`requested_by`: a request with its key and team, a campaign "
            "step with the campaign, version, step and enrollment, a conversation reply with "
            "the conversation and agent), each decision with the rule-set version and every "
            "rule that fired (a deferred message decided again shows both), the rendered "
            "content with its template and version, every provider attempt, every status "
            "with its source (`by`: provider or chorus), and the cost. Read from the "
            "customer's and the message's streams, never from a read model. 404 for a message "
            "never decided; 400 for an id that is not a UUID; 403 for a key of another team."
        ),
    )
    @inject
    async def message(
        self,
        message_id: str,
        request: Request[Any, Any, Any],
        story: FromDishka[ReadMessageStory],
    ) -> MessageStory:
        told = await story(_message_id(message_id))
        check_team(request, told.team)
        return told
