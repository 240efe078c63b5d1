"""The Conversation aggregate: one thread per customer and topic, whatever the channels.

A customer who writes by email, then on WhatsApp, then by SMS is in one conversation: its id is
`conversation_id(customer_id, topic)`, so the customer (whom identities resolve to) and the
topic find it, and a channel never does. The thread holds inbound and outbound messages, each
with its channel (an outbound one with the provider's statuses, by message id), internal notes,
a status, the assignment history with the reason of each change, tags, a priority, and the
intent and sentiment once classified. Every change is an event carrying who made it (`by`: an
agent's key, `customer`, `router`, a timer, an API key).

Status: `open` until the first message; a message from the customer makes it `waiting_on_us`,
an agent's reply `waiting_on_customer` (and `waiting_on_us` again if that reply never reaches
them: `record_status`). Agents may snooze it until a time (`wake` when the timer
fires; an inbound message wakes it at once), resolve it, or mark who it waits on. A new inbound
message, or an agent's reply, reopens a resolved conversation.

Replies (`reply`): the application checks a reply first (`check_reply`: the agent is on the
conversation's team, the channel, and a template outside the channel's service window, e.g.
WhatsApp's 24 hours), then has the customer decide it as a `service` message; only an allowed
message is recorded here, under the id of the `Message` that carries it, so the provider's
statuses (`record_status`) find it. A reply goes on the channel the customer last wrote on,
unless the agent picks another (`reply_channel`).

Assignment: `apply_routing` records a `routing.RoutingDecision` (assigned, or queued to a team);
`assign` gives an unassigned conversation to an agent of the team (a second agent racing for it
gets `AlreadyAssigned`); `transfer` moves it to another team or agent; `unassign` puts it back
in its team's queue. Each is an `Assignment` in `history`, with its reason.

Facts for the pure services: `routing_facts` (for `routing.route`), `sla_facts` (for
`sla.next_breach`), `queue_entry` (for `routing.offer`). When an SLA timer fires unanswered,
`record_breach` records it once and escalates as the routing document's `sla.on_breach` says.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import (
    datetime,  # events carry these types; eventsourcing resolves them at run time
    timedelta,
)
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.conversation.routing import URGENCIES, ConversationFacts, QueueEntry, RoutingDecision
from domain.conversation.sla import Deadline, OnBreach, SlaFacts, SlaKind
from domain.conversation.vocabulary import ChannelKind, Priority, Sentiment, highest, kind_of
from domain.message.aggregate import MessageStatus
from domain.policy.rules import RuleSet
from domain.policy.vocabulary import Channel
from domain.shared.errors import DomainError, InvalidValue, NotFound
from domain.shared.keys import check_key, keyed_id
from domain.shared.personal import ERASED, PersonalFields
from domain.shared.topics import StoredAs

__all__ = [
    "CUSTOMER",
    "DEFAULT_TOPIC",
    "MAX_SNOOZE",
    "MAX_TAGS",
    "UNDELIVERED",
    "ActingAgent",
    "AlreadyAssigned",
    "Assignment",
    "AssignmentKind",
    "Classification",
    "Conversation",
    "ConversationStatus",
    "Direction",
    "NoReplyChannel",
    "NotOnTeam",
    "Note",
    "TemplateNeeded",
    "ThreadMessage",
    "UnknownMessage",
    "check_snooze",
    "conversation_id",
]

_NAMESPACE = UUID("9e3a6c51-2f7d-4b08-a1c4-6d5e8f0b2a37")

DEFAULT_TOPIC = "support"
"""The topic of a conversation nobody named one for."""

CUSTOMER = "customer"
"""Who `by` names when the customer did it."""

MAX_SNOOZE = timedelta(days=365)
"""How far ahead a conversation may be snoozed."""

MAX_TAGS = 20
"""How many tags a conversation holds at most."""

UNDELIVERED = frozenset({MessageStatus.FAILED, MessageStatus.BOUNCED, MessageStatus.EXPIRED})
"""What a reply's message ends as when it never reached the customer."""


def conversation_id(customer_id: UUID, topic: str = DEFAULT_TOPIC) -> UUID:
    """The id of the customer's conversation on `topic`: the same whatever the channel."""
    return keyed_id(_NAMESPACE, f"{customer_id}/{check_key(topic, 'topic', 'order-42')}")


def check_snooze(until: datetime, at: datetime) -> datetime:
    """`until`, if a conversation may be snoozed until then at `at`: a time to come, at most
    `MAX_SNOOZE` ahead."""
    if until <= at:
        raise InvalidValue("until", "a conversation is snoozed until a time to come")
    latest = at + MAX_SNOOZE
    if until > latest:
        raise InvalidValue(
            "until",
            f"at most {MAX_SNOOZE.days} days ahead: {latest.isoformat()} at the latest",
        )
    return until


