"""A campaign's figures, per step and per variant, folded from its enrollments' events.

Each figure is a counter keyed by campaign, step, variant, figure and detail. The step `""` is
the whole journey; the variant `ALL` counts every enrollment, and a variant `(split, arm)`
counts the enrollments drawn into that arm (the control group is the arm `control`) from the
draw on. An event of an enrollment at a step adds to the counters of every variant it was in
when it first took that step: a step taken before a draw (the split step itself, too) belongs
to no arm of it, so that each arm's figures at a step add up with the step's own (an arm
showing conversions at the split it had not entered would not).

- `entered`: steps taken into the step, and moves into it by a new version's migration (for
  the journey: entries; for a variant: draws). A step anyone entered stays listed.
- `waiting`: enrollments held at the step now (a gauge: +1 when held, -1 when it moves on).
- `sent`: sends the journey requested at the step.
- `suppressed` (detail: the reason), `deferred`, `delivered`, `opened`, `clicked`, `replied`,
  `failed`: what became of those sends, as the enrollment recorded it (`Responded`).
- `converted`: enrollments that reached the goal, counted at the journey and at every step
  they had taken by then.
- `cost` (detail: the currency): what the providers charged for the step's messages (the last
  cost each message reported, its fallback's too).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING
from uuid import UUID

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "ALL",
    "JOURNEY",
    "CounterKey",
    "MessageCost",
    "StatsFold",
    "Trace",
    "Variant",
    "suppression_reason",
]

Variant = tuple[str, str]
"""A split step's id and one of its arm names; `ALL` for every enrollment."""

ALL: Variant = ("", "")
JOURNEY = ""
"""The step of the figures of the whole journey."""

CounterKey = tuple[UUID, str, str, str, str, str]
"""campaign, step, split, arm, figure, detail."""

_RESPONSES = frozenset(
    {"suppressed", "deferred", "delivered", "opened", "clicked", "replied", "failed"}
)
_SUPPRESSED_PREFIX = "suppressed: "


def suppression_reason(reason: str) -> str:
    """The reason a suppression is counted under: the rules' reasons, or why it was not sent."""
    return reason.removeprefix(_SUPPRESSED_PREFIX)


@dataclass(slots=True)
class Trace:
    """What the figures need to know of one enrollment: its campaign, the arms it was drawn
    into, the steps it took, and the step it is held at."""

    campaign_id: UUID
    arms: dict[str, str] = field(default_factory=dict)
    steps: list[str] = field(default_factory=list)
    waiting: str | None = None
    converted: bool = False

    @property
    def variants(self) -> list[Variant]:
        return [ALL, *sorted(self.arms.items())]


def _variants_at(trace: Trace, step: str) -> list[Variant]:
    """The variants a figure of `step` counts in: every enrollment, and each arm drawn before
    the enrollment first took the step (the journey's figures: every arm it was drawn into)."""
    if step == JOURNEY:
        return trace.variants
    steps = trace.steps
    taken_at = steps.index(step) if step in steps else len(steps)
    return [
        ALL,
        *sorted(
            (split, arm)
            for split, arm in trace.arms.items()
            if (steps.index(split) if split in steps else -1) < taken_at
        ),
    ]


@dataclass(slots=True)
class MessageCost:
    """A campaign message: whose send it answers for, and the cost it last reported. A
    fallback answers for no send (None) until its `FellBack` says whose: a provider may report
    its cost before that is recorded, and the cost is kept until then."""

    enrollment_id: UUID | None
    step: str | None
    cost: Decimal | None = None
    currency: str | None = None


