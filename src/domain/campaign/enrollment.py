"""The Enrollment aggregate: one customer's one way through one campaign, step by step.

Each entry of a customer into a campaign is a stream (`enrollment_id(campaign, customer,
entry)`), about the customer (`subject_id`). It records what the interpreter (`progress`)
decided, each action an event with its reason: `StepTaken` (which step, from which, and why:
the branch case that held, the arm drawn), `Waiting` (until when, for what), `SendRequested`
(with its dedup key), `UpdateRequested`, `Converted` (the goal, within the attribution window)
and `Exited` (why). `Migrated` moves it to a step of a newer version of the campaign.
`Responded` records what became of a send (the rules suppressed or deferred it, it was
delivered, opened, failed, replied to, or its template failed to render), with the reason: the
interpreter reads these as `Facts.responses`.

`entry_refusal` says whether the journey's policies let a customer in at all: `re_entry_refusal`
from their own past entries, and the enrollment cap from the version's count. Those who record
entries count them where they record them, in the same transaction, so that entries made at
once cannot pass the cap (`cap_reached` is the refusal then).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime  # events carry these types; eventsourcing resolves them at run time
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event
from eventsourcing.utils import get_topic

from domain.campaign.journey import REACHED, Policies, ReEntry, Response
from domain.campaign.progress import (
    Change,
    Conversion,
    Dispatch,
    Held,
    Hold,
    HoldKind,
    Leave,
    Move,
    Place,
    Progress,
    Traveller,
)
from domain.policy.vocabulary import Channel, Purpose
from domain.shared.durations import parse_duration
from domain.shared.errors import DomainError
from domain.shared.topics import StoredAs

__all__ = [
    "Enrollment",
    "EnrollmentEnded",
    "PastEntry",
    "cap_reached",
    "enrollment_id",
    "entry_refusal",
    "re_entry_refusal",
]


def enrollment_id(campaign_id: UUID, customer_id: UUID, entry: int) -> UUID:
    """The stream of a customer's `entry`-th entry (1 first) into a campaign."""
    return uuid5(campaign_id, f"{customer_id}:{entry}")


@dataclass(frozen=True, slots=True)
class PastEntry:
    """An earlier entry of the customer into the campaign: when, and when it ended if it has."""

    entered_at: datetime
    exited_at: datetime | None


def entry_refusal(
    policies: Policies, past: Sequence[PastEntry], enrolled: int, now: datetime
) -> str | None:
    """Why the customer may not enter now, or None if they may; `past` are their earlier
    entries into the campaign, `enrolled` how many customers ever entered this version."""
    refusal = re_entry_refusal(policies, past, now)
    if refusal is not None:
        return refusal
    cap = policies.enrollment_cap
    if cap is not None and enrolled >= cap:
        return cap_reached(cap)
    return None


def cap_reached(cap: int) -> str:
    """Why an entry is refused once the version's `cap` customers have entered it."""
    return f"the enrollment cap of {cap} is reached"


def re_entry_refusal(policies: Policies, past: Sequence[PastEntry], now: datetime) -> str | None:
    """Why the customer may not enter now given their earlier entries (`past`), whatever the
    cap; None if they may."""
    if any(entry.exited_at is None for entry in past):
        return "already in the journey"
    if past and policies.re_entry is ReEntry.ONCE:
        return "entered before, and the journey is entered once"
    if past and policies.re_entry is ReEntry.AFTER_COOL_DOWN and policies.cool_down:
        last = max(entry.exited_at or entry.entered_at for entry in past)
        until = last + parse_duration(policies.cool_down)
        if now < until:
            return f"cooling down until {until.isoformat()} ({policies.cool_down} after leaving)"
    return None


_new = object.__new__


def _topic_of(cls: type) -> str:
    """eventsourcing's name of an aggregate class, as a created event carries it in memory."""
    return get_topic(cls)


class EnrollmentEnded(DomainError):
    """The enrollment has exited: nothing more happens to it but a late conversion."""


