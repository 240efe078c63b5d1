"""A campaign's journey: how customers enter, the steps they take, its goal and its policies.

A journey is a JSON document, read and checked whole by `journey_reader.decode_journey`, which
names the JSON path of every fault. This one follows up an order: a day later a WhatsApp message,
an SMS if it is not delivered within 10 minutes; a reply ends the journey; a purchase within 7
days is a conversion and ends it wherever the customer is.

```json
{
  "entry": {"type": "signal", "signal": "order.placed",
            "where": [{"property": "total", "op": "gte", "value": 50}]},
  "start": "a-day-later",
  "steps": {
    "a-day-later": {"type": "wait", "for": "1d", "next": "whatsapp"},
    "whatsapp": {"type": "send", "channels": ["whatsapp"], "template": "order-follow-up",
                 "purpose": "marketing", "team": "growth", "next": "reply",
                 "on_not_delivered": {"within": "10m", "next": "sms"}},
    "sms": {"type": "send", "channels": ["sms"], "template": "order-follow-up",
            "purpose": "marketing", "team": "growth", "next": "reply"},
    "reply": {"type": "wait_for_signal", "signal": "message.replied", "timeout": "3d",
              "on_signal": "done", "on_timeout": "offer"},
    "offer": {"type": "split", "arms": [{"name": "ten-off", "weight": 45, "next": "coupon"},
                                        {"name": "free-ship", "weight": 45, "next": "shipping"}],
              "control": {"weight": 10}},
    "coupon": {"type": "send", "channels": ["email"], "template": "ten-off",
               "purpose": "marketing", "team": "growth"},
    "shipping": {"type": "send", "channels": ["email", "sms"], "template": "free-shipping",
                 "purpose": "marketing", "team": "growth"},
    "done": {"type": "exit", "reason": "replied"}
  },
  "goal": {"signal": "purchase", "within": "7d"},
  "policies": {"re_entry": "after_cool_down", "cool_down": "30d", "send_limit": 3}
}
```

**Entry** (`entry`, by `type`): `signal` (a signal type and property filters, as triggers have),
`segment_entered` (a segment key), `schedule` (a broadcast to a segment: once `at` an instant,
once `on` a date at a `time` of day, or `every` day or week (on `days`) at a `time`; a time of
day is in each customer's own zone unless `time_zone` names one for everybody), `api`.

**Steps** (`steps`, by id; the journey begins at `start`; a step without `next` ends it):
- `send`: `channels` in order of preference (the rules pick the first they allow), `template`,
  `purpose`, `team`, `priority`; `fallback` hands the delivery a channel list to fall back to if
  not delivered `after` a while; `on_not_delivered` holds the customer at the send until it is
  delivered, and goes to its `next` if it fails, is suppressed or is not delivered `within`.
- `wait`: `for` a duration, or `until` a local time of day (on `days`, if given).
- `wait_for_signal`: a `signal` with filters (`where`), `timeout`; `on_signal` or `on_timeout`.
- `branch`: `cases` tried in order, each a `condition` (the segments' condition language), an
  `in_segment` key, or the `response` to an earlier send step (delivered, opened, clicked,
  replied, failed, suppressed, deferred); `else` when none holds.
- `split`: `arms` with whole-number weights and an optional `control` group held out (with no
  `next`, the control group leaves the journey at once, its conversions still counted).
- `update`: `profile` fields and `attributes` (null removes one).
- `exit`: ends the journey, with a `reason`.

**Goal**: a `signal` (with `where` filters and an optional `condition` on the customer), counted
as a conversion `within` the attribution window from entry; it ends the journey.

**Policies**: `re_entry` (`once`, `after_cool_down` with `cool_down`, `always`),
`enrollment_cap` (customers who may ever enter this version), `send_limit` (sends one customer
may get from the campaign, over all their entries; a send never made or suppressed takes no
room; further sends are skipped, the journey goes on).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, TypeAlias
from zoneinfo import ZoneInfo

import msgspec

from domain.campaign.local_time import (
    ALL_DAYS,
    DAY_NAMES,
    at_local,
    next_local_time,
    parse_time_of_day,
)
from domain.policy.vocabulary import Channel, Purpose
from domain.segments.conditions import Condition, PropertyFilter, SegmentFacts, SignalType
from domain.shared.documents import Tagged
from domain.shared.durations import DurationText, parse_duration
from domain.triggers.definition import OnSegmentEntered, OnSignal

__all__ = [
    "CONTROL",
    "NOT_DELIVERED",
    "REACHED",
    "STEP_ID_PATTERN",
    "WAITING_STEPS",
    "Arm",
    "Branch",
    "Case",
    "Control",
    "Entry",
    "Every",
    "Exit",
    "Fallback",
    "Goal",
    "Journey",
    "NotDelivered",
    "OnApi",
    "OnSchedule",
    "Policies",
    "ReEntry",
    "Response",
    "ResponseIs",
    "Send",
    "Split",
    "Step",
    "StepRef",
    "Update",
    "Wait",
    "WaitForSignal",
]

STEP_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
"""Step and arm names: lower-case letters, digits, `_` and `-`; at most 64."""

StepRef = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
ArmName = Annotated[str, msgspec.Meta(pattern=STEP_ID_PATTERN)]
Key = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
TeamName = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Duration = Annotated[DurationText, msgspec.Meta(examples=["10m", "1d", "7d"])]
TimeOfDay = Annotated[str, msgspec.Meta(min_length=1, max_length=5, examples=["09:00"])]
DayName = Annotated[str, msgspec.Meta(min_length=1, max_length=3, examples=["mon"])]
Filters = Annotated[tuple[PropertyFilter, ...], msgspec.Meta(max_length=20)]


class _Part(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True
):
    """A part of a journey document: a value, strict about its fields."""


# --- entry -------------------------------------------------------------------------------------


class Every(StrEnum):
    """How often a recurring broadcast comes round."""

    DAY = "day"
    WEEK = "week"


class OnSchedule(Tagged, tag="schedule", frozen=True, kw_only=True):
    """A broadcast to a segment: once `at` an instant, once `on` a date at `time`, or `every`
    day or week (on `days`) at `time`, between `from` and `until`. A `time` is each customer's
    wall clock unless `time_zone` names one zone for everybody."""

    segment: Key
    at: datetime | None = None
    on: date | None = None
    every: Every | None = None
    days: tuple[DayName, ...] = ()
    time: TimeOfDay | None = None
    time_zone: str | None = None
    from_: date | None = msgspec.field(default=None, name="from")
    until: date | None = None

    def next_run(self, after: datetime, zone: ZoneInfo) -> datetime | None:
        """When the broadcast next reaches a customer whose zone is `zone`, strictly after
        `after`; None when it will not come round again. The document must be checked."""
        if self.at is not None:
            return self.at if self.at > after else None
        if self.time is None:
            return None
        at = parse_time_of_day(self.time)
        if self.time_zone is not None:
            zone = ZoneInfo(self.time_zone)
        if self.on is not None:
            moment = at_local(self.on, at, zone)
            return moment if moment > after else None
        if self.from_ is not None:
            after = max(after, at_local(self.from_, at, zone) - timedelta(microseconds=1))
        days = (
            frozenset(DAY_NAMES.index(day) for day in self.days)
            if self.every is Every.WEEK and self.days
            else ALL_DAYS
        )
        moment = next_local_time(after, at, zone, days)
        if self.until is not None and moment.astimezone(zone).date() > self.until:
            return None
        return moment


class OnApi(Tagged, tag="api", frozen=True, kw_only=True):
    """Customers enter when a client enrolls them through the API."""


Entry: TypeAlias = OnSignal | OnSegmentEntered | OnSchedule | OnApi
"""How customers enter: a signal with filters, entering a segment, a schedule, the API."""


# --- steps -------------------------------------------------------------------------------------


class Response(StrEnum):
    """What became of a send, as a branch can ask about it."""

    DELIVERED = "delivered"
    OPENED = "opened"
    CLICKED = "clicked"
    REPLIED = "replied"
    FAILED = "failed"
    SUPPRESSED = "suppressed"
    DEFERRED = "deferred"


REACHED = frozenset({Response.DELIVERED, Response.OPENED, Response.CLICKED, Response.REPLIED})
"""The responses that say the message reached the customer."""
NOT_DELIVERED = frozenset({Response.FAILED, Response.SUPPRESSED})
"""The responses that say it never will."""


class _Step(Tagged, frozen=True, kw_only=True):
    """What every step can answer."""

    @property
    def exits(self) -> tuple[tuple[str, str], ...]:
        """Where the step can lead: (the field naming it, relative to the step; the step id)."""
        following: str | None = getattr(self, "next", None)
        return () if following is None else (("next", following),)

    @property
    def waits(self) -> bool:
        """Whether time always passes at the step, so a loop through it cannot spin."""
        return False


class Fallback(_Part, frozen=True, kw_only=True):
    """Channels the delivery falls back to when the message is not delivered `after` a while."""

    channels: tuple[Channel, ...]
    after: Duration


class NotDelivered(_Part, frozen=True, kw_only=True):
    """Hold at the send until delivered; go `next` if it fails or is not delivered `within`."""

    within: Duration
    next: StepRef


class Send(_Step, tag="send", frozen=True, kw_only=True):
    """Asks the rules to send a template to the customer on the first channel they allow."""

    channels: tuple[Channel, ...] = ()
    template: Key
    purpose: Purpose
    team: TeamName
    priority: int = 0
    next: StepRef | None = None
    fallback: Fallback | None = None
    on_not_delivered: NotDelivered | None = None

    @property
    def exits(self) -> tuple[tuple[str, str], ...]:
        otherwise = self.on_not_delivered
        extra = () if otherwise is None else (("on_not_delivered.next", otherwise.next),)
        return super().exits + extra


class Wait(_Step, tag="wait", frozen=True, kw_only=True):
    """Holds the customer `for` a duration, or `until` a time of day on their wall clock."""

    for_: Duration | None = msgspec.field(default=None, name="for")
    until: TimeOfDay | None = None
    days: tuple[DayName, ...] = ()
    next: StepRef | None = None

    @property
    def waits(self) -> bool:
        return True

    def until_after(self, now: datetime, zone: ZoneInfo) -> datetime:
        """When a customer who arrives at `now`, in `zone`, goes on. The step must be checked."""
        if self.for_ is not None:
            return now + parse_duration(self.for_)
        days = frozenset(DAY_NAMES.index(day) for day in self.days) if self.days else ALL_DAYS
        return next_local_time(now, parse_time_of_day(self.until or ""), zone, days)


class WaitForSignal(_Step, tag="wait_for_signal", frozen=True, kw_only=True):
    """Holds the customer until a matching signal (`on_signal`) or the `timeout` (`on_timeout`)."""

    signal: SignalType
    where: Filters = ()
    timeout: Duration
    on_signal: StepRef
    on_timeout: StepRef

    @property
    def exits(self) -> tuple[tuple[str, str], ...]:
        return (("on_signal", self.on_signal), ("on_timeout", self.on_timeout))

    @property
    def waits(self) -> bool:
        return True

    def matches(self, signal: str, properties: Mapping[str, Any]) -> bool:
        """Whether a signal of that type and properties is the one awaited."""
        return signal == self.signal and all(where.matches(properties) for where in self.where)


class ResponseIs(_Part, frozen=True, kw_only=True):
    """Holds when the send `step` got any of the responses in `is`."""

    step: StepRef
    is_: tuple[Response, ...] = msgspec.field(name="is")


class Case(_Part, frozen=True, kw_only=True):
    """One way out of a branch: exactly one of `condition`, `in_segment` or `response`."""

    condition: Condition | None = None
    in_segment: Key | None = None
    response: ResponseIs | None = None
    next: StepRef


class Branch(_Step, tag="branch", frozen=True, kw_only=True):
    """Goes to the first case that holds, else to `else`."""

    cases: tuple[Case, ...] = ()
    else_: StepRef = msgspec.field(name="else")

    @property
    def exits(self) -> tuple[tuple[str, str], ...]:
        cases = tuple((f"cases[{i}].next", case.next) for i, case in enumerate(self.cases))
        return (*cases, ("else", self.else_))


class Arm(_Part, frozen=True, kw_only=True):
    """A variant of a split: its share of customers (`weight`) and where they go."""

    name: ArmName
    weight: int
    next: StepRef


class Control(_Part, frozen=True, kw_only=True):
    """The hold-out group: its share; with no `next`, its customers leave the journey at once."""

    weight: int
    next: StepRef | None = None


CONTROL = "control"
"""The arm name of the control group."""


class Split(_Step, tag="split", frozen=True, kw_only=True):
    """Sends each customer down one arm, by weight, the same one for the same campaign version."""

    arms: tuple[Arm, ...] = ()
    control: Control | None = None

    @property
    def exits(self) -> tuple[tuple[str, str], ...]:
        arms = tuple((f"arms[{i}].next", arm.next) for i, arm in enumerate(self.arms))
        control = self.control
        held = () if control is None or control.next is None else (("control.next", control.next),)
        return arms + held

    @property
    def weights(self) -> tuple[tuple[str, int], ...]:
        """Each arm's name and weight, the control group last."""
        arms = tuple((arm.name, arm.weight) for arm in self.arms)
        return arms if self.control is None else (*arms, (CONTROL, self.control.weight))

    def next_of(self, arm: str) -> str | None:
        """Where customers of `arm` go; None for a control group that leaves."""
        for candidate in self.arms:
            if candidate.name == arm:
                return candidate.next
        return None if self.control is None else self.control.next


