"""Routing: which team and which agent take a conversation, from intent, context and load.

Routing is data: a versioned document (read and checked by `routing_reader.decode_routing`,
which names the JSON path of every fault), and a pure service, `route`, that takes plain facts
and returns a `RoutingDecision` citing every rule that shaped it. It never sees a channel: only
the channel's kind (`vocabulary.kind_of`, a channel policy), for capacity and service levels.

```json
{
  "default_team": "support",
  "tier_attribute": "tier",
  "rules": [
    {"id": "refunds", "intents": ["refund", "billing"], "team": "billing",
     "skills": ["billing"], "priority": "high",
     "overflow": {"team": "support", "queue_at_least": 5}},
    {"id": "spanish", "when": {"type": "attribute", "name": "language", "op": "eq",
                               "value": "es"}, "skills": ["es"]},
    {"id": "repeat-callers", "open_conversations": {"op": "gte", "value": 2},
     "segments": ["churn-risk"], "team": "retention"}
  ],
  "escalations": [
    {"id": "vip", "tiers": ["vip"], "priority": "urgent", "team": "vip-desk"},
    {"id": "fraud", "urgencies": ["critical"], "priority": "urgent"},
    {"id": "upset", "sentiment_score": {"op": "lte", "value": -0.5}, "priority": "high"}
  ],
  "sla": {"first_response": {"chat": "2m", "email": "4h"},
          "next_response": {"chat": "5m", "email": "8h"}, "working_hours": true}
}
```

**Matching** (rules and escalations alike; every criterion given must hold, none given always
holds): `intents` (the classified intent is one of them, by its key: `domain.assistant.intents`),
`sentiments`, `sentiment_score` (the classifier's score, -1 .. 1, compared with `op`: `{"op":
"lte", "value": -0.5}` is anger), `urgencies` (the classifier's urgency, `low`, `normal`, `high`
or `critical`, is one of them), `tiers` (the customer
attribute named by `tier_attribute`), `segments` (a member of any), `open_conversations` (a count
compared with `op`), and `when`, a condition of the segments' language over the customer's
context (any attribute, consents, recent signals in time windows).

**Deciding**: the first rule that matches names a `team`, or only `skills` (then the team that
covers them with the most free capacity for the channel kind); none matching, `default_team`.
Every escalation that matches raises the priority (it is never lowered: the decision's priority
is the highest of the conversation's own, the rule's and the escalations'); the first one naming
a `team` moves the conversation there, to any available member (the rule's skills stay behind).
Then the agent: an available member of the team with the required skills and free capacity for
the channel kind; the most free capacity wins, then whoever was assigned longest ago, then the
key. With none, a rule's `overflow` team is tried when the first team's queue is at least
`queue_at_least` long; failing that, the conversation is queued to the team.

**Worked example.** A VIP customer writes on WhatsApp "I want my money back", classified as
intent `refund`, sentiment `negative` with a score of -0.7:

```python
decision = route(
    ConversationFacts(conversation_id, ChannelKind.CHAT, intent="refund",
                      sentiment=Sentiment.NEGATIVE, sentiment_score=-0.7),
    CustomerContext(SegmentFacts(attributes={"tier": "vip"}), open_conversations=1),
    RoutingPolicy(7, decode_routing(document, teams=..., segments=...)),
    teams=[team.view(queued=0) for team in teams],
    agents=[agent.candidate(load_of[agent.key]) for agent in agents],
)
decision.team, decision.agent, decision.priority  # "vip-desk", "rui", Priority.URGENT
[r.rule for r in decision.reasons]  # ["refunds", "vip", "upset", "agent"]
conversation.apply_routing(decision, by="router", at=now)  # Assigned, or Queued
```

**Queues**: a conversation nobody could take waits in its team's queue, in `queue_order`: the
highest priority first, then the soonest SLA breach, then the longest waiting (then its id, so
the order is total). When capacity frees or an agent comes back, `offer` hands the queue out in
that order to whoever can take each, never over anyone's capacity.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec

from domain.conversation.sla import SlaPolicy
from domain.conversation.vocabulary import ChannelKind, Presence, Priority, Sentiment, highest
from domain.segments.conditions import COMPARISONS, Condition, Op, SegmentFacts
from domain.shared.errors import InvalidValue
from domain.shared.keys import KEY_PATTERN

__all__ = [
    "URGENCIES",
    "Candidate",
    "ConversationFacts",
    "CountIs",
    "CustomerContext",
    "Escalation",
    "Match",
    "Offer",
    "Overflow",
    "QueueEntry",
    "Reason",
    "RoutingDecision",
    "RoutingDocument",
    "RoutingPolicy",
    "RoutingRule",
    "ScoreIs",
    "TeamView",
    "best_agent",
    "offer",
    "queue_key",
    "queue_order",
    "route",
]

URGENCIES = ("low", "normal", "high", "critical")
"""The classifier's urgencies, least urgent first, as conversations record them."""

