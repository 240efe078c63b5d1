"""The whole story of one message, read from the event log: what asked for it, each decision
with every rule that fired, what was sent, every attempt and status, and its cost."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime  # views are rendered by their run-time type hints
from typing import TYPE_CHECKING, Any
from uuid import UUID

from application.queries.messages import campaign_of, undelivered_status
from domain.campaign.origin import SendOrigin
from domain.conversation.aggregate import Conversation
from domain.customer.aggregate import Customer
from domain.message.aggregate import Message
from domain.message.origin import NATS_KEY_PREFIX, key_of, replier_of, thread_of
from domain.shared.errors import NotFound
from domain.shared.topics import events_of

if TYPE_CHECKING:
    from collections.abc import Sequence

    from eventsourcing.domain import CanMutateAggregate

    from domain.customer.held_edit import HeldEdit, HeldVersion
    from domain.message.aggregate import StatusChange
    from ports.audit import AuditLog, WaitingContent

__all__ = [
    "MessageNotKnown",
    "MessageStory",
    "ReadMessageStory",
    "RequestedBy",
    "StoryApproval",
    "StoryAttempt",
    "StoryDecision",
    "StoryStatus",
    "requested_by",
    "story_of",
]

_REPLY_SENT = events_of(Conversation)["MessageSent"]
_APPROVAL_SETTLED = Customer.ApprovalSettled
_FROM_PROVIDER = frozenset({"receipt", "webhook"})
"""Status sources a provider speaks through: the answer to the send, and its webhooks; the
others (`dispatch`, `fallback`) are Chorus's own (a failure for good, superseded, expired)."""


class MessageNotKnown(NotFound):
    """No decision was ever recorded for a message with that id."""


@dataclass(frozen=True, slots=True)
class RequestedBy:
    """What asked for the message, as its first decision recorded it (`origin`)."""

    kind: str  # api, nats, campaign, conversation, fallback, scheduler, or the origin itself
    origin: str
    team: str
    key_id: UUID | None = None  # api (and nats, when the command carried one): the key
    campaign: str | None = None  # campaign: its key, version, step, and the enrollment
    campaign_version: int | None = None
    step: str | None = None
    enrollment_id: UUID | None = None
    conversation_id: UUID | None = None  # conversation: the thread, and the agent who replied
    agent: str | None = None


@dataclass(frozen=True, slots=True)
class StoryDecision:
    """One decision about the message, as recorded on the customer's stream."""

    decision_id: UUID
    outcome: str
    channel: str | None
    defer_until: datetime | None
    rule_set_version: int
    fired: list[dict[str, Any]]
    decided_at: datetime
    origin: str  # `scheduler`: decided again when a deferral fell due
    customer_id: UUID  # the stream it is recorded on
    stream_version: int
    request: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StoryApproval:
    """An operator's verdict on the message while a rule held it (or its expiry): the decision
    recorded next is the one it led to."""

    approval_id: UUID
    verdict: str  # approved, edited, rejected, expired, withdrawn
    by: str  # the acting key, or the scheduler for an expiry
    note: str
    at: datetime
    decision_id: UUID | None = None  # the decision it led to (None: none recorded yet)
    outcome: str | None = None  # that decision's: an expiry's or a rejection's is `suppress`
    # An edit: the message as held and as approved (`channels`, `contents` per channel), and
    # what changed (`channels`, `email.subject`, ...).
    edited: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class StoryAttempt:
    provider: str
    at: datetime
    latency_ms: float
    accepted: bool
    answer: str  # the provider's message id, or why it refused
    retryable: bool


@dataclass(frozen=True, slots=True)
class StoryStatus:
    status: str
    at: datetime  # when Chorus learned it
    by: str  # "provider", or "chorus" for what Chorus recorded itself
    source: str  # receipt, webhook (a provider's); dispatch, fallback (Chorus's)
    provider: str
    reason: str | None
    reported_at: datetime | None  # the provider's own time for it


@dataclass(frozen=True, slots=True)
class MessageStory:
    message_id: UUID
    customer_id: UUID
    team: str
    status: str  # the last status; never allowed: deferred, suppressed, held (as /v1/messages)
    requested_by: RequestedBy
    decisions: list[StoryDecision]
    approvals: list[StoryApproval]
    channel: str | None
    recipient: str | None
    template: str | None
    template_version: int | None
    campaign: str | None
    correlation_id: str | None
    content: dict[str, Any] | None  # as rendered when it was requested
    queued_at: datetime | None
    expires_at: datetime | None
    provider: str | None
    provider_message_id: str | None
    attempts: list[StoryAttempt]
    statuses: list[StoryStatus]
    failure: str | None
    fell_back_to: UUID | None
    cost: str | None
    currency: str | None


