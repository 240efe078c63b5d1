"""The agent's commands on a conversation, as both edges take them: the bodies, what each
command answers, and the problems they refuse with. HTTP (`controllers/conversation_commands`)
and NATS (`workers/conversation_responder`) read the same bodies and answer the same way."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

import msgspec

from application.conversations.lifecycle import ConversationClosed
from application.conversations.replies import Reply, ReplyNeedsTemplate
from domain.conversation.aggregate import NoReplyChannel, NotOnTeam
from domain.policy.vocabulary import Channel

if TYPE_CHECKING:
    from application.conversations.actors import Actor
    from application.conversations.lifecycle import (
        ReopenConversation,
        ResolveConversation,
        SnoozeConversation,
        StatusChanged,
    )
    from application.conversations.notes import AddNote, NoteAdded
    from application.conversations.replies import ReplyOutcome, ReplyToConversation
    from application.queries.decisions import DecisionQueries

__all__ = [
    "COMMANDS",
    "COMMAND_ERRORS",
    "CommandProblem",
    "ConversationDesk",
    "NoteIn",
    "ReasonIn",
    "ReplyIn",
    "SnoozeIn",
    "problem_of",
]

IdempotencyKey = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


class ReplyIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Free `text`, or a stored `template` with `variables`; on the customer's last channel
    unless `channel` picks another."""

    text: Annotated[str, msgspec.Meta(min_length=1, max_length=20_000)] | None = None
    template: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")] | None = None
    variables: dict[str, Any] = msgspec.field(default_factory=dict)
    locale: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")] | None = (
        None
    )
    subject: Annotated[str, msgspec.Meta(min_length=1, max_length=998)] | None = None
    channel: Channel | None = None
    idempotency_key: IdempotencyKey | None = None

    def __post_init__(self) -> None:
        if (self.text is None) == (self.template is None):
            raise ValueError("give `text` or `template`, exactly one")

    def reply(self) -> Reply:
        return Reply(
            text=self.text,
            template=self.template,
            variables=self.variables,
            locale=self.locale,
            subject=self.subject,
            channel=self.channel,
        )


class NoteIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=20_000)]
    idempotency_key: IdempotencyKey | None = None


class SnoozeIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Until when; a message from the customer wakes the conversation sooner."""

    until: Annotated[datetime, msgspec.Meta(tz=True)]
    idempotency_key: IdempotencyKey | None = None


class ReasonIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    reason: Reason | None = None
    idempotency_key: IdempotencyKey | None = None


@dataclass(frozen=True, slots=True)
class CommandProblem:
    """A refusal, as problem details: status, slug, title, detail, the fields at fault."""

    status: int
    slug: str
    title: str
    detail: str
    errors: list[dict[str, Any]]
    extra: dict[str, Any]


COMMAND_ERRORS: tuple[type[Exception], ...] = (
    NotOnTeam,
    ReplyNeedsTemplate,
    NoReplyChannel,
    ConversationClosed,
)
"""The errors of the commands themselves, answered by `problem_of`."""


def problem_of(error: Exception) -> CommandProblem | None:
    """The problem a conversation command's own error answers with; None for the others."""
    if isinstance(error, NotOnTeam):
        return CommandProblem(
            403, "not-on-team", "The agent is not on the conversation's team", str(error), [], {}
        )
    if isinstance(error, ReplyNeedsTemplate):
        return CommandProblem(
            422,
            "template-needed",
            "Only an approved template may go on this channel now",
            str(error),
            [{"field": "$.template", "reason": str(error)}],
            {
                "channel": str(error.channel),
                "last_inbound": None
                if error.last_inbound is None
                else error.last_inbound.isoformat(),
                "templates": list(error.templates),
            },
        )
    if isinstance(error, NoReplyChannel):
        return CommandProblem(
            422,
            "no-reply-channel",
            "The reply has no channel",
            str(error),
            [{"field": "$.channel", "reason": str(error)}],
            {},
        )
    if isinstance(error, ConversationClosed):
        return CommandProblem(
            409, "conversation-resolved", "The conversation is resolved", str(error), [], {}
        )
    return None


def status_out(changed: StatusChanged) -> dict[str, Any]:
    return {
        "conversation_id": str(changed.conversation_id),
        "status": str(changed.status),
        "snoozed_until": None
        if changed.snoozed_until is None
        else changed.snoozed_until.isoformat(),
        "changed": changed.changed,
    }


def note_out(conversation_id: UUID, added: NoteAdded) -> dict[str, Any]:
    note = added.note
    return {
        "conversation_id": str(conversation_id),
        "note_id": str(note.note_id),
        "author": note.author,
        "text": note.text,
        "at": note.at.isoformat(),
        "repeated": added.repeated,
    }


class ConversationDesk:
    """The five commands, each taking the body its edge decoded and answering plain JSON."""

    def __init__(
        self,
        reply: ReplyToConversation,
        add_note: AddNote,
        snooze: SnoozeConversation,
        resolve: ResolveConversation,
        reopen: ReopenConversation,
        decisions: DecisionQueries,
    ) -> None:
        self._reply = reply
        self._add_note = add_note
        self._snooze = snooze
        self._resolve = resolve
        self._reopen = reopen
        self.decisions = decisions

    async def reply(
        self, conversation_id: UUID, actor: Actor, data: ReplyIn, key: str | None
    ) -> dict[str, Any]:
        outcome = await self._reply(
            conversation_id, actor, data.reply(), key or data.idempotency_key
        )
        return await self.reply_out(outcome)

    async def reply_out(self, outcome: ReplyOutcome) -> dict[str, Any]:
        decision = await self.decisions.by_id(outcome.decision_id)
        return {
            "conversation_id": str(outcome.conversation_id),
            "message_id": str(outcome.message_id),
            "channel": str(outcome.channel),
            "sent": outcome.sent,
            "outcome": decision.outcome,
            "status": str(outcome.status),
            "repeated": outcome.repeated,
            "decision": msgspec.to_builtins(decision),
        }

    async def note(
        self, conversation_id: UUID, actor: Actor, data: NoteIn, key: str | None
    ) -> dict[str, Any]:
        added = await self._add_note(conversation_id, actor, data.text, key or data.idempotency_key)
        return note_out(conversation_id, added)

    async def snooze(
        self, conversation_id: UUID, actor: Actor, data: SnoozeIn, key: str | None
    ) -> dict[str, Any]:
        return status_out(await self._snooze(conversation_id, actor, data.until))

    async def resolve(
        self, conversation_id: UUID, actor: Actor, data: ReasonIn, key: str | None
    ) -> dict[str, Any]:
        return status_out(await self._resolve(conversation_id, actor, data.reason or "resolved"))

    async def reopen(
        self, conversation_id: UUID, actor: Actor, data: ReasonIn, key: str | None
    ) -> dict[str, Any]:
        return status_out(await self._reopen(conversation_id, actor, data.reason or "reopened"))


COMMANDS: dict[str, type[msgspec.Struct]] = {
    "reply": ReplyIn,
    "note": NoteIn,
    "snooze": SnoozeIn,
    "resolve": ReasonIn,
    "reopen": ReasonIn,
}
"""Each command's body, by the name NATS subjects and `ConversationDesk` methods carry."""