@dataclass(slots=True)
class StatsFold:
    """Folds events into counter changes (`changes`), given the traces and messages they touch;
    the caller loads those before and stores them, and adds the changes, after."""

    traces: dict[UUID, Trace]
    messages: dict[UUID, MessageCost]
    changes: defaultdict[CounterKey, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    forgotten: set[UUID] = field(default_factory=set)
    """Fallbacks of messages no campaign sent: their rows go."""

    def _add(self, trace: Trace, step: str, figure: str, by: Decimal, detail: str = "") -> None:
        for split, arm in _variants_at(trace, step):
            self.changes[(trace.campaign_id, step, split, arm, figure, detail)] += by

    def _stop_waiting(self, trace: Trace) -> None:
        if trace.waiting is not None:
            self._add(trace, trace.waiting, "waiting", Decimal(-1))
            trace.waiting = None

    def _draw(self, trace: Trace, split: str | None, arm: str | None) -> None:
        if split is None or arm is None or trace.arms.get(split) == arm:
            return
        trace.arms[split] = arm
        key = (trace.campaign_id, JOURNEY, split, arm, "entered", "")
        self.changes[key] += 1

    def entered(self, enrollment_id: UUID, campaign_id: UUID) -> None:
        """The enrollment began."""
        if enrollment_id in self.traces:
            return
        trace = self.traces[enrollment_id] = Trace(campaign_id)
        self._add(trace, JOURNEY, "entered", Decimal(1))

    def step_taken(
        self, enrollment_id: UUID, step: str, came_from: str | None, arm: str | None
    ) -> None:
        """It took `step`, drawn into `arm` of the split `came_from` if it says so."""
        trace = self.traces.get(enrollment_id)
        if trace is None:
            return
        self._stop_waiting(trace)
        self._draw(trace, came_from, arm)
        if step not in trace.steps:
            trace.steps.append(step)
        self._add(trace, step, "entered", Decimal(1))

    def waiting(self, enrollment_id: UUID, step: str) -> None:
        """It is held at `step`."""
        trace = self.traces.get(enrollment_id)
        if trace is None:
            return
        self._stop_waiting(trace)
        trace.waiting = step
        self._add(trace, step, "waiting", Decimal(1))

    def send_requested(self, enrollment_id: UUID, step: str) -> None:
        """The journey asked for a send at `step`."""
        trace = self.traces.get(enrollment_id)
        if trace is not None:
            self._add(trace, step, "sent", Decimal(1))

    def responded(
        self,
        enrollment_id: UUID,
        step: str,
        response: str,
        reason: str,
        message_id: UUID | None,
    ) -> None:
        """What became of the send at `step`; a suppression counted under its reason."""
        trace = self.traces.get(enrollment_id)
        if trace is None or response not in _RESPONSES:
            return
        detail = suppression_reason(reason) if response == "suppressed" else ""
        self._add(trace, step, response, Decimal(1), detail)
        if message_id is not None:
            self._link(message_id, enrollment_id, step)

    def converted(self, enrollment_id: UUID) -> None:
        """It reached the goal: counted at the journey and at each step it took."""
        trace = self.traces.get(enrollment_id)
        if trace is None or trace.converted:
            return
        trace.converted = True
        for step in (JOURNEY, *trace.steps):
            self._add(trace, step, "converted", Decimal(1))

    def migrated(self, enrollment_id: UUID, to_step: str) -> None:
        """A new version's migration moved it to `to_step`: it leaves the step it was held at
        and enters that one (which it then takes without a `StepTaken`)."""
        trace = self.traces.get(enrollment_id)
        if trace is None:
            return
        self._stop_waiting(trace)
        if to_step not in trace.steps:
            trace.steps.append(to_step)
        self._add(trace, to_step, "entered", Decimal(1))

    def exited(self, enrollment_id: UUID, split: str | None, arm: str | None) -> None:
        """It left the journey; drawn into the control group `arm` of `split`, if so."""
        trace = self.traces.get(enrollment_id)
        if trace is None:
            return
        self._stop_waiting(trace)
        self._draw(trace, split, arm)

    def message_for(self, message_id: UUID, enrollment_id: UUID, step: str) -> None:
        """The message answers for the send at `step` of the enrollment."""
        if enrollment_id in self.traces:
            self._link(message_id, enrollment_id, step)

    def _link(self, message_id: UUID, enrollment_id: UUID, step: str) -> None:
        """Once: a fallback whose cost came first counts it now."""
        found = self.messages.get(message_id)
        if found is None:
            self.messages[message_id] = MessageCost(enrollment_id, step)
        elif found.enrollment_id is None:
            found.enrollment_id, found.step = enrollment_id, step
            trace = self.traces.get(enrollment_id)
            if trace is not None and found.cost is not None:
                self._add(trace, step, "cost", found.cost, found.currency or "")

    def fallback_allowed(self, message_id: UUID) -> None:
        """A fallback was allowed: its costs are kept until its `FellBack` links it."""
        if message_id not in self.messages:
            self.messages[message_id] = MessageCost(None, None)

    def fell_back(self, message_id: UUID, fallback_id: UUID) -> None:
        """The message's fallback answers for the same send; the fallback of a message no
        campaign sent is forgotten."""
        found = self.messages.get(message_id)
        if found is not None and found.enrollment_id is not None and found.step is not None:
            self._link(fallback_id, found.enrollment_id, found.step)
            return
        fallback = self.messages.get(fallback_id)
        if fallback is not None and fallback.enrollment_id is None:
            del self.messages[fallback_id]
            self.forgotten.add(fallback_id)

    def cost(self, message_id: UUID, cost: Decimal | None, currency: str | None) -> None:
        """The message's provider reported what it cost: the last report stands."""
        found = self.messages.get(message_id)
        if found is None or cost is None:
            return
        if found.enrollment_id is None or found.step is None:
            found.cost, found.currency = cost, currency  # counted once it is linked
            return
        trace = self.traces.get(found.enrollment_id)
        if trace is None:
            return
        if found.cost is not None:
            self._add(trace, found.step, "cost", -found.cost, found.currency or "")
        found.cost, found.currency = cost, currency
        self._add(trace, found.step, "cost", cost, currency or "")

    def counted(self) -> Mapping[CounterKey, Decimal]:
        """The changes that are not nothing."""
        return {key: by for key, by in self.changes.items() if by}

    def touched(self) -> Mapping[CounterKey, Decimal]:
        """Every counter the events touched, those they changed by nothing too: a counter
        that comes back to zero within a page is then stored as one that does so over two
        pages is, so the rows a history leaves do not depend on where its pages break."""
        return self.changes