class Enrollment(Aggregate):
    """One customer in one campaign, from entry to exit; a step per event, each with its why."""

    stored_as = StoredAs("domain.campaign.enrollment:Enrollment")

    @event("Entered")
    def __init__(
        self,
        id: UUID,
        timestamp: datetime,
        campaign_id: UUID,
        campaign_version: int,
        customer_id: UUID,
        entry: int,
        source: str,
    ) -> None:
        self._began(timestamp, campaign_id, campaign_version, customer_id, entry, source)

    def _began(
        self,
        timestamp: datetime,
        campaign_id: UUID,
        campaign_version: int,
        customer_id: UUID,
        entry: int,
        source: str,
    ) -> None:
        self.campaign_id = campaign_id
        self.campaign_version = campaign_version
        self.customer_id = customer_id
        self.entry = entry
        self.source = source
        self.entered_at = timestamp
        self.step: str | None = None
        self.hold: Hold | None = None
        self.taken = 0
        self.sends = 0
        self.arms: dict[str, str] = {}
        self.responses: dict[str, frozenset[Response]] = {}
        self.last_send: str | None = None
        self.converted_at: datetime | None = None
        self.exited_at: datetime | None = None
        self.exit_reason: str | None = None

    @classmethod
    def enter(
        cls,
        campaign_id: UUID,
        version: int,
        customer_id: UUID,
        entry: int,
        source: str,
        at: datetime,
    ) -> Enrollment:
        """The customer's `entry`-th entry into version `version`; `source` says what let them in
        (a signal's type and id, a segment entry, a schedule, an API call)."""
        enrollment: Enrollment = _new(cls)
        enrollment.__base_init__(enrollment_id(campaign_id, customer_id, entry), 0, at)
        enrollment._began(at, campaign_id, version, customer_id, entry, source)
        enrollment._append(
            "Entered",
            at,
            originator_topic=_topic_of(cls),
            campaign_id=campaign_id,
            campaign_version=version,
            customer_id=customer_id,
            entry=entry,
            source=source,
        )
        return enrollment

    @property
    def subject_id(self) -> UUID:
        """An enrollment's events are about its customer."""
        return self.customer_id

    @property
    def active(self) -> bool:
        return self.exited_at is None

    @property
    def traveller(self) -> Traveller:
        """Who is on the journey, as the interpreter is told."""
        return Traveller(self.campaign_id, self.campaign_version, self.customer_id, self.id)

    @property
    def place(self) -> Place:
        """Where the enrollment is, as `progress.advance` reads it; it must have taken a step."""
        if self.step is None:
            raise DomainError("the enrollment has not begun: use progress.begin")
        return Place(self.step, self.entered_at, self.hold, self.taken)

    # commands

    def record(self, progress: Progress, at: datetime) -> None:
        """Records what the interpreter decided, an event per action, in order."""
        if progress.actions and not self.active:
            raise EnrollmentEnded(f"enrollment {self.id} exited: {self.exit_reason}")
        for action in progress.actions:
            if isinstance(action, Move):
                self._append(
                    "StepTaken",
                    at,
                    step=action.step,
                    came_from=action.came_from,
                    reason=action.reason,
                    arm=action.arm,
                    campaign_id=self.campaign_id,
                    customer_id=self.customer_id,
                )
                self._took(action.step, action.came_from, action.arm)
            elif isinstance(action, Held):
                hold = action.hold
                self._append(
                    "Waiting",
                    at,
                    step=action.step,
                    kind=hold.kind.value,
                    until=hold.until,
                    signal=hold.signal,
                    reason=action.reason,
                )
                self.hold = Hold(hold.kind, hold.until, hold.signal)
            elif isinstance(action, Dispatch):
                send = action.send
                self._append(
                    "SendRequested",
                    at,
                    step=action.step,
                    dedup_key=action.dedup_key,
                    template=send.template,
                    channels=send.channels,
                    purpose=send.purpose,
                    team=send.team,
                    priority=send.priority,
                )
                self._sent(action.step)
            elif isinstance(action, Change):
                self._update_requested(
                    at, action.step, dict(action.profile), dict(action.attributes)
                )
            elif isinstance(action, Conversion):
                self.convert(action, at)
            elif isinstance(action, Leave):
                self._leave(at, action.reason, action.split, action.arm)

    def convert(self, conversion: Conversion, at: datetime) -> bool:
        """The goal, reached within the attribution window (`progress.conversion` says so); also
        after the customer left. False when already converted."""
        if self.converted_at is not None:
            return False
        self._converted(
            at,
            conversion.signal,
            conversion.event_id,
            conversion.at,
            self.campaign_id,
            self.customer_id,
        )
        return True

    def note_response(
        self, step: str, response: Response, reason: str, message_id: UUID | None, at: datetime
    ) -> bool:
        """What became of the send at `step` (its message `message_id`, if one was made), and
        why; also after the customer left, for the record. False when already known."""
        if response in self.responses.get(step, frozenset()):
            return False
        self._append(
            "Responded",
            at,
            step=step,
            response=response.value,
            reason=reason,
            message_id=message_id,
        )
        self._heard(step, response.value)
        return True

    def migrate(self, version: int, step: str, by: str, at: datetime) -> None:
        """Moves to `step` of a newer version; `progress.advance` then takes that step."""
        if not self.active:
            raise EnrollmentEnded(f"enrollment {self.id} exited: {self.exit_reason}")
        if version <= self.campaign_version:
            raise DomainError(f"version {version} is not newer than {self.campaign_version}")
        self._migrated(at, self.campaign_version, version, self.step, step, by)

    def exit(self, reason: str, at: datetime) -> bool:
        """Leaves the journey from outside it (the campaign archived, the customer erased);
        False if already out."""
        if not self.active:
            return False
        self._leave(at, reason, None, None)
        return True

    def _leave(self, at: datetime, reason: str, split: str | None, arm: str | None) -> None:
        self._append(
            "Exited",
            at,
            reason=reason,
            split=split,
            arm=arm,
            campaign_id=self.campaign_id,
            customer_id=self.customer_id,
        )
        self._left(at, reason, split, arm)

    # building events

    def _append(self, kind: str, at: datetime, /, **fields: Any) -> None:
        """Appends the next event of the class `kind` names and moves the version on, as triggering it
        through its `@event` method would; the caller makes the state change (the same method
        that method calls). A broadcast records four events per customer, and eventsourcing's
        decorator (its argument matching per call, the frozen dataclass's setattr per field)
        cost more than the rest of recording them. The `@event` methods apply stored events."""
        event = _new(getattr(type(self), kind))
        values = event.__dict__
        values["originator_id"] = self.id
        values["originator_version"] = version = self.version + 1
        values["timestamp"] = at
        values.update(fields)
        self.version = version
        self.modified_on = at
        self.pending_events.append(event)

    # events: each method body is the state change the event makes

    # StepTaken, Converted and Exited name their campaign and customer since version 2, so they
    # can go out on the bus about their customer (docs/events.md); those stored before do not.

    class StepTaken(Aggregate.Event):
        class_version = 2
        step: str
        came_from: str | None
        reason: str
        arm: str | None
        campaign_id: UUID | None
        customer_id: UUID | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state.update(campaign_id=None, customer_id=None)

    @event(StepTaken)
    def _step_taken(
        self,
        timestamp: datetime,
        step: str,
        came_from: str | None,
        reason: str,
        arm: str | None,
        campaign_id: UUID | None,
        customer_id: UUID | None,
    ) -> None:
        self._took(step, came_from, arm)

    def _took(self, step: str, came_from: str | None, arm: str | None) -> None:
        self.step = step
        self.hold = None
        self.taken += 1
        self.responses.pop(step, None)  # a step taken again answers afresh
        if arm is not None and came_from is not None:
            self.arms[came_from] = arm

    @event("Waiting")
    def _waiting(
        self,
        timestamp: datetime,
        step: str,
        kind: str,  # HoldKind
        until: datetime,
        signal: str | None,
        reason: str,
    ) -> None:
        self.hold = Hold(HoldKind(kind), until, signal)

    @event("SendRequested")
    def _send_requested(
        self,
        timestamp: datetime,
        step: str,
        dedup_key: str,
        template: str,
        channels: tuple[Channel, ...],
        purpose: Purpose,
        team: str,
        priority: int,
    ) -> None:
        self._sent(step)

    def _sent(self, step: str) -> None:
        self.sends += 1
        self.last_send = step

    @event("UpdateRequested")
    def _update_requested(
        self, timestamp: datetime, step: str, profile: dict[str, Any], attributes: dict[str, Any]
    ) -> None:
        pass

    @event("Responded")
    def _responded(
        self,
        timestamp: datetime,
        step: str,
        response: str,  # Response
        reason: str,
        message_id: UUID | None,
    ) -> None:
        self._heard(step, response)

    def _heard(self, step: str, response: str) -> None:
        heard = self.responses.get(step, frozenset())
        if response == Response.SUPPRESSED and not heard & REACHED and self.sends > 0:
            self.sends -= 1  # never made, or the rules held it back: it takes no room
        self.responses[step] = heard | {Response(response)}

    class Converted(Aggregate.Event):
        class_version = 2
        signal: str
        signal_event_id: str | None
        converted_at: datetime
        campaign_id: UUID | None
        customer_id: UUID | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state.update(campaign_id=None, customer_id=None)

    @event(Converted)
    def _converted(
        self,
        timestamp: datetime,
        signal: str,
        signal_event_id: str | None,
        converted_at: datetime,
        campaign_id: UUID | None,
        customer_id: UUID | None,
    ) -> None:
        self.converted_at = converted_at

    @event("Migrated")
    def _migrated(
        self,
        timestamp: datetime,
        from_version: int,
        to_version: int,
        from_step: str | None,
        to_step: str,
        by: str,
    ) -> None:
        self.campaign_version = to_version
        self.step = to_step
        self.hold = None

    class Exited(Aggregate.Event):
        class_version = 2
        reason: str
        split: str | None
        arm: str | None
        campaign_id: UUID | None
        customer_id: UUID | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state.update(campaign_id=None, customer_id=None)

    @event(Exited)
    def _exited(
        self,
        timestamp: datetime,
        reason: str,
        split: str | None,
        arm: str | None,
        campaign_id: UUID | None,
        customer_id: UUID | None,
    ) -> None:
        self._left(timestamp, reason, split, arm)

    def _left(self, at: datetime, reason: str, split: str | None, arm: str | None) -> None:
        if split is not None and arm is not None:
            self.arms[split] = arm
        self.exited_at = at
        self.exit_reason = reason
