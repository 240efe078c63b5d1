"""The agent's commands on a conversation, as both edges take them: the bodies, what each
command answers, and the problems they refuse with. HTTP (`controllers/conversation_commands`)
and NATS (`workers/conversation_responder`) read the same bodies and answer the same way."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

import msgspec

from application.conversations.assign import AgentAtCapacity, NotOnRoster
from application.conversations.labels import TagChange
from application.conversations.lifecycle import ConversationClosed
from application.conversations.replies import ChannelUnavailable, Reply, ReplyNeedsTemplate
from domain.conversation.aggregate import MAX_TAGS, AlreadyAssigned, NoReplyChannel, NotOnTeam
from domain.conversation.vocabulary import Priority
from domain.policy.vocabulary import Channel
from domain.shared.keys import KEY_PATTERN
from entrypoints.idempotency_keys import request_key
from ports.conversation_roster import AgentOverCapacity

if TYPE_CHECKING:
    from application.conversations.actors import Actor
    from application.conversations.assign import AssignConversation, Assignment
    from application.conversations.labels import ChangePriority, ChangeTags, Labels
    from application.conversations.lifecycle import (
        ReopenConversation,
        ResolveConversation,
        SnoozeConversation,
        StatusChanged,
    )
    from application.conversations.notes import AddNote, NoteAdded
    from application.conversations.replies import ReplyOutcome, ReplyToConversation
    from application.conversations.transfer import TransferConversation
    from application.queries.decisions import DecisionQueries

__all__ = [
    "COMMANDS",
    "COMMAND_ERRORS",
    "AssignIn",
    "AssignmentOut",
    "CommandProblem",
    "ConversationDesk",
    "NoteIn",
    "PriorityIn",
    "ReasonIn",
    "ReplyIn",
    "SnoozeIn",
    "TagsIn",
    "TransferIn",
    "assignment_out",
    "problem_of",
]

IdempotencyKey = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
Key = Annotated[str, msgspec.Meta(pattern=KEY_PATTERN, examples=["ana.silva"])]


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


Tag = Annotated[str, msgspec.Meta(pattern=KEY_PATTERN, examples=["refund"])]
Tags = Annotated[list[Tag], msgspec.Meta(max_length=MAX_TAGS)]


class TagsIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The whole set of tags (`tags`), or tags to `add` and `remove`: keys (a-z, 0-9, `_ . -`,
    at most 64 characters), at most 20 on a conversation."""

    tags: Tags | None = None
    add: Tags = msgspec.field(default_factory=list)
    remove: Tags = msgspec.field(default_factory=list)
    idempotency_key: IdempotencyKey | None = None

    def change(self) -> TagChange:
        return TagChange(
            None if self.tags is None else frozenset(self.tags),
            frozenset(self.add),
            frozenset(self.remove),
        )


class PriorityIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The priority, and why (optional); the team's queue orders by it."""

    priority: Priority
    reason: Reason | None = None
    idempotency_key: IdempotencyKey | None = None


class AssignIn(msgspec.Struct, forbid_unknown_fields=True):
    """The agent (by key) and why; `team` only for a conversation no team holds yet."""

    agent: Key
    reason: Reason
    team: Key | None = None
    idempotency_key: IdempotencyKey | None = None


class TransferIn(msgspec.Struct, forbid_unknown_fields=True):
    """The team it goes to and why; with `agent`, straight to that member, else to its queue."""

    team: Key
    reason: Reason
    agent: Key | None = None
    idempotency_key: IdempotencyKey | None = None


class AssignmentOut(msgspec.Struct):
    """Who holds the conversation now; `changed` is false for a repeat."""

    conversation_id: UUID
    team: str | None
    agent: str | None
    changed: bool


def assignment_out(done: Assignment) -> AssignmentOut:
    return AssignmentOut(done.conversation_id, done.team, done.agent, done.changed)


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
    NotOnRoster,
    ReplyNeedsTemplate,
    ChannelUnavailable,
    NoReplyChannel,
    ConversationClosed,
    AlreadyAssigned,
    AgentAtCapacity,
    AgentOverCapacity,
)
"""The errors of the commands themselves, answered by `problem_of`."""