def requested_by(
    origin: str, team: str, conversation: Sequence[CanMutateAggregate[UUID]], message_id: UUID
) -> RequestedBy:
    """What an origin names; for a reply, the agent who sent it (named in the origin, or for a
    reply recorded before origins named theirs, found in the conversation's stream)."""
    campaign = SendOrigin.parse(origin)
    if campaign is not None:
        return RequestedBy(
            "campaign",
            origin,
            team,
            campaign=campaign.campaign,
            campaign_version=campaign.version,
            step=campaign.step,
            enrollment_id=campaign.enrollment,
        )
    thread = thread_of(origin)
    if thread is not None:
        agent = replier_of(origin) or next(
            (
                vars(event)["by"]
                for event in conversation
                if isinstance(event, _REPLY_SENT)
                and vars(event)["message"].message_id == message_id
            ),
            None,
        )
        return RequestedBy("conversation", origin, team, conversation_id=thread, agent=agent)
    key = key_of(origin)
    if key is not None:
        return RequestedBy("api", origin, team, key_id=key)
    key = key_of(origin, NATS_KEY_PREFIX)
    if key is not None:
        return RequestedBy("nats", origin, team, key_id=key)
    return RequestedBy(origin.split(":", 1)[0], origin, team)


def _decision(event: Any) -> StoryDecision:
    return StoryDecision(
        decision_id=event.decision_id,
        outcome=event.outcome.value,
        channel=None if event.channel is None else event.channel.value,
        defer_until=event.defer_until,
        rule_set_version=event.rule_set_version,
        fired=[
            {
                "rule_id": rule.rule_id,
                "effect": rule.effect.value,
                "reason": rule.reason,
                "channel": None if rule.channel is None else rule.channel.value,
            }
            for rule in event.fired
        ],
        decided_at=event.timestamp,
        origin=event.origin,
        customer_id=event.originator_id,
        stream_version=event.originator_version,
        request={
            "team": event.request.team,
            "purpose": event.request.purpose.value,
            "channels": [c.value for c in event.request.channels],
            "priority": event.request.priority,
            "dedup_key": event.request.dedup_key,
            "expires_at": event.request.expires_at,
            "approved_template": event.request.approved_template,
            "sensitive": event.request.sensitive,
        },
    )


def _approvals(message_id: UUID, decided: Sequence[Any]) -> list[StoryApproval]:
    """Each verdict on the message, with the decision recorded next: the one it led to."""
    approvals: list[StoryApproval] = []
    waiting: dict[str, Any] | None = None
    for event in decided:
        if isinstance(event, _APPROVAL_SETTLED) and event.message_id == message_id:
            if waiting is not None:
                approvals.append(_approval(waiting, None))
            waiting = vars(event)
        elif isinstance(event, Customer.MessageDecided) and waiting is not None:
            approvals.append(_approval(waiting, event))
            waiting = None
    if waiting is not None:
        approvals.append(_approval(waiting, None))
    return approvals


def _approval(settled: dict[str, Any], decision: Any) -> StoryApproval:
    edit: HeldEdit | None = settled.get("edit")
    return StoryApproval(
        settled["approval_id"],
        settled["verdict"],
        settled["by"],
        settled["note"],
        settled["timestamp"],
        decision_id=None if decision is None else decision.decision_id,
        outcome=None if decision is None else decision.outcome.value,
        edited=None if edit is None else _edited(edit),
    )


def _version(version: HeldVersion) -> dict[str, Any]:
    return {
        "channels": [channel.value for channel in version.channels],
        "contents": {
            rendered.channel.value: {
                **{k: v for k, v in asdict(rendered.content).items() if v not in (None, ())},
                "template": rendered.template,
                "template_version": rendered.version,
            }
            for rendered in version.contents
        },
    }


def _edited(edit: HeldEdit) -> dict[str, Any]:
    before, after = _version(edit.before), _version(edit.after)
    changed = ["channels"] if before["channels"] != after["channels"] else []
    for channel in dict.fromkeys([*before["contents"], *after["contents"]]):
        was, now = before["contents"].get(channel, {}), after["contents"].get(channel, {})
        changed += [
            f"{channel}.{name}"
            for name in dict.fromkeys([*was, *now])
            if was.get(name) != now.get(name)
        ]
    return {"before": before, "after": after, "changed": changed}


