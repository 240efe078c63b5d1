"""The journey interpreter: where a customer goes next, and why, from plain facts.

`begin` starts a customer at the journey's first step; `advance` moves on a customer who is
somewhere in it (`Place`): held at a wait until a timer is due, a signal arrives or a send's
outcome is known; or just put at a step by a migration, not yet taken. Both run steps until the
customer is held again or leaves, and answer a `Progress`: the actions, in order, each with its
reason. They do no I/O and read no clock: `Facts.now` is the time.

What the caller does with a `Progress` (the campaign process manager):
- records it on the `Enrollment` (`Enrollment.record`), which turns every action into an event;
- asks the rules for each `Dispatch` (with its `dedup_key`), and feeds what became of the send
  back as `Facts.responses` when it is known; a send held for its decision (`HoldKind.DECISION`:
  a branch asks whether it was suppressed or deferred) goes on once the rules have answered;
- applies each `Change` to the customer;
- sets a timer at `Progress.timer`, when there is one, and calls `advance` when it is due, or
  when a signal the customer is held for (`Hold.signal`) or a send outcome arrives.

A goal signal (`Facts.signal` matching `Journey.goal`) ends the journey wherever the customer
is, as a conversion when it comes within the attribution window from entry (`reach_goal`, which
the caller also asks while the campaign is paused).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeAlias
from uuid import UUID

import msgspec

from domain.campaign.journey import (
    NOT_DELIVERED,
    REACHED,
    Branch,
    Case,
    Exit,
    Journey,
    Response,
    Send,
    Split,
    Step,
    Update,
    Wait,
    WaitForSignal,
)
from domain.campaign.local_time import zone_of
from domain.campaign.split import arm_of
from domain.segments.conditions import SegmentFacts
from domain.shared.durations import parse_duration
from domain.shared.errors import DomainError

__all__ = [
    "DECIDED_AT_ONCE",
    "DELIVERED",
    "Action",
    "ArrivedSignal",
    "Change",
    "Conversion",
    "Dispatch",
    "Facts",
    "Held",
    "Hold",
    "HoldKind",
    "JourneySpins",
    "Leave",
    "Move",
    "Place",
    "Progress",
    "Traveller",
    "advance",
    "begin",
    "conversion",
    "dedup_key",
    "reach_goal",
    "sends_held_for_decision",
]


DELIVERED = "delivered"
"""Why a customer held at a send for its delivery (`on_not_delivered`) goes on to its `next`."""

DECIDED_AT_ONCE = frozenset({Response.SUPPRESSED, Response.DEFERRED})
"""The responses a send has as soon as the rules decide it (a template that does not render
suppresses it too), before any provider has it."""


# --- what the interpreter is told --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Traveller:
    """Who is on the journey: one enrollment of one customer in one version of a campaign."""

    campaign_id: UUID
    version: int
    customer_id: UUID
    enrollment_id: UUID


class HoldKind(StrEnum):
    """What a held customer waits for."""

    TIME = "time"
    SIGNAL = "signal"
    DELIVERY = "delivery"
    DECISION = "decision"


@dataclass(frozen=True, slots=True)
class Hold:
    """A customer held at a step: until `until` (the end of a wait, or a timeout), or before
    then for the `signal` (a wait_for_signal) or the send's delivery (a send's on_not_delivered);
    at a send whose suppression or deferral a branch asks about, for the rules' decision on it
    (`until` is when it was asked: the caller goes on as soon as the rules have answered)."""

    kind: HoldKind
    until: datetime
    signal: str | None = None


@dataclass(frozen=True, slots=True)
class Place:
    """Where an enrollment is: at `step`, held there or (`hold` None) not yet taken it; `taken`
    steps so far; `entered_at`, from which the goal's attribution window runs."""

    step: str
    entered_at: datetime
    hold: Hold | None = None
    taken: int = 0


@dataclass(frozen=True, slots=True)
class ArrivedSignal:
    """A signal of the customer that arrived, as the interpreter sees it."""

    signal: str
    properties: Mapping[str, Any] = field(default_factory=dict)
    occurred_at: datetime | None = None
    event_id: str | None = None