class Update(_Step, tag="update", frozen=True, kw_only=True):
    """Changes the customer's profile fields and custom attributes (null removes one)."""

    profile: dict[str, str | None] = msgspec.field(default_factory=dict)
    attributes: dict[str, str | int | float | bool | None] = msgspec.field(default_factory=dict)
    next: StepRef | None = None


class Exit(_Step, tag="exit", frozen=True, kw_only=True):
    """Ends the journey, with the reason given."""

    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] = "exit step"


Step: TypeAlias = Send | Wait | WaitForSignal | Branch | Split | Update | Exit
"""Any step; read by its `type`."""

WAITING_STEPS = (Wait, WaitForSignal)
"""The steps at which time always passes."""


# --- goal and policies -------------------------------------------------------------------------


class Goal(_Part, frozen=True, kw_only=True):
    """A conversion: a matching signal `within` the attribution window from entry."""

    signal: SignalType
    where: Filters = ()
    condition: Condition | None = None
    within: Duration

    @property
    def window(self) -> timedelta:
        """`within` as a span of time."""
        return parse_duration(self.within)

    def reached(
        self, signal: str, properties: Mapping[str, Any], customer: SegmentFacts, now: datetime
    ) -> bool:
        """Whether a signal of that type and properties, for this customer, is the goal."""
        return (
            signal == self.signal
            and all(where.matches(properties) for where in self.where)
            and (self.condition is None or self.condition.holds(customer, now))
        )