def problem_of(error: Exception) -> CommandProblem | None:
    """The problem a conversation command's own error answers with; None for the others."""
    if isinstance(error, NotOnTeam):
        # The agent who acts (the key's, or the body's over NATS) is off the team.
        return CommandProblem(
            403,
            "not-on-team",
            "The agent is not on the conversation's team",
            str(error),
            [{"field": "$.agent", "reason": str(error)}],
            {},
        )
    if isinstance(error, NotOnRoster):
        return CommandProblem(
            404,
            "not-found",
            "Not found",
            str(error),
            [{"field": f"$.{error.field}", "reason": str(error)}],
            {},
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
    if isinstance(error, ChannelUnavailable):
        return CommandProblem(
            422,
            "channel-unavailable",
            "No provider serves this channel",
            str(error),
            [{"field": "$.channel", "reason": str(error)}],
            {"channel": str(error.channel), "channels": [str(c) for c in error.served]},
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
    if isinstance(error, AlreadyAssigned):
        return CommandProblem(
            409,
            "already-assigned",
            "Another agent holds the conversation",
            str(error),
            [{"field": "$.agent", "reason": f"held by {error.agent}: transfer it instead"}],
            {},
        )
    if isinstance(error, AgentAtCapacity):
        return CommandProblem(
            409,
            "agent-at-capacity",
            "The agent has no free capacity",
            str(error),
            [{"field": "$.agent", "reason": str(error)}],
            {},
        )
    if isinstance(error, AgentOverCapacity):
        # Any command whose commit would put an agent past their capacity (a reopening by a
        # reply, an assignment that lost the race for the last place).
        return CommandProblem(
            409, "agent-at-capacity", "The agent has no free capacity", str(error), [], {}
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


def labels_out(labels: Labels) -> dict[str, Any]:
    return {
        "conversation_id": str(labels.conversation_id),
        "tags": list(labels.tags),
        "priority": str(labels.priority),
        "changed": labels.changed,
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
    """The nine commands, each taking the body its edge decoded and answering plain JSON. Those
    whose body is optional (`resolve`, `reopen`) take None for none. `key` is the request's
    `Idempotency-Key` header: a body's `idempotency_key` beside it must be the same key."""

    def __init__(
        self,
        reply: ReplyToConversation,
        add_note: AddNote,
        snooze: SnoozeConversation,
        resolve: ResolveConversation,
        reopen: ReopenConversation,
        decisions: DecisionQueries,
        assign: AssignConversation,
        transfer: TransferConversation,
        tags: ChangeTags,
        priority: ChangePriority,
    ) -> None:
        self._reply = reply
        self._add_note = add_note
        self._snooze = snooze
        self._resolve = resolve
        self._reopen = reopen
        self.decisions = decisions
        self._assign = assign
        self._transfer = transfer
        self._tags = tags
        self._priority = priority

    async def reply(
        self, conversation_id: UUID, actor: Actor, data: ReplyIn, key: str | None
    ) -> dict[str, Any]:
        outcome = await self._reply(
            conversation_id, actor, data.reply(), request_key(key, data.idempotency_key)
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
        key = request_key(key, data.idempotency_key)
        added = await self._add_note(conversation_id, actor, data.text, key)
        return note_out(conversation_id, added)

    async def snooze(
        self, conversation_id: UUID, actor: Actor, data: SnoozeIn, key: str | None
    ) -> dict[str, Any]:
        request_key(key, data.idempotency_key)  # a state: the key repeats nothing, but agrees
        return status_out(await self._snooze(conversation_id, actor, data.until))

    async def resolve(
        self, conversation_id: UUID, actor: Actor, data: ReasonIn | None, key: str | None
    ) -> dict[str, Any]:
        reason = None if data is None else data.reason
        request_key(key, None if data is None else data.idempotency_key)
        return status_out(await self._resolve(conversation_id, actor, reason or "resolved"))

    async def reopen(
        self, conversation_id: UUID, actor: Actor, data: ReasonIn | None, key: str | None
    ) -> dict[str, Any]:
        reason = None if data is None else data.reason
        request_key(key, None if data is None else data.idempotency_key)
        return status_out(await self._reopen(conversation_id, actor, reason or "reopened"))

    async def tags(
        self, conversation_id: UUID, actor: Actor, data: TagsIn, key: str | None
    ) -> dict[str, Any]:
        request_key(key, data.idempotency_key)
        return labels_out(await self._tags(conversation_id, actor, data.change()))

    async def priority(
        self, conversation_id: UUID, actor: Actor, data: PriorityIn, key: str | None
    ) -> dict[str, Any]:
        request_key(key, data.idempotency_key)
        return labels_out(await self._priority(conversation_id, actor, data.priority, data.reason))

    async def assign(
        self, conversation_id: UUID, actor: Actor, data: AssignIn, key: str | None
    ) -> dict[str, Any]:
        key = request_key(key, data.idempotency_key)
        done = await self._assign(conversation_id, data.agent, data.reason, actor, data.team, key)
        return _builtins(assignment_out(done))

    async def transfer(
        self, conversation_id: UUID, actor: Actor, data: TransferIn, key: str | None
    ) -> dict[str, Any]:
        key = request_key(key, data.idempotency_key)
        done = await self._transfer(conversation_id, data.team, data.reason, actor, data.agent, key)
        return _builtins(assignment_out(done))


def _builtins(out: AssignmentOut) -> dict[str, Any]:
    built: dict[str, Any] = msgspec.to_builtins(out)
    return built


COMMANDS: dict[str, type[msgspec.Struct]] = {
    "reply": ReplyIn,
    "note": NoteIn,
    "snooze": SnoozeIn,
    "resolve": ReasonIn,
    "reopen": ReasonIn,
    "assign": AssignIn,
    "transfer": TransferIn,
    "tags": TagsIn,
    "priority": PriorityIn,
}
"""Each command's body, by the name NATS subjects and `ConversationDesk` methods carry."""