class ConversationStatus(StrEnum):
    """Where a conversation stands."""

    OPEN = "open"
    WAITING_ON_CUSTOMER = "waiting_on_customer"
    WAITING_ON_US = "waiting_on_us"
    SNOOZED = "snoozed"
    RESOLVED = "resolved"


class Direction(StrEnum):
    """From the customer (inbound) or to them (outbound)."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"


class AssignmentKind(StrEnum):
    """What an assignment change did."""

    ASSIGNED = "assigned"
    TRANSFERRED = "transferred"
    UNASSIGNED = "unassigned"
    QUEUED = "queued"


@dataclass(frozen=True, slots=True)
class ThreadMessage:
    """A message of the thread: its id (an outbound one is its `Message`'s), channel, author."""

    message_id: UUID
    direction: Direction
    channel: Channel
    at: datetime
    author: str
    text: str
    template: str | None = None


@dataclass(frozen=True, slots=True)
class Note:
    """An internal note: agents see it, the customer never does."""

    note_id: UUID
    author: str
    text: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Assignment:
    """One change of who holds the conversation, and why."""

    kind: AssignmentKind
    team: str | None
    agent: str | None
    reason: str
    by: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Classification:
    """What the conversation is about and how the customer sounds, as classified: the
    classifier's urgency (`low` .. `critical`) and sentiment score (-1 .. 1) too, when it
    gave them. Once the customer is erased the intent is `[erased]`, and the sentiment and
    its score None."""

    intent: str | None
    sentiment: Sentiment | None
    confidence: float | None
    at: datetime
    unknown_reason: str | None = None  # why the classifier gave no intent (`not_text`)
    urgency: str | None = None
    sentiment_score: float | None = None

    @property
    def erased(self) -> bool:
        """Whether the customer was erased: what was inferred from their words is gone."""
        return self.intent == ERASED


@dataclass(frozen=True, slots=True)
class ActingAgent:
    """An agent acting on a conversation: their key and the teams they are on."""

    key: str
    teams: frozenset[str]


class NotOnTeam(DomainError):
    """The agent is not on the conversation's team."""

    def __init__(self, agent: str, team: str) -> None:
        super().__init__(f"agent {agent!r} is not on team {team!r}, which holds the conversation")
        self.agent = agent
        self.team = team


class AlreadyAssigned(DomainError):
    """The conversation is held by another agent: transfer it instead."""

    def __init__(self, conversation_id: UUID, agent: str) -> None:
        super().__init__(f"conversation {conversation_id} is already assigned to {agent!r}")
        self.conversation_id = conversation_id
        self.agent = agent


class NoReplyChannel(DomainError):
    """The customer never wrote, and no channel was picked for the reply."""


class TemplateNeeded(DomainError):
    """The channel's service window is closed: only an approved template may go."""

    def __init__(self, channel: Channel, last_inbound: datetime | None) -> None:
        since = (
            "the customer never wrote on it"
            if last_inbound is None
            else (f"the customer last wrote on it at {last_inbound.isoformat()}")
        )
        super().__init__(f"the {channel} service window is closed ({since}): use a template")
        self.channel = channel
        self.last_inbound = last_inbound


class UnknownMessage(NotFound):
    """No message of the thread has that id."""

    def __init__(self, message_id: UUID) -> None:
        super().__init__(f"no message {message_id} in this conversation")
        self.message_id = message_id


_CLOCK_STOPPED = frozenset(
    {
        ConversationStatus.SNOOZED,
        ConversationStatus.RESOLVED,
        ConversationStatus.WAITING_ON_CUSTOMER,
    }
)


class Conversation(Aggregate):
    """One thread with a customer on a topic, across every channel they use."""

    stored_as = StoredAs("domain.conversation.aggregate:Conversation")
    # What the customer wrote and was written, and what agents noted about them (ADR 0019).
    personal = PersonalFields(
        {
            "MessageReceived": ("message.text", "message.author"),
            "MessageSent": ("message.text",),
            "NoteAdded": ("note.text",),
            # What the classifier inferred from the customer's own words, as on the customer
            # (`Customer.MessageClassified`); its confidence, the urgency and why no intent
            # could be told stay in clear.
            "Classified": ("intent", "sentiment", "sentiment_score"),
            # Why it went where it went: the router's reasons name that intent and sentiment
            # ("money: intent transaction_charged_twice; ..."), an agent's are free text.
            "Assigned": ("reason",),
            "Transferred": ("reason",),
            "Queued": ("reason",),
            "Unassigned": ("reason",),
            "PriorityChanged": ("reason",),
        }
    )

    @event("Started")
    def __init__(
        self, id: UUID, timestamp: datetime, customer_id: UUID, topic: str, by: str
    ) -> None:
        self.customer_id = customer_id
        self.topic = topic
        self.started_at = timestamp
        self.status = ConversationStatus.OPEN
        self.snoozed_until: datetime | None = None
        self.messages: list[ThreadMessage] = []
        self.statuses: dict[UUID, MessageStatus] = {}
        self.notes: list[Note] = []
        self.history: list[Assignment] = []
        self.team: str | None = None
        self.agent: str | None = None
        self.tags: frozenset[str] = frozenset()
        self.priority = Priority.NORMAL
        self.classification: Classification | None = None
        self.last_inbound: dict[Channel, datetime] = {}
        self.last_channel: Channel | None = None  # the channel the customer last wrote on
        self.awaiting_since: datetime | None = None  # the customer's oldest unanswered message
        self.answered = False  # an agent replied since the conversation (re)opened
        self.breaches: list[tuple[SlaKind, datetime]] = []
        self.reopened = 0
        # The skills the routing decision that queued it asked for: whoever its team's queue
        # offers it to must have them (a transfer to another team leaves them behind).
        self.queue_skills: frozenset[str] = frozenset()

    @classmethod
    def start(
        cls, customer_id: UUID, by: str, at: datetime, topic: str = DEFAULT_TOPIC
    ) -> Conversation:
        """The customer's conversation on `topic`, empty and open."""
        return cls(
            id=conversation_id(customer_id, topic),
            timestamp=at,
            customer_id=customer_id,
            topic=topic,
            by=by,
        )

    @property
    def subject_id(self) -> UUID:
        """A conversation's events are about its customer."""
        return self.customer_id

    @property
    def is_open(self) -> bool:
        """Anything but resolved."""
        return self.status is not ConversationStatus.RESOLVED

    @property
    def channels(self) -> tuple[Channel, ...]:
        """The channels of the thread, in the order they were first used."""
        return tuple(dict.fromkeys(m.channel for m in self.messages))

    def status_of(self, message_id: UUID) -> MessageStatus:
        """The provider's last status of an outbound message."""
        try:
            return self.statuses[message_id]
        except KeyError:
            raise UnknownMessage(message_id) from None

    # messages

    def receive(
        self, message_id: UUID, channel: Channel, text: str, received_at: datetime, at: datetime
    ) -> bool:
        """A message from the customer, on any channel: reopens a resolved conversation, wakes a
        snoozed one, and waits on us. False for a message already in the thread."""
        if self._has(message_id):
            return False
        if self.status is ConversationStatus.RESOLVED:
            self._reopened(timestamp=at, reason="the customer wrote again", by=CUSTOMER)
        message = ThreadMessage(message_id, Direction.INBOUND, channel, received_at, CUSTOMER, text)
        self._message_received(timestamp=at, message=message, by=CUSTOMER)
        return True

    def reply_channel(self, chosen: Channel | None = None) -> Channel:
        """The channel a reply goes on: the one picked, else the one the customer last used."""
        channel = chosen or self.last_channel
        if channel is None:
            raise NoReplyChannel("the customer has not written yet: pick a channel for the reply")
        return channel

    def service_window_closes(self, channel: Channel, rules: RuleSet) -> datetime | None:
        """When the channel's service window (WhatsApp: 24 hours from the customer's last
        message on it) closes; None when the channel has none, or the customer never wrote."""
        window = rules.channel_policy(channel).session_window
        last = self.last_inbound.get(channel)
        if window is None or last is None:
            return None
        return last + window

    def service_window_open(self, channel: Channel, rules: RuleSet, at: datetime) -> bool:
        """Whether a free-form message may go on the channel at `at`, or only a template."""
        if rules.channel_policy(channel).session_window is None:
            return True
        closes = self.service_window_closes(channel, rules)
        return closes is not None and at < closes

    def check_reply(
        self,
        agent: ActingAgent,
        rules: RuleSet,
        at: datetime,
        channel: Channel | None = None,
        template: str | None = None,
    ) -> Channel:
        """The channel a reply by `agent` goes on, if it may go: the agent on the team, and a
        template when the channel's service window is closed."""
        self._check_on_team(agent)
        reply_on = self.reply_channel(channel)
        if template is None and not self.service_window_open(reply_on, rules, at):
            raise TemplateNeeded(reply_on, self.last_inbound.get(reply_on))
        return reply_on

    def reply(
        self,
        message_id: UUID,
        agent: ActingAgent,
        text: str,
        rules: RuleSet,
        at: datetime,
        channel: Channel | None = None,
        template: str | None = None,
        *,
        room: bool = True,
    ) -> ThreadMessage:
        """Records an allowed reply (the id of its `Message`): reopens a resolved conversation
        (back in its team's queue when its agent has no `room` to hold it open again), answers
        the customer's waiting messages, and waits on the customer."""
        reply_on = self.check_reply(agent, rules, at, channel, template)
        if self._has(message_id):
            raise InvalidValue("message_id", f"{message_id} is already in the thread")
        if self.status is ConversationStatus.RESOLVED:
            self._reopen_for_reply("an agent replied", agent.key, at, room)
        message = ThreadMessage(
            message_id, Direction.OUTBOUND, reply_on, at, agent.key, text, template
        )
        self._message_sent(timestamp=at, message=message, by=agent.key)
        return message

    def record_reply_sent(
        self,
        message_id: UUID,
        author: str,
        text: str,
        channel: Channel,
        template: str | None,
        by: str,
        at: datetime,
        *,
        room: bool = True,
    ) -> bool:
        """Records a reply the rules let go after the agent (`author`) wrote it, as their
        outbound message: one an operator approved (`by`) after the rules held it, one the
        scheduler let go after the rules deferred it, one whose thread was not told when it was
        sent. It was checked when the agent wrote it, and is sent now. Reopens a resolved
        conversation (back in its team's queue when its agent has no `room`); False when it is
        in the thread already."""
        if self._has(message_id):
            return False
        if self.status is ConversationStatus.RESOLVED:
            self._reopen_for_reply("a reply was sent", by, at, room)
        message = ThreadMessage(message_id, Direction.OUTBOUND, channel, at, author, text, template)
        self._message_sent(timestamp=at, message=message, by=by)
        return True

    def _reopen_for_reply(self, reason: str, by: str, at: datetime, room: bool) -> None:
        """Reopens for a reply; an agent with no room to hold it open again (their capacity
        for its kind taken meanwhile) gives it back to the team's queue, which offers it to the
        next who has room: a reply is never refused for capacity, nor anyone put over it."""
        self._reopened(timestamp=at, reason=reason, by=by)
        if not room and self.agent is not None:
            why = f"reopened by a reply while {self.agent} had no room for it"
            self._unassigned(timestamp=at, reason=why, by=by)

    def note_unsent_reply(self, message_id: UUID, text: str, by: str, at: datetime) -> bool:
        """A reply held for approval that will never go (rejected, or its hold expired): an
        internal note (its id the reply's), so the agents see what became of it; False when
        noted already."""
        return self.note_once(message_id, text, by, at)

    def note_once(self, note_id: UUID, text: str, by: str, at: datetime) -> bool:
        """An internal note by Chorus itself (not an agent), so the agents see what became of
        something (a reply never sent, a message threaded otherwise than it asked); once per
        id: False when noted already."""
        if any(n.note_id == note_id for n in self.notes):
            return False
        self._note_added(timestamp=at, note=Note(note_id, by, text, at), by=by)
        return True

    def record_status(self, message_id: UUID, status: MessageStatus, by: str, at: datetime) -> bool:
        """A provider's status for an outbound message; False when it says nothing new. A reply
        that never reached the customer (failed, bounced, expired) while the conversation
        waits on them, with no later reply that went, puts it back to waiting on us: its
        customer's unanswered messages wait again (since the failure, when none do), held to
        the next-response target (`ReplyUndelivered`, with the reason)."""
        if self.status_of(message_id) is status:
            return False
        self._delivery_updated(timestamp=at, message_id=message_id, status=status, by=by)
        if status in UNDELIVERED and self._answer_lost(message_id):
            channel = next(m.channel for m in self.messages if m.message_id == message_id)
            self._reply_undelivered(
                timestamp=at,
                message_id=message_id,
                status=status,
                reason=f"the reply on {channel} was not delivered ({status}): the customer has no answer",
                awaiting_since=self._unanswered_since() or at,
                by=by,
            )
        return True

    def _answer_lost(self, message_id: UUID) -> bool:
        """Whether the conversation waits on the customer on the strength of this reply alone:
        no outbound message after it may still reach them."""
        if self.status is not ConversationStatus.WAITING_ON_CUSTOMER:
            return False
        later = False
        for message in self.messages:
            if message.message_id == message_id:
                later = True
            elif (
                later
                and message.direction is Direction.OUTBOUND
                and self.statuses.get(message.message_id) not in UNDELIVERED
            ):
                return False
        return later

    def _unanswered_since(self) -> datetime | None:
        """When the customer's oldest message that no delivered (or pending) reply followed
        came; None when every message of theirs was answered."""
        since: datetime | None = None
        for message in self.messages:
            if message.direction is Direction.INBOUND:
                since = since or message.at
            elif self.statuses.get(message.message_id) not in UNDELIVERED:
                since = None
        return since

    def add_note(self, note_id: UUID, agent: ActingAgent, text: str, at: datetime) -> Note:
        """An internal note by an agent of the team."""
        self._check_on_team(agent)
        if any(n.note_id == note_id for n in self.notes):
            raise InvalidValue("note_id", f"{note_id} is already a note of the conversation")
        note = Note(note_id, agent.key, text, at)
        self._note_added(timestamp=at, note=note, by=agent.key)
        return note

    # status

    def snooze(self, until: datetime, by: str, at: datetime) -> None:
        """Sets the conversation aside until `until`; a message from the customer wakes it."""
        check_snooze(until, at)
        if self.status is ConversationStatus.RESOLVED:
            raise DomainError("a resolved conversation cannot be snoozed: reopen it")
        self._snoozed(timestamp=at, until=until, by=by)

    def wake(self, by: str, at: datetime) -> bool:
        """The snooze timer fired: the conversation waits on us again. False if not due."""
        if self.snoozed_until is None or at < self.snoozed_until:
            return False
        self._woke(timestamp=at, by=by)
        return True

    def resolve(self, reason: str, by: str, at: datetime) -> bool:
        """Closes the conversation; a new message reopens it. False if already resolved."""
        if self.status is ConversationStatus.RESOLVED:
            return False
        self._resolved(timestamp=at, reason=reason, by=by)
        return True

    def reopen(self, reason: str, by: str, at: datetime) -> bool:
        """Reopens a resolved conversation; False if it is open."""
        if self.status is not ConversationStatus.RESOLVED:
            return False
        self._reopened(timestamp=at, reason=reason, by=by)
        return True

    def mark_waiting(self, on_customer: bool, by: str, at: datetime) -> bool:
        """Says who the conversation waits on; False when it already says so."""
        status = (
            ConversationStatus.WAITING_ON_CUSTOMER
            if on_customer
            else ConversationStatus.WAITING_ON_US
        )
        if self.status is status:
            return False
        if self.status is ConversationStatus.RESOLVED:
            raise DomainError("a resolved conversation waits on nobody: reopen it")
        self._marked_waiting(timestamp=at, status=status, by=by)
        return True

    # assignment

    def apply_routing(self, decision: RoutingDecision, by: str, at: datetime) -> None:
        """Records a routing decision: its priority, then the agent it chose, or the queue."""
        reason = decision.explained()
        if decision.priority is not self.priority:
            self._priority_changed(timestamp=at, priority=decision.priority, reason=reason, by=by)
        if decision.agent is None:
            waiting = (self.team, self.agent, self.queue_skills)
            if waiting != (decision.team, None, decision.skills):
                self._queued(
                    timestamp=at, team=decision.team, reason=reason, by=by, skills=decision.skills
                )
        elif self.agent is None:
            self._assigned(
                timestamp=at, team=decision.team, agent=decision.agent, reason=reason, by=by
            )
        elif (self.team, self.agent) != (decision.team, decision.agent):
            self._transferred(
                timestamp=at, team=decision.team, agent=decision.agent, reason=reason, by=by
            )

    def assign(self, agent: ActingAgent, team: str, reason: str, by: str, at: datetime) -> bool:
        """Gives the conversation to an agent of `team`; False if they already hold it. Held by
        another agent, it is refused (`AlreadyAssigned`): that is a transfer."""
        if team not in agent.teams:
            raise NotOnTeam(agent.key, team)
        if self.agent == agent.key and self.team == team:
            return False
        if self.agent is not None:
            raise AlreadyAssigned(self.id, self.agent)
        self._assigned(timestamp=at, team=team, agent=agent.key, reason=reason, by=by)
        return True

    def transfer(
        self, team: str, agent: ActingAgent | None, reason: str, by: str, at: datetime
    ) -> None:
        """Moves the conversation to another team, to one of its agents or to its queue."""
        check_key(team, "team", "billing")
        if agent is not None and team not in agent.teams:
            raise NotOnTeam(agent.key, team)
        key = None if agent is None else agent.key
        if (self.team, self.agent) == (team, key):
            raise InvalidValue("team", f"the conversation is already with {key or team!r}")
        if not reason.strip():
            raise InvalidValue("reason", "a transfer says why")
        self._transferred(timestamp=at, team=team, agent=key, reason=reason, by=by)

    def unassign(self, reason: str, by: str, at: datetime) -> bool:
        """Takes the conversation from its agent back to its team's queue; False if nobody
        held it."""
        if self.agent is None:
            return False
        self._unassigned(timestamp=at, reason=reason, by=by)
        return True

    def release(self, agent: str, team: str, by: str, at: datetime) -> bool:
        """Takes the open conversation from an agent who left its team back to the team's
        queue, saying so ("eve left team support"); False if it is no longer theirs there
        (resolved, moved or given to someone else since), so a release read twice records
        nothing more."""
        if not self.is_open or (self.team, self.agent) != (team, agent):
            return False
        return self.unassign(f"{agent} left team {team}", by, at)

    # what it is about

    def classify(
        self,
        intent: str | None,
        sentiment: Sentiment | None,
        by: str,
        at: datetime,
        confidence: float | None = None,
        unknown_reason: str | None = None,
        urgency: str | None = None,
        sentiment_score: float | None = None,
    ) -> bool:
        """Records intent and sentiment as classified, why there is no intent if there is none
        (`unknown_reason`), and the urgency and score the classifier gave; False when intent,
        sentiment, reason and urgency are what it says."""
        if intent is not None:
            check_key(intent, "intent", "refund")
        if confidence is not None and not 0.0 <= confidence <= 1.0:
            raise InvalidValue("confidence", f"{confidence} is not between 0 and 1")
        if urgency is not None and urgency not in URGENCIES:
            raise InvalidValue("urgency", f"{urgency!r} is not one of {', '.join(URGENCIES)}")
        if sentiment_score is not None and not -1.0 <= sentiment_score <= 1.0:
            raise InvalidValue("sentiment_score", f"{sentiment_score} is not between -1 and 1")
        if intent is not None:
            unknown_reason = None
        known = self.classification
        if known is not None and (
            known.intent,
            known.sentiment,
            known.unknown_reason,
            known.urgency,
        ) == (
            intent,
            sentiment,
            unknown_reason,
            urgency,
        ):
            return False
        self._classified(
            timestamp=at,
            intent=intent,
            sentiment=sentiment,
            confidence=confidence,
            by=by,
            unknown_reason=unknown_reason,
            urgency=urgency,
            sentiment_score=sentiment_score,
        )
        return True

    def change_priority(self, priority: Priority, reason: str, by: str, at: datetime) -> bool:
        """Sets the priority; False when unchanged."""
        if priority is self.priority:
            return False
        self._priority_changed(timestamp=at, priority=priority, reason=reason, by=by)
        return True

    def set_priority(
        self, priority: Priority, reason: str, agent: ActingAgent, at: datetime
    ) -> bool:
        """An agent of the team sets the priority, with why; False when it has it already."""
        self._check_on_team(agent)
        return self.change_priority(priority, reason, agent.key, at)

    def change_tags(
        self,
        agent: ActingAgent,
        at: datetime,
        *,
        add: frozenset[str] = frozenset(),
        remove: frozenset[str] = frozenset(),
        field: str = "tags",
    ) -> bool:
        """An agent of the team removes and adds tags (keys such as `refund`), at most
        `MAX_TAGS` in all (`field` names what asked for more); False when nothing changes."""
        self._check_on_team(agent)
        for tag in add:
            check_key(tag, "tag", "refund")
        kept = (self.tags - remove) | add
        if len(kept) > MAX_TAGS and not add <= self.tags:
            raise InvalidValue(
                field, f"a conversation holds at most {MAX_TAGS} tags; this leaves {len(kept)}"
            )
        changed = self.untag(remove - add, agent.key, at)
        return self.tag(add, agent.key, at) or changed

    def tag(self, tags: frozenset[str], by: str, at: datetime) -> bool:
        """Adds tags (keys such as `refund`); False when it had them all."""
        new = frozenset(check_key(t, "tag", "refund") for t in tags) - self.tags
        if not new:
            return False
        self._tagged(timestamp=at, tags=new, by=by)
        return True

    def untag(self, tags: frozenset[str], by: str, at: datetime) -> bool:
        """Removes tags; False when it had none of them."""
        gone = self.tags & tags
        if not gone:
            return False
        self._untagged(timestamp=at, tags=gone, by=by)
        return True

    # service levels

    def record_breach(
        self, deadline: Deadline, by: str, at: datetime, escalation: OnBreach | None = None
    ) -> bool:
        """The SLA timer fired at `at` with nobody answering: records the breach once, then
        escalates as the routing document's `sla.on_breach` says (a priority is never lowered;
        a team other than its own takes it into its queue). False when nothing was breached."""
        if at < deadline.due:
            raise InvalidValue("deadline", f"not due until {deadline.due.isoformat()}")
        if not self._clock_running or (deadline.sla, deadline.due) in self.breaches:
            return False
        self._sla_breached(timestamp=at, sla=deadline.sla, due=deadline.due, by=by)
        if escalation is None:
            return True
        reason = f"{deadline.sla} breached at {deadline.due.isoformat()}"
        if escalation.priority is not None:
            raised = highest(self.priority, escalation.priority)
            if raised is not self.priority:
                self._priority_changed(timestamp=at, priority=raised, reason=reason, by=by)
        if escalation.team is not None and escalation.team != self.team:
            self._transferred(timestamp=at, team=escalation.team, agent=None, reason=reason, by=by)
        return True

    @property
    def _clock_running(self) -> bool:
        """Someone waits on us: the customer wrote, nobody answered, and it is neither snoozed,
        resolved, nor marked as waiting on the customer."""
        return self.awaiting_since is not None and self.status not in _CLOCK_STOPPED

    # facts for the pure services

    @property
    def channel_kind(self) -> ChannelKind | None:
        """The kind of the channel the customer last wrote on (else the thread's last one)."""
        channel = self.last_channel or (self.messages[-1].channel if self.messages else None)
        return None if channel is None else kind_of(channel)

    def routing_facts(self) -> ConversationFacts:
        """The conversation as routing sees it: never its channel, only the channel's kind."""
        kind = self.channel_kind
        if kind is None:
            raise NoReplyChannel("a conversation with no message yet cannot be routed")
        known = self.classification
        return ConversationFacts(
            conversation_id=self.id,
            channel_kind=kind,
            priority=self.priority,
            intent=None if known is None else known.intent,
            sentiment=None if known is None else known.sentiment,
            urgency=None if known is None else known.urgency,
            sentiment_score=None if known is None else known.sentiment_score,
        )

    def sla_facts(self, tier: str | None = None) -> SlaFacts | None:
        """The clock's facts; no clock runs while snoozed, resolved or waiting on the customer."""
        kind = self.channel_kind
        if kind is None:
            return None
        return SlaFacts(
            channel_kind=kind,
            awaiting_since=self.awaiting_since if self._clock_running else None,
            answered_before=self.answered,
            tier=tier,
        )

    def queue_entry(self, breach_at: datetime | None) -> QueueEntry:
        """The conversation as it waits in its team's queue, with the skills whoever takes it
        must have (those its routing decision asked for)."""
        queued = next(
            (a.at for a in reversed(self.history) if a.kind is AssignmentKind.QUEUED),
            self.started_at,
        )
        kind = self.channel_kind
        if kind is None:
            raise NoReplyChannel("a conversation with no message yet waits in no queue")
        return QueueEntry(self.id, self.priority, queued, kind, breach_at, self.queue_skills)

    def _has(self, message_id: UUID) -> bool:
        return any(m.message_id == message_id for m in self.messages)

    def _check_on_team(self, agent: ActingAgent) -> None:
        if self.team is not None and self.team not in agent.teams:
            raise NotOnTeam(agent.key, self.team)

    # events: each method body is the state change the event makes

    @event("MessageReceived")
    def _message_received(self, timestamp: datetime, message: ThreadMessage, by: str) -> None:
        self.messages.append(message)
        self.last_inbound[message.channel] = max(
            message.at, self.last_inbound.get(message.channel, message.at)
        )
        self.last_channel = message.channel
        # The oldest unanswered message (a reopening's own instant, if the message is older)
        if self.awaiting_since is None or message.at < self.awaiting_since:
            self.awaiting_since = message.at
        self.status = ConversationStatus.WAITING_ON_US
        self.snoozed_until = None

    @event("MessageSent")
    def _message_sent(self, timestamp: datetime, message: ThreadMessage, by: str) -> None:
        self.messages.append(message)
        self.statuses[message.message_id] = MessageStatus.QUEUED
        self.awaiting_since = None
        self.answered = True
        self.status = ConversationStatus.WAITING_ON_CUSTOMER
        self.snoozed_until = None

    @event("DeliveryUpdated")
    def _delivery_updated(
        self, timestamp: datetime, message_id: UUID, status: MessageStatus, by: str
    ) -> None:
        self.statuses[message_id] = status

    @event("ReplyUndelivered")
    def _reply_undelivered(
        self,
        timestamp: datetime,
        message_id: UUID,
        status: MessageStatus,
        reason: str,
        awaiting_since: datetime,
        by: str,
    ) -> None:
        self.status = ConversationStatus.WAITING_ON_US
        self.awaiting_since = awaiting_since

    @event("NoteAdded")
    def _note_added(self, timestamp: datetime, note: Note, by: str) -> None:
        self.notes.append(note)

    @event("Snoozed")
    def _snoozed(self, timestamp: datetime, until: datetime, by: str) -> None:
        self.status = ConversationStatus.SNOOZED
        self.snoozed_until = until

    @event("Woke")
    def _woke(self, timestamp: datetime, by: str) -> None:
        self.status = ConversationStatus.WAITING_ON_US
        self.snoozed_until = None

    @event("Resolved")
    def _resolved(self, timestamp: datetime, reason: str, by: str) -> None:
        self.status = ConversationStatus.RESOLVED
        self.snoozed_until = None
        self.awaiting_since = None

    @event("Reopened")
    def _reopened(self, timestamp: datetime, reason: str, by: str) -> None:
        self.status = ConversationStatus.WAITING_ON_US
        self.answered = False
        self.reopened += 1
        # Someone waits on us from the reopening: its first-response clock runs from then
        # (a customer's message that reopens it follows at the same instant).
        if self.awaiting_since is None:
            self.awaiting_since = timestamp

    @event("MarkedWaiting")
    def _marked_waiting(self, timestamp: datetime, status: ConversationStatus, by: str) -> None:
        self.status = status
        self.snoozed_until = None

    @event("Assigned")
    def _assigned(self, timestamp: datetime, team: str, agent: str, reason: str, by: str) -> None:
        self.team, self.agent = team, agent
        self.history.append(Assignment(AssignmentKind.ASSIGNED, team, agent, reason, by, timestamp))

    @event("Transferred")
    def _transferred(
        self, timestamp: datetime, team: str, agent: str | None, reason: str, by: str
    ) -> None:
        if team != self.team:
            self.queue_skills = frozenset()  # another team's queue: the rule's skills stay behind
        self.team, self.agent = team, agent
        self.history.append(
            Assignment(AssignmentKind.TRANSFERRED, team, agent, reason, by, timestamp)
        )

    @event("Unassigned")
    def _unassigned(self, timestamp: datetime, reason: str, by: str) -> None:
        self.agent = None
        self.history.append(
            Assignment(AssignmentKind.UNASSIGNED, self.team, None, reason, by, timestamp)
        )

    class Queued(Aggregate.Event):
        """Queued to a team; since version 2 with the skills the routing decision asked for
        (those stored before asked for none the queue knew of)."""

        class_version = 2
        team: str
        reason: str
        by: str
        skills: frozenset[str]

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["skills"] = []

    @event(Queued)
    def _queued(
        self, timestamp: datetime, team: str, reason: str, by: str, skills: frozenset[str]
    ) -> None:
        self.team, self.agent = team, None
        self.queue_skills = skills
        self.history.append(Assignment(AssignmentKind.QUEUED, team, None, reason, by, timestamp))

    class Classified(Aggregate.Event):
        """Intent and sentiment as classified; since version 2 with why there is no intent and
        the classifier's urgency and sentiment score (those stored before have none of them).

        Intent, sentiment and score are personal (sealed): once the customer is erased they
        read `[erased]`, the sentiment and the score too (a `Sentiment` and a number until
        then). Those stored in clear before they were sealed read as stored, until
        `chorus erasure seal-existing` seals them."""

        class_version = 2
        intent: str | None
        sentiment: str | None
        confidence: float | None
        by: str
        unknown_reason: str | None
        urgency: str | None
        sentiment_score: float | str | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state.update(unknown_reason=None, urgency=None, sentiment_score=None)

    @event(Classified)
    def _classified(
        self,
        timestamp: datetime,
        intent: str | None,
        sentiment: str | None,
        confidence: float | None,
        by: str,
        unknown_reason: str | None,
        urgency: str | None,
        sentiment_score: float | str | None,
    ) -> None:
        # Erased, the intent reads `[erased]`; the sentiment and its score, no longer known, None.
        self.classification = Classification(
            intent,
            None if sentiment is None or sentiment == ERASED else Sentiment(sentiment),
            confidence,
            timestamp,
            unknown_reason,
            urgency,
            sentiment_score if isinstance(sentiment_score, float | int) else None,
        )

    @event("PriorityChanged")
    def _priority_changed(
        self, timestamp: datetime, priority: Priority, reason: str, by: str
    ) -> None:
        self.priority = priority

    @event("Tagged")
    def _tagged(self, timestamp: datetime, tags: frozenset[str], by: str) -> None:
        self.tags = self.tags | tags

    @event("Untagged")
    def _untagged(self, timestamp: datetime, tags: frozenset[str], by: str) -> None:
        self.tags = self.tags - tags

    @event("SlaBreached")
    def _sla_breached(self, timestamp: datetime, sla: SlaKind, due: datetime, by: str) -> None:
        self.breaches.append((sla, due))