class ReEntry(StrEnum):
    """Whether a customer who was in the journey may enter it again."""

    ONCE = "once"
    AFTER_COOL_DOWN = "after_cool_down"
    ALWAYS = "always"


class Policies(_Part, frozen=True, kw_only=True):
    """Re-entry, how many customers may enter, and how many sends one customer may get."""

    re_entry: ReEntry = ReEntry.ONCE
    cool_down: Duration | None = None
    enrollment_cap: Annotated[int, msgspec.Meta(ge=1)] | None = None
    send_limit: Annotated[int, msgspec.Meta(ge=0)] | None = None


# --- the journey -------------------------------------------------------------------------------


class Journey(_Part, frozen=True, kw_only=True):
    """A whole journey document. Read it with `journey_reader.decode_journey`, which checks it."""

    entry: Entry
    start: StepRef
    steps: dict[str, Step]
    goal: Goal | None = None
    policies: Policies = Policies()

    def step(self, step_id: str) -> Step:
        """The step with that id."""
        return self.steps[step_id]

    def teams(self) -> frozenset[str]:
        """The teams its send steps send as."""
        return frozenset(step.team for step in self.steps.values() if isinstance(step, Send))

    def reads_customer(self) -> bool:
        """Whether taking it looks at what is known of the customer: a condition (a branch's
        case's, the goal's) or a wait until a time of day on their wall clock (their time
        zone). One that does not is taken without reading them: a broadcast of a send alone
        reads no customer's facts for its 100,000 entries."""
        if self.goal is not None and self.goal.condition is not None:
            return True
        for step in self.steps.values():
            if isinstance(step, Wait) and step.until is not None:
                return True
            if isinstance(step, Branch) and any(c.condition is not None for c in step.cases):
                return True
        return False