@dataclass(frozen=True, slots=True)
class Facts:
    """What the interpreter may know at `now`.

    `customer` is what conditions see (attributes and profile, consents, signals); `segments`
    the keys of the segments the customer is in; `time_zone` the customer's (UTC if none);
    `responses` what became of each send of this enrollment, by send step; `sends` how many
    sends of this campaign already count for this customer (for the send limit: those asked
    for, but one never made or suppressed); `signal` the
    signal that arrived, if one did.
    """

    now: datetime
    customer: SegmentFacts = field(default_factory=SegmentFacts)
    segments: frozenset[str] = frozenset()
    time_zone: str | None = None
    responses: Mapping[str, frozenset[Response]] = field(default_factory=dict)
    sends: int = 0
    signal: ArrivedSignal | None = None


# --- what it answers ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Move:
    """The customer goes to `step` (from `came_from`, None on entry) because of `reason`; `arm`
    is the split arm it was drawn into, when a split sent it."""

    step: str
    came_from: str | None
    reason: str
    arm: str | None = None


@dataclass(frozen=True, slots=True)
class Dispatch:
    """Ask the rules to send `send` (the step `step`); `dedup_key` is the same however often
    the same step of the same enrollment is decided."""

    step: str
    send: Send
    dedup_key: str


@dataclass(frozen=True, slots=True)
class Held:
    """The customer stays at `step`, held as `hold` says, because of `reason`."""

    step: str
    hold: Hold
    reason: str


@dataclass(frozen=True, slots=True)
class Change:
    """Change the customer's profile fields and attributes (None removes an attribute)."""

    step: str
    profile: Mapping[str, str | None]
    attributes: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Conversion:
    """The goal was reached within the attribution window."""

    signal: str
    event_id: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class Leave:
    """The customer leaves the journey, because of `reason`; drawn into the control group
    `arm` of the split `split`, when that is why."""

    reason: str
    split: str | None = None
    arm: str | None = None


Action: TypeAlias = Move | Dispatch | Held | Change | Conversion | Leave


@dataclass(frozen=True, slots=True)
class Progress:
    """The actions decided, in order; none when the customer stays as they were."""

    actions: tuple[Action, ...] = ()

    @property
    def dispatches(self) -> tuple[Dispatch, ...]:
        return tuple(a for a in self.actions if isinstance(a, Dispatch))

    @property
    def changes(self) -> tuple[Change, ...]:
        return tuple(a for a in self.actions if isinstance(a, Change))

    @property
    def timer(self) -> datetime | None:
        """When to call `advance` again if nothing else happens first."""
        last = self.actions[-1] if self.actions else None
        return last.hold.until if isinstance(last, Held) else None

    @property
    def left(self) -> Leave | None:
        last = self.actions[-1] if self.actions else None
        return last if isinstance(last, Leave) else None

    @property
    def steps(self) -> tuple[str, ...]:
        """The steps moved to, in order."""
        return tuple(a.step for a in self.actions if isinstance(a, Move))

    def left_undelivered(self, journey: Journey) -> list[tuple[str, str]]:
        """The sends held for their delivery (`on_not_delivered`) that the customer left
        without it, each with why: a provider must not get their messages after the journey
        went on (the enrollments process withdraws them; a dry run does as it does)."""
        left = []
        for action in self.actions:
            if not isinstance(action, Move) or action.came_from is None:
                continue
            if action.reason == DELIVERED:
                continue
            step = journey.step(action.came_from)
            if isinstance(step, Send) and step.on_not_delivered is not None:
                left.append(
                    (action.came_from, f"{action.reason}: the journey went on to {action.step!r}")
                )
        return left


# --- the interpreter ---------------------------------------------------------------------------


class JourneySpins(DomainError):
    """A journey that goes round steps without ever waiting: one `decode_journey` refuses."""


def dedup_key(traveller: Traveller, taken: int, step: str) -> str:
    """The dedup key of the send at `step`, reached as the enrollment's `taken`-th step."""
    return f"campaign:{traveller.enrollment_id}:{taken}:{step}"


def begin(journey: Journey, traveller: Traveller, facts: Facts) -> Progress:
    """A customer entering at `facts.now`: the first step, and on until held or gone."""
    run = _Run(journey, traveller, facts, Place(journey.start, facts.now))
    run.move(journey.start, None, "entered the journey")
    return run.go_on()


