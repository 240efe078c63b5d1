"""Service levels: how soon a customer waiting on us must have an answer, and when that is.

The targets are the `sla` section of the routing document, per channel kind (a channel policy:
chats in minutes, emails in hours), with a tier's own targets where the document gives them:

```json
{"first_response": {"chat": "2m", "email": "4h"},
 "next_response": {"chat": "5m", "email": "8h"},
 "tiers": {"vip": {"first_response": {"email": "1h"}}},
 "working_hours": true,
 "on_breach": {"priority": "urgent", "team": "supervisors"}}
```

The clock starts at the customer's oldest unanswered message (`SlaFacts.awaiting_since`); the
first answer of a conversation, or since it was reopened, is held to `first_response`, later
ones to `next_response`. With `working_hours`, only the team's open time counts. `next_breach`
gives the instant a durable timer waits for; when it fires with no answer, the conversation
records the breach (`Conversation.record_breach`, given `on_breach`), which escalates it:
a higher priority, another team's queue. A clock stops while the conversation is snoozed,
resolved or marked as waiting on the customer, and resumes from the same message after.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import msgspec

from domain.conversation.vocabulary import ChannelKind, Priority
from domain.shared.durations import DurationText, parse_duration
from domain.shared.errors import InvalidValue
from domain.shared.keys import KEY_PATTERN

if TYPE_CHECKING:
    from domain.conversation.working_hours import WorkingHours

__all__ = ["Deadline", "OnBreach", "SlaFacts", "SlaKind", "SlaPolicy", "Targets", "next_breach"]

Target = Annotated[DurationText, msgspec.Meta(examples=["2m", "4h", "1h30m"])]
TierName = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
TeamKey = Annotated[str, msgspec.Meta(pattern=KEY_PATTERN)]


class SlaKind(StrEnum):
    """Which answer a clock waits for."""

    FIRST_RESPONSE = "first_response"
    NEXT_RESPONSE = "next_response"


LONGEST_TARGET = timedelta(days=30)
"""No service level promises an answer later than this: a target beyond it is a mistake."""


def _check_targets(name: str, targets: dict[ChannelKind, str]) -> None:
    for kind, text in targets.items():
        try:
            span = parse_duration(text)
        except ValueError as error:
            raise InvalidValue(f"{name}.{kind}", str(error)) from None
        if span <= timedelta(0):
            raise InvalidValue(f"{name}.{kind}", f"{text!r} is no time at all")
        if span > LONGEST_TARGET:
            raise InvalidValue(f"{name}.{kind}", f"{text!r} is longer than a target may be (30d)")


class Targets(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """First- and next-response targets by channel kind; a kind left out has no target."""

    first_response: dict[ChannelKind, Target] = msgspec.field(default_factory=dict)
    next_response: dict[ChannelKind, Target] = msgspec.field(default_factory=dict)

    def check(self, at: str = "") -> None:
        """Refuses a target that is no time (`InvalidValue` naming its path below `at`)."""
        _check_targets(f"{at}first_response", self.first_response)
        _check_targets(f"{at}next_response", self.next_response)

    def target(self, sla: SlaKind, kind: ChannelKind) -> timedelta | None:
        """The time allowed for an answer of that kind on that channel kind, if any."""
        text = (self.first_response if sla is SlaKind.FIRST_RESPONSE else self.next_response).get(
            kind
        )
        return None if text is None else parse_duration(text)


class OnBreach(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a breach does: raise the priority, move the conversation to a team, or both."""

    priority: Priority | None = None
    team: TeamKey | None = None


class SlaPolicy(Targets, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The targets, a tier's own ones, whether working hours count, and what a breach does."""

    tiers: dict[TierName, Targets] = msgspec.field(default_factory=dict)
    working_hours: bool = False
    on_breach: OnBreach | None = None

    def __post_init__(self) -> None:
        # A tier's targets are checked here, where its name is known for the path.
        self.check()
        for tier, targets in self.tiers.items():
            targets.check(f"tiers.{tier}.")

    def allowed(self, sla: SlaKind, kind: ChannelKind, tier: str | None) -> timedelta | None:
        """The tier's target when it has one, else the general one."""
        special = self.tiers.get(tier) if tier is not None else None
        if special is not None:
            found = special.target(sla, kind)
            if found is not None:
                return found
        return self.target(sla, kind)


@dataclass(frozen=True, slots=True)
class SlaFacts:
    """What a conversation says about its clock: the customer's oldest unanswered message (None
    when nobody waits on us), whether an agent already answered since it (re)opened."""

    channel_kind: ChannelKind
    awaiting_since: datetime | None
    answered_before: bool
    tier: str | None = None


@dataclass(frozen=True, slots=True)
class Deadline:
    """The instant an answer is due, for which target, and the time it allowed."""

    sla: SlaKind
    due: datetime
    allowed: timedelta

    def left_at(self, now: datetime) -> timedelta:
        """Time to the breach from `now`; negative once breached."""
        return self.due - now


def next_breach(
    facts: SlaFacts, policy: SlaPolicy, hours: WorkingHours | None = None
) -> Deadline | None:
    """When the conversation breaches its SLA if nobody answers; None when no clock runs.

    `hours` are the working hours of the team holding the conversation (`Team.working_hours`);
    they count only when the policy says `working_hours`.
    """
    if facts.awaiting_since is None:
        return None
    sla = SlaKind.NEXT_RESPONSE if facts.answered_before else SlaKind.FIRST_RESPONSE
    allowed = policy.allowed(sla, facts.channel_kind, facts.tier)
    if allowed is None:
        return None
    if policy.working_hours and hours is not None:
        try:
            due = hours.add_open_time(facts.awaiting_since, allowed)
        except InvalidValue:
            return None  # the team is not open that long in the time ahead: it cannot breach
    else:
        due = facts.awaiting_since + allowed
    return Deadline(sla, due, allowed)