def _status(change: StatusChange) -> StoryStatus:
    return StoryStatus(
        status=change.status.value,
        at=change.at,
        by="provider" if change.source in _FROM_PROVIDER else "chorus",
        source=change.source,
        provider=change.provider,
        reason=change.reason,
        reported_at=change.reported_at,
    )


def _waiting_for(
    waiting: Sequence[WaitingContent], channel: str | None, asked: Sequence[str]
) -> WaitingContent | None:
    """What a message not sent yet will say: on the channel decided, if any, else on the
    first channel asked for that has content."""
    by_channel = {content.channel: content for content in waiting}
    for each in (channel, *asked):
        if each is not None and each in by_channel:
            return by_channel[each]
    return waiting[0] if waiting else None


def _replayed(events: list[CanMutateAggregate[UUID]]) -> Message | None:
    message: Any = None
    for event in events:
        message = event.mutate(message)
    return message if isinstance(message, Message) else None


def story_of(
    message_id: UUID,
    decided: list[CanMutateAggregate[UUID]],
    events: list[CanMutateAggregate[UUID]],
    conversation: Sequence[CanMutateAggregate[UUID]] = (),
    waiting: Sequence[WaitingContent] = (),
) -> MessageStory:
    """The story from the message's decisions and its own stream, as recorded; a message
    deferred or held names the template and version its deferral keeps to send (`waiting`)."""
    facts = [event for event in decided if isinstance(event, Customer.MessageDecided)]
    if not facts:
        raise MessageNotKnown(f"no message {message_id}")
    decisions = [_decision(event) for event in facts]
    approvals = _approvals(message_id, decided)
    first = decisions[0]
    team = first.request["team"]
    asked = requested_by(first.origin, team, conversation, message_id)
    message = _replayed(events)
    if message is None:
        kept = _waiting_for(waiting, decisions[-1].channel, first.request["channels"])
        return MessageStory(
            message_id=message_id,
            customer_id=decisions[-1].customer_id,
            team=team,
            status=undelivered_status(decisions[-1].outcome),
            requested_by=asked,
            decisions=decisions,
            approvals=approvals,
            channel=decisions[-1].channel,
            recipient=None,
            template=None if kept is None else kept.template,
            template_version=None if kept is None else kept.version,
            campaign=campaign_of(first.origin),
            correlation_id=None,
            content=None,
            queued_at=None,
            expires_at=None,
            provider=None,
            provider_message_id=None,
            attempts=[],
            statuses=[],
            failure=None,
            fell_back_to=None,
            cost=None,
            currency=None,
        )
    return MessageStory(
        message_id=message_id,
        customer_id=message.customer_id,
        team=message.team,
        status=message.status.value,
        requested_by=asked,
        decisions=decisions,
        approvals=approvals,
        channel=message.channel.value,
        recipient=message.recipient,
        template=message.template,
        template_version=message.template_version,
        campaign=message.campaign,
        correlation_id=message.correlation_id,
        content={k: v for k, v in asdict(message.content).items() if v not in (None, ())},
        queued_at=message.queued_at,
        expires_at=message.expires_at,
        provider=message.provider,
        provider_message_id=message.provider_message_id,
        attempts=[
            StoryAttempt(
                a.provider, a.at, round(a.latency_ms, 3), a.accepted, a.answer, a.retryable
            )
            for a in message.attempts
        ],
        statuses=[_status(change) for change in message.statuses],
        failure=message.failure,
        fell_back_to=message.fell_back_to,
        cost=None if message.cost is None else str(message.cost),
        currency=message.currency,
    )


class ReadMessageStory:
    """A message's story from the event log, never from a read model: its decisions from the
    customer's stream, the rest from its own; a reply's agent from the conversation's; while
    deferred or held, its template from its deferral."""

    def __init__(self, log: AuditLog) -> None:
        self.log = log

    async def __call__(self, message_id: UUID) -> MessageStory:
        history = await self.log.message_history(message_id)
        conversation: list[CanMutateAggregate[UUID]] = []
        if history.decisions:
            origin = vars(history.decisions[0])["origin"]
            thread = thread_of(origin)
            if thread is not None and replier_of(origin) is None:
                conversation = await self.log.stream(thread)
        return story_of(
            message_id, history.decisions, history.events, conversation, history.waiting
        )