def advance(journey: Journey, traveller: Traveller, place: Place, facts: Facts) -> Progress:
    """A customer at `place`: what the facts change, and on until held again or gone."""
    reached = reach_goal(journey, place.entered_at, facts)
    if reached.actions:
        return reached
    run = _Run(journey, traveller, facts, place)
    if place.hold is None:
        return run.go_on()
    resolved = run.resolve(place.step, place.hold)
    if resolved is None:
        return Progress()
    target, reason = resolved
    if not run.follow(place.step, target, reason):
        return Progress(tuple(run.actions))  # the step it was held at was the journey's last
    return run.go_on()


def reach_goal(journey: Journey, entered_at: datetime, facts: Facts) -> Progress:
    """The end of the journey `facts.signal` makes if it is the goal, wherever the customer is
    and whatever holds them: counted as a conversion within the attribution window from
    `entered_at`. No actions when it is not the goal."""
    if journey.goal is None or not _goal_signal(journey, facts):
        return Progress()
    goal = conversion(journey, entered_at, facts)
    counted: tuple[Action, ...] = () if goal is None else (goal,)
    return Progress((*counted, Leave(f"goal reached: {journey.goal.signal}")))


def sends_held_for_decision(journey: Journey) -> frozenset[str]:
    """The send steps that hold the customer until the rules decide them: a branch of the
    journey asks whether they were suppressed or deferred, which is known only then."""
    return frozenset(
        case.response.step
        for step in journey.steps.values()
        if isinstance(step, Branch)
        for case in step.cases
        if case.response is not None and DECIDED_AT_ONCE.intersection(case.response.is_)
    )


def conversion(journey: Journey, entered_at: datetime, facts: Facts) -> Conversion | None:
    """The conversion `facts.signal` is, if it is the goal and within the attribution window
    from `entered_at`; for a customer still in the journey or one who left it."""
    goal = journey.goal
    signal = facts.signal
    if goal is None or signal is None or not _goal_signal(journey, facts):
        return None
    at = signal.occurred_at or facts.now
    if not entered_at <= at <= entered_at + goal.window:
        return None
    return Conversion(goal.signal, signal.event_id, at)


def _goal_signal(journey: Journey, facts: Facts) -> bool:
    goal, signal = journey.goal, facts.signal
    return (
        goal is not None
        and signal is not None
        and goal.reached(signal.signal, signal.properties, facts.customer, facts.now)
    )