Key = Annotated[str, msgspec.Meta(pattern=KEY_PATTERN)]
UrgencyName = Literal["low", "normal", "high", "critical"]
Keys = Annotated[tuple[Key, ...], msgspec.Meta(min_length=1)]
TierName = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
AttributeName = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]

_LATEST = datetime.max.replace(tzinfo=UTC)


# --- the document ------------------------------------------------------------------------------


class CountIs(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A count compared with a number: `{"op": "gte", "value": 2}`."""

    op: Op
    value: Annotated[int, msgspec.Meta(ge=0)]

    def __post_init__(self) -> None:
        if self.op not in COMPARISONS:
            allowed = ", ".join(str(op) for op in Op if op in COMPARISONS)
            raise InvalidValue("op", f"'{self.op}' cannot compare numbers: use {allowed}")

    def holds(self, count: int) -> bool:
        """Whether `count op value`."""
        return {
            Op.EQ: count == self.value,
            Op.NE: count != self.value,
            Op.GT: count > self.value,
            Op.GTE: count >= self.value,
            Op.LT: count < self.value,
            Op.LTE: count <= self.value,
        }[self.op]


class ScoreIs(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A sentiment score (-1 .. 1) compared with a number: `{"op": "lte", "value": -0.5}`."""

    op: Op
    value: Annotated[float, msgspec.Meta(ge=-1, le=1)]

    def __post_init__(self) -> None:
        if self.op not in COMPARISONS:
            allowed = ", ".join(str(op) for op in Op if op in COMPARISONS)
            raise InvalidValue("op", f"'{self.op}' cannot compare numbers: use {allowed}")

    def holds(self, score: float) -> bool:
        """Whether `score op value`."""
        return {
            Op.EQ: score == self.value,
            Op.NE: score != self.value,
            Op.GT: score > self.value,
            Op.GTE: score >= self.value,
            Op.LT: score < self.value,
            Op.LTE: score <= self.value,
        }[self.op]


class Match(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The criteria of a rule or an escalation; those given must all hold."""

    intents: Keys | None = None
    sentiments: Annotated[tuple[Sentiment, ...], msgspec.Meta(min_length=1)] | None = None
    sentiment_score: ScoreIs | None = None
    urgencies: Annotated[tuple[UrgencyName, ...], msgspec.Meta(min_length=1)] | None = None
    tiers: Annotated[tuple[TierName, ...], msgspec.Meta(min_length=1)] | None = None
    segments: Keys | None = None
    open_conversations: CountIs | None = None
    when: Condition | None = None

    def matched(
        self,
        conversation: ConversationFacts,
        customer: CustomerContext,
        tier_attribute: str,
        now: datetime,
    ) -> list[str] | None:
        """What held, in words, when every criterion given holds; None when one does not."""
        said = []
        if self.intents is not None:
            if conversation.intent not in self.intents:
                return None
            said.append(f"intent {conversation.intent}")
        if self.sentiments is not None:
            if conversation.sentiment not in self.sentiments:
                return None
            said.append(f"sentiment {conversation.sentiment}")
        if self.sentiment_score is not None:
            score = conversation.sentiment_score
            if score is None or not self.sentiment_score.holds(score):
                return None
            said.append(f"sentiment score {score:.2f}")
        if self.urgencies is not None:
            if conversation.urgency not in self.urgencies:
                return None
            said.append(f"urgency {conversation.urgency}")
        if self.tiers is not None:
            tier = customer.tier(tier_attribute)
            if tier not in self.tiers:
                return None
            said.append(f"{tier_attribute} {tier}")
        if self.segments is not None:
            found = sorted(customer.segments.intersection(self.segments))
            if not found:
                return None
            said.append(f"in segment {', '.join(found)}")
        if self.open_conversations is not None:
            if not self.open_conversations.holds(customer.open_conversations):
                return None
            said.append(f"{customer.open_conversations} open conversations")
        if self.when is not None:
            if not self.when.holds(customer.facts, now):
                return None
            said.append("its condition holds")
        return said or ["always"]


class Overflow(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Where a conversation goes when its team has nobody free and `queue_at_least` waiting."""

    team: Key
    queue_at_least: Annotated[int, msgspec.Meta(ge=0)] = 0


class RoutingRule(Match, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """When the criteria hold: a team, or the skills a team must cover; and a priority."""

    id: Key
    team: Key | None = None
    skills: tuple[Key, ...] = ()
    priority: Priority | None = None
    overflow: Overflow | None = None

    def __post_init__(self) -> None:
        if self.team is None and not self.skills:
            raise InvalidValue("team", "a rule names a team, or the skills a team must cover")


class Escalation(Match, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """When the criteria hold: a higher priority, another team, or both."""

    id: Key
    priority: Priority | None = None
    team: Key | None = None

    def __post_init__(self) -> None:
        if self.priority is None and self.team is None:
            raise InvalidValue(
                "priority", "an escalation raises the priority, names a team, or both"
            )


class RoutingDocument(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The whole routing document: rules in order, escalations, service levels."""

    default_team: Key
    tier_attribute: AttributeName = "tier"
    rules: tuple[RoutingRule, ...] = ()
    escalations: tuple[Escalation, ...] = ()
    sla: SlaPolicy = msgspec.field(default_factory=SlaPolicy)


@dataclass(frozen=True, slots=True)
class RoutingPolicy:
    """A routing document as published: its version is cited by every decision."""

    version: int
    document: RoutingDocument


# --- the facts ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConversationFacts:
    """What routing knows of the conversation: its channel's kind, never the channel."""

    conversation_id: UUID
    channel_kind: ChannelKind
    priority: Priority = Priority.NORMAL
    intent: str | None = None
    sentiment: Sentiment | None = None
    urgency: str | None = None
    sentiment_score: float | None = None


@dataclass(frozen=True, slots=True)
class CustomerContext:
    """What routing knows of the customer: the facts conditions read, the segments they are in,
    how many conversations they have open."""

    facts: SegmentFacts = field(default_factory=SegmentFacts)
    segments: frozenset[str] = frozenset()
    open_conversations: int = 0

    def tier(self, attribute: str) -> str | None:
        """The customer's tier, the value of `attribute` as text; None without one."""
        value = self.facts.attributes.get(attribute)
        return None if value is None or isinstance(value, bool) else str(value)


@dataclass(frozen=True, slots=True)
class TeamView:
    """A team as routing sees it: members' keys, the skills it covers, how many wait in its queue."""

    key: str
    skills: frozenset[str] = frozenset()
    members: frozenset[str] = frozenset()
    queued: int = 0


@dataclass(frozen=True, slots=True)
class Candidate:
    """An agent as routing sees them: skills, presence, capacity and load per channel kind."""

    key: str
    skills: frozenset[str]
    presence: Presence
    capacity: Mapping[ChannelKind, int]
    load: Mapping[ChannelKind, int] = field(default_factory=dict)
    last_assigned_at: datetime | None = None

    def free(self, kind: ChannelKind) -> int:
        """How many more conversations of the kind the agent can take (never negative)."""
        return max(0, self.capacity.get(kind, 0) - self.load.get(kind, 0))

    def can_take(self, kind: ChannelKind, skills: frozenset[str]) -> bool:
        """Available, skilled enough, and with room for one more of the kind."""
        return self.presence is Presence.AVAILABLE and skills <= self.skills and self.free(kind) > 0

    def taking(self, kind: ChannelKind, at: datetime) -> Candidate:
        """The agent after taking one more conversation of the kind at `at`."""
        load = dict(self.load)
        load[kind] = load.get(kind, 0) + 1
        return replace(self, load=load, last_assigned_at=at)


# --- the decision ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reason:
    """A rule (a document rule's or an escalation's id, or `default`, `overflow`, `agent`,
    `queue`) and what it said, in words an agent or auditor can read."""

    rule: str
    says: str


@dataclass(frozen=True, slots=True)
class RoutingDecision:
    """Where a conversation goes: a team, and an agent or nobody yet (queued), at a priority."""

    version: int
    team: str
    agent: str | None
    priority: Priority
    escalated: bool
    skills: frozenset[str]
    rule: str | None
    reasons: tuple[Reason, ...]

    @property
    def queued(self) -> bool:
        """Nobody could take it: it waits in the team's queue."""
        return self.agent is None

    def explained(self) -> str:
        """The reasons, one sentence."""
        return "; ".join(f"{r.rule}: {r.says}" for r in self.reasons)


def route(
    conversation: ConversationFacts,
    customer: CustomerContext,
    policy: RoutingPolicy,
    teams: Iterable[TeamView],
    agents: Iterable[Candidate],
    now: datetime,
) -> RoutingDecision:
    """Routes a conversation by intent, customer context and load, with every reason."""
    document = policy.document
    by_key = {team.key: team for team in teams}
    pool = list(agents)
    kind = conversation.channel_kind
    reasons: list[Reason] = []
    priority = conversation.priority

    rule = _first_rule(document, conversation, customer, now)
    skills: frozenset[str] = frozenset()
    if rule is None:
        team = document.default_team
        reasons.append(Reason("default", f"no rule matched: team {team}"))
    else:
        said, chosen = rule
        skills = frozenset(chosen.skills)
        found = chosen.team or _team_by_skills(skills, by_key.values(), pool, kind)
        if found is None:
            team = document.default_team
            said.append(f"no team covers {_listed(skills)}: team {team}")
        else:
            team = found
            said.append(f"team {team}")
        if chosen.priority is not None:
            priority = highest(priority, chosen.priority)
            said.append(f"priority {chosen.priority}")
        reasons.append(Reason(chosen.id, "; ".join(said)))

    escalated = False
    moved = False
    for escalation in document.escalations:
        held = escalation.matched(conversation, customer, document.tier_attribute, now)
        if held is None:
            continue
        escalated = True
        if escalation.priority is not None:
            priority = highest(priority, escalation.priority)
            held.append(f"priority {escalation.priority}")
        if escalation.team is not None and not moved:
            moved = True
            team, skills = escalation.team, frozenset()
            held.append(f"team {team}")
        reasons.append(Reason(escalation.id, "; ".join(held)))

    agent = best_agent(by_key.get(team), pool, kind, skills)
    overflow = rule[1].overflow if rule is not None and not moved else None
    if agent is None and overflow is not None:
        waiting = by_key[team].queued if team in by_key else 0
        if waiting >= overflow.queue_at_least:
            spill = best_agent(by_key.get(overflow.team), pool, kind, skills)
            if spill is not None:
                reasons.append(
                    Reason(
                        "overflow",
                        f"team {team} has nobody free and {waiting} waiting: team {overflow.team}",
                    )
                )
                team, agent = overflow.team, spill
    if agent is not None:
        reasons.append(
            Reason("agent", f"{agent.key}: the most free {kind} capacity ({agent.free(kind)})")
        )
    else:
        reasons.append(Reason("queue", _nobody(team, kind, skills, by_key)))
    return RoutingDecision(
        version=policy.version,
        team=team,
        agent=None if agent is None else agent.key,
        priority=priority,
        escalated=escalated,
        skills=skills,
        rule=None if rule is None else rule[1].id,
        reasons=tuple(reasons),
    )


def best_agent(
    team: TeamView | None,
    agents: Iterable[Candidate],
    kind: ChannelKind,
    skills: frozenset[str] = frozenset(),
) -> Candidate | None:
    """The member of `team` who can take a conversation of `kind`: the most free capacity, then
    the longest since their last assignment, then the first key."""
    if team is None:
        return None
    able = [a for a in agents if a.key in team.members and a.can_take(kind, skills)]
    if not able:
        return None
    return min(able, key=lambda a: (-a.free(kind), _since(a.last_assigned_at), a.key))


def _since(at: datetime | None) -> tuple[int, datetime]:
    return (0, _LATEST) if at is None else (1, at)


def _first_rule(
    document: RoutingDocument,
    conversation: ConversationFacts,
    customer: CustomerContext,
    now: datetime,
) -> tuple[list[str], RoutingRule] | None:
    for rule in document.rules:
        said = rule.matched(conversation, customer, document.tier_attribute, now)
        if said is not None:
            return said, rule
    return None


def _team_by_skills(
    skills: frozenset[str],
    teams: Iterable[TeamView],
    agents: Sequence[Candidate],
    kind: ChannelKind,
) -> str | None:
    """The team covering `skills` with the most free capacity, then the shortest queue."""
    covering = [team for team in teams if skills <= team.skills]
    if not covering:
        return None

    def free(team: TeamView) -> int:
        return sum(
            a.free(kind) for a in agents if a.key in team.members and a.can_take(kind, skills)
        )

    return min(covering, key=lambda t: (-free(t), t.queued, t.key)).key


def _nobody(
    team: str, kind: ChannelKind, skills: frozenset[str], teams: Mapping[str, TeamView]
) -> str:
    if team not in teams:
        return f"team {team} is not known or has no members: queued to it"
    needing = f" with {_listed(skills)}" if skills else ""
    return f"no available member of team {team}{needing} has free {kind} capacity: queued"


def _listed(skills: Iterable[str]) -> str:
    return ", ".join(sorted(skills)) or "no skills"


# --- queues ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueueEntry:
    """A conversation waiting in a team's queue."""

    conversation_id: UUID
    priority: Priority
    queued_at: datetime
    channel_kind: ChannelKind
    breach_at: datetime | None = None
    skills: frozenset[str] = frozenset()
    arrival: int = 0
    """Its place among the queue's conversations in the order they arrived (the roster's)."""


def queue_key(entry: QueueEntry) -> tuple[Any, ...]:
    """The queue's order: highest priority, then soonest SLA breach (none last), then the
    longest waiting, then the first to arrive, then the id; no two entries compare equal."""
    return (
        -entry.priority.rank,
        entry.breach_at is None,
        entry.breach_at or _LATEST,
        entry.queued_at,
        entry.arrival,
        entry.conversation_id,
    )


def queue_order(entries: Iterable[QueueEntry]) -> list[QueueEntry]:
    """The entries in the order they are offered."""
    return sorted(entries, key=queue_key)


@dataclass(frozen=True, slots=True)
class Offer:
    """A queued conversation handed to an agent."""

    conversation_id: UUID
    agent: str


def offer(
    queue: Iterable[QueueEntry],
    team: TeamView,
    agents: Iterable[Candidate],
    now: datetime,
) -> tuple[Offer, ...]:
    """Hands the team's queue out in order to members who can take each conversation, each time
    to the one with the most free capacity; one nobody can take now is passed over for the next
    (another kind, other skills), and nobody is ever given more than their capacity."""
    pool = {agent.key: agent for agent in agents}
    offers = []
    for entry in queue_order(queue):
        chosen = best_agent(team, pool.values(), entry.channel_kind, entry.skills)
        if chosen is None:
            continue
        pool[chosen.key] = chosen.taking(entry.channel_kind, now)
        offers.append(Offer(entry.conversation_id, chosen.key))
    return tuple(offers)