class _Run:
    """One call of the interpreter: the actions so far and where the customer is."""

    def __init__(self, journey: Journey, traveller: Traveller, facts: Facts, place: Place) -> None:
        self.journey = journey
        self.traveller = traveller
        self.facts = facts
        self.step = place.step
        self.taken = place.taken
        self.sends = facts.sends
        self.actions: list[Action] = []
        self.zone = zone_of(facts.time_zone)

    def move(self, step: str, came_from: str | None, reason: str, arm: str | None = None) -> None:
        self.actions.append(Move(step, came_from, reason, arm))
        self.step = step
        self.taken += 1

    def follow(
        self, came_from: str, target: str | None, reason: str, arm: str | None = None
    ) -> bool:
        """Moves to `target`; leaves when there is none. Whether the customer is still in."""
        if target is None:
            self.actions.append(Leave(f"journey completed after {came_from!r}: {reason}"))
            return False
        self.move(target, came_from, reason, arm)
        return True

    def hold(self, hold: Hold, reason: str) -> None:
        self.actions.append(Held(self.step, hold, reason))

    def go_on(self) -> Progress:
        """Takes steps from the current one until the customer is held or leaves."""
        for _ in range(len(self.journey.steps) + 1):
            if not self.take(self.step, self.journey.step(self.step)):
                return Progress(tuple(self.actions))
        raise JourneySpins(f"the journey goes round without waiting, at {self.step!r}")

    def take(self, step_id: str, step: Step) -> bool:
        """Takes one step: whether the customer went on to another step, to be taken next."""
        now = self.facts.now
        if isinstance(step, Send):
            return self.send(step_id, step)
        if isinstance(step, Wait):
            until = step.until_after(now, self.zone)
            why = f"waits {step.for_}" if step.for_ else f"waits until {step.until} local time"
            self.hold(Hold(HoldKind.TIME, until), why)
            return False
        if isinstance(step, WaitForSignal):
            until = now + parse_duration(step.timeout)
            why = f"waits for {step.signal} for at most {step.timeout}"
            self.hold(Hold(HoldKind.SIGNAL, until, step.signal), why)
            return False
        if isinstance(step, Branch):
            target, reason = self.branch(step)
            return self.follow(step_id, target, reason)
        if isinstance(step, Split):
            arm = arm_of(
                step.weights,
                self.traveller.campaign_id,
                self.traveller.version,
                step_id,
                self.traveller.customer_id,
            )
            onward = step.next_of(arm)
            if onward is None:
                held_out = f"held out in the control group of {step_id!r}"
                self.actions.append(Leave(held_out, step_id, arm))
                return False
            return self.follow(step_id, onward, f"drawn into arm {arm!r}", arm)
        if isinstance(step, Update):
            self.actions.append(Change(step_id, dict(step.profile), dict(step.attributes)))
            return self.follow(step_id, step.next, "updated the customer")
        if isinstance(step, Exit):
            self.actions.append(Leave(step.reason))
            return False
        raise AssertionError(f"unknown step {step!r}")  # pragma: no cover

    def send(self, step_id: str, step: Send) -> bool:
        limit = self.journey.policies.send_limit
        if limit is not None and self.sends >= limit:
            return self.follow(
                step_id, step.next, f"not sent: the send limit of {limit} is reached"
            )
        self.actions.append(Dispatch(step_id, step, dedup_key(self.traveller, self.taken, step_id)))
        self.sends += 1
        otherwise = step.on_not_delivered
        if otherwise is not None:
            until = self.facts.now + parse_duration(otherwise.within)
            self.hold(
                Hold(HoldKind.DELIVERY, until), f"waits up to {otherwise.within} for delivery"
            )
            return False
        if step.next is not None and step_id in sends_held_for_decision(self.journey):
            self.hold(Hold(HoldKind.DECISION, self.facts.now), "waits for the rules' decision")
            return False
        return self.follow(step_id, step.next, "send requested")

    def branch(self, step: Branch) -> tuple[str, str]:
        for i, case in enumerate(step.cases):
            why = self.holds(case)
            if why is not None:
                return case.next, f"case {i + 1} holds: {why}"
        return step.else_, "no case holds"

    def holds(self, case: Case) -> str | None:
        """Why the case holds, or None when it does not."""
        facts = self.facts
        if case.condition is not None:
            if case.condition.holds(facts.customer, facts.now):
                return msgspec.json.encode(case.condition).decode()
            return None
        if case.in_segment is not None:
            return f"in segment {case.in_segment!r}" if case.in_segment in facts.segments else None
        if case.response is not None:
            got = facts.responses.get(case.response.step, frozenset())
            found = [str(response) for response in case.response.is_ if response in got]
            return f"the send {case.response.step!r} was {' and '.join(found)}" if found else None
        return None

    def resolve(self, step_id: str, hold: Hold) -> tuple[str | None, str] | None:
        """Where a held customer goes and why; None while still held."""
        step = self.journey.step(step_id)
        facts = self.facts
        due = facts.now >= hold.until
        if isinstance(step, Wait):
            return (step.next, "the wait is over") if due else None
        if isinstance(step, WaitForSignal):
            signal = facts.signal
            if signal is not None and step.matches(signal.signal, signal.properties):
                return step.on_signal, f"{signal.signal} arrived"
            return (step.on_timeout, f"no {step.signal} within {step.timeout}") if due else None
        if isinstance(step, Send) and hold.kind is HoldKind.DECISION:
            decided = sorted(
                str(r) for r in facts.responses.get(step_id, frozenset()) & DECIDED_AT_ONCE
            )
            if decided:
                return step.next, f"send requested: it was {' and '.join(decided)}"
            return (step.next, "send requested") if due else None
        if isinstance(step, Send) and step.on_not_delivered is not None:
            got = facts.responses.get(step_id, frozenset())
            if got & REACHED:
                return step.next, DELIVERED
            otherwise = step.on_not_delivered
            failed = sorted(str(response) for response in got & NOT_DELIVERED)
            if failed:
                return otherwise.next, f"not delivered: {' and '.join(failed)}"
            return (otherwise.next, f"not delivered within {otherwise.within}") if due else None
        raise DomainError(f"step {step_id!r} holds nobody: it is a {step.__struct_config__.tag}")
