"""A campaign's dry run: its journey played over the recorded history of a period, in simulated
time, sending and recording nothing.

Who enters is read from the recorded signals and segment entries of the period (a signal entry
with its property filters, a segment entry), with the journey's re-entry policy and enrollment
cap; schedules and API calls are not replayed (a broadcast's audience and the API's callers
are not facts of the log), and the answer says so. Each entered customer is taken through the
journey by the interpreter (`progress.begin`/`advance`) on an in-memory `Enrollment`, as the
enrollments process does: waits end at their time, a wait for a signal ends on the customer's
next recorded signal of that type, a goal signal converts.

Each send is decided by the rules' engine (`policy.engine.decide`, as the rules' simulate does)
on the customer as they were at that moment (their stream replayed up to it, with the sends the
dry run allowed them before) and the rule set in force then (the rule book replayed up to it).
What became of an allowed send is not in the log: it counts as delivered unless the dry run is
told otherwise, and then it is never heard of (an `on_not_delivered` falls through at its
`within`). Updates change what later conditions see of the customer, not the log.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from application.campaigns.stored import load_campaign
from domain.campaign.aggregate import Campaign, CampaignStatus
from domain.campaign.enrollment import Enrollment, PastEntry, entry_refusal
from domain.campaign.journey import Branch, Response
from domain.campaign.progress import (
    ArrivedSignal,
    Conversion,
    Facts,
    Leave,
    Move,
    Progress,
    Traveller,
    advance,
    begin,
)
from domain.customer.keywords import INBOUND_SIGNAL
from domain.policy.decision import ContactRecord, Effect, Outcome, SendRequest
from domain.policy.defaults import default_rule_set
from domain.policy.engine import decide
from domain.policy.rule_book import RULE_BOOK_ID, RuleBook
from domain.policy.vocabulary import Purpose
from domain.segments.aggregate import Membership
from domain.segments.conditions import SegmentFacts, SignalFact
from domain.shared.errors import DomainError, InvalidValue
from domain.signals.aggregate import Signal
from domain.triggers.definition import OnSegmentEntered, OnSignal

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime
    from uuid import UUID

    from eventsourcing.domain import CanMutateAggregate

    from domain.campaign.journey import Journey
    from domain.campaign.progress import Dispatch
    from domain.customer.aggregate import Customer
    from domain.policy.decision import Decision
    from domain.policy.rules import RuleSet
    from domain.policy.vocabulary import Channel
    from ports.history import History
    from ports.journey_history import Happening, JourneyHistory
    from ports.unit_of_work import UnitsOfWork

__all__ = [
    "MAX_CUSTOMERS",
    "MAX_PERIOD",
    "DryRun",
    "DryRunCampaign",
    "DryRunReport",
    "SendTally",
    "StepTally",
]

MAX_PERIOD = timedelta(days=93)
"""The longest period a dry run plays: a quarter."""
MAX_CUSTOMERS = 10_000
"""The most customers a dry run takes through the journey."""
_RESPONSE_ROUNDS = 8  # as the enrollments process: a journey answering itself is a fault
_PROFILE_FIELDS = ("first_name", "last_name", "locale", "country", "time_zone")
_HOLDING = (Effect.SUPPRESSED, Effect.DEFERRED, Effect.BLOCKED_CHANNEL)


@dataclass(frozen=True, slots=True)
class DryRun:
    """What to play: the period, a journey to try instead of the campaign's (None: its own),
    how many customers at most, and whether allowed sends count as delivered."""

    since: datetime
    until: datetime
    journey: Journey | None = None
    max_customers: int = 1_000
    assume_delivered: bool = True

    def __post_init__(self) -> None:
        if self.since.tzinfo is None or self.until.tzinfo is None:
            raise InvalidValue("from", "a time needs an offset")
        if self.until <= self.since:
            raise InvalidValue("to", "the period ends before it begins")
        if self.until - self.since > MAX_PERIOD:
            raise InvalidValue("to", f"a dry run plays at most {MAX_PERIOD.days} days")
        if not 1 <= self.max_customers <= MAX_CUSTOMERS:
            raise InvalidValue("sample_limit", f"between 1 and {MAX_CUSTOMERS}")


@dataclass
class StepTally:
    """How many enrollments reached a step, and how many were still held there at the end."""

    reached: int = 0
    held: int = 0


@dataclass
class SendTally:
    """What the rules would have decided on a send step, and which rules held sends back."""

    requested: int = 0
    allowed: int = 0
    deferred: int = 0
    suppressed: int = 0
    channels: Counter[str] = field(default_factory=Counter)
    deferred_by: Counter[str] = field(default_factory=Counter)
    suppressed_by: Counter[str] = field(default_factory=Counter)

    def add(self, decision: Decision) -> None:
        self.requested += 1
        held_by = [rule.rule_id for rule in decision.fired if rule.effect in _HOLDING]
        if decision.allows_send:
            self.allowed += 1
            self.channels[str(decision.channel)] += 1
        elif decision.outcome is Outcome.DEFER:
            self.deferred += 1
            self.deferred_by.update(held_by)
        else:
            self.suppressed += 1
            self.suppressed_by.update(held_by)


@dataclass
class DryRunReport:
    """What the journey would have done over the period."""

    campaign: str
    version: int
    tried: bool  # a journey document was tried instead of the campaign's own
    since: datetime
    until: datetime
    entry: str
    replayed: bool
    not_replayed: str | None = None
    customers: int = 0
    sample_full: bool = False  # more customers may have entered than were played
    entered: int = 0
    entered_by: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    steps: dict[str, StepTally] = field(default_factory=dict)
    exits: Counter[str] = field(default_factory=Counter)
    conversions: int = 0
    arms: dict[str, Counter[str]] = field(default_factory=dict)
    sends: dict[str, SendTally] = field(default_factory=dict)
    faults: Counter[str] = field(default_factory=Counter)
    assumptions: list[str] = field(default_factory=list)

    def held(self) -> int:
        return sum(step.held for step in self.steps.values())


def _entry_of(journey: Journey) -> tuple[str, str | None]:
    entry = journey.entry
    if isinstance(entry, OnSignal):
        return f"signal {entry.signal}", None
    if isinstance(entry, OnSegmentEntered):
        return f"entering segment {entry.segment}", None
    kind = entry.__struct_config__.tag
    if kind == "api":
        return "api", "entries through the API are calls, not recorded facts the journey reacts to"
    return str(kind), "a broadcast's audience is not in the log of the period: it is not replayed"


class DryRunCampaign:
    """Plays a campaign's journey over a recorded period; nothing is sent or recorded."""

    def __init__(
        self,
        uows: UnitsOfWork,
        history: History,
        journeys: JourneyHistory,
        default_rules: RuleSet | None = None,
    ) -> None:
        self.uows = uows
        self.history = history
        self.journeys = journeys
        self.default_rules = default_rules or default_rule_set()

    async def __call__(self, ref: str, run: DryRun) -> DryRunReport:
        async with self.uows() as uow:
            campaign = await load_campaign(uow.repository(Campaign), ref)
        journey = run.journey or campaign.journey
        version = campaign.number
        if run.journey is not None and campaign.status is not CampaignStatus.DRAFT:
            version += 1  # what it would be published as: a split draws its arms by version
        entry, not_replayed = _entry_of(journey)
        report = DryRunReport(
            campaign.key,
            version,
            run.journey is not None,
            run.since,
            run.until,
            entry,
            replayed=not_replayed is None,
            not_replayed=not_replayed,
            steps={step: StepTally() for step in journey.steps},
            assumptions=_assumptions(run),
        )
        if not_replayed is not None:
            return report
        on = journey.entry
        customers = await self.journeys.entering(
            run.since,
            run.until,
            [on.signal] if isinstance(on, OnSignal) else [],
            [on.segment] if isinstance(on, OnSegmentEntered) else [],
            run.max_customers + 1,
        )
        report.sample_full = len(customers) > run.max_customers
        customers = customers[: run.max_customers]
        report.customers = len(customers)
        lives: dict[UUID, _Life] = {}
        for customer_id in customers:
            lives[customer_id] = _Life(customer_id, await self.history.stream(customer_id))
        happenings = await self.journeys.lives(customers, run.until)
        for happening in happenings:
            lives[happening.customer_id].happenings.append(happening)
        book = _RuleBookAsOf(await self.history.stream(RULE_BOOK_ID), self.default_rules)
        replay = _Replay(campaign.id, version, journey, run, report, lives, book)
        replay.play(h for h in happenings if h.timestamp >= run.since)
        return report


def _assumptions(run: DryRun) -> list[str]:
    delivered = (
        "an allowed send counts as delivered at once"
        if run.assume_delivered
        else "an allowed send is never heard of again: no delivery, open or reply"
    )
    return [
        delivered,
        "a deferred send counts as deferred, and is not decided again later",
        "timers fire at their time; a signal waited for ends the wait when it was recorded",
        "the customer is as they were at each moment, with the sends this run allowed before",
        "nobody is in the journey when the period begins",
        "templates are not rendered",
        "an update step changes what later conditions see, not the customer",
    ]


class _RuleBookAsOf:
    """The rule set in force at each moment, from the rule book's history."""

    def __init__(self, events: list[CanMutateAggregate[UUID]], default: RuleSet) -> None:
        self.events = events
        self.default = default
        self.book: Any = None
        self.read = 0

    def at(self, when: datetime) -> RuleSet:
        while self.read < len(self.events) and self.events[self.read].timestamp <= when:
            self.book = self.events[self.read].mutate(self.book)
            self.read += 1
        book: RuleBook | None = self.book
        return self.default if book is None else book.current


class _Life:
    """One customer: their stream and happenings, replayed up to the moment the run is at."""

    def __init__(self, customer_id: UUID, stream: list[CanMutateAggregate[UUID]]) -> None:
        self.customer_id = customer_id
        self.stream = stream
        self.happenings: list[Happening] = []
        self.customer: Customer | None = None
        self.folded = 0
        self.seen = 0
        self.signals: dict[str, list[SignalFact]] = {}
        self.last_seen: dict[str, datetime] = {}
        self.segments: set[str] = set()
        self.updated: dict[str, Any] = {}
        self.contacts: list[ContactRecord] = []
        self.enrollments: list[Enrollment] = []

    def at(self, when: datetime) -> None:
        """Replays what was recorded up to `when`."""
        while self.folded < len(self.stream) and self.stream[self.folded].timestamp <= when:
            self.customer = self.stream[self.folded].mutate(self.customer)
            self.folded += 1
        while self.seen < len(self.happenings) and self.happenings[self.seen].timestamp <= when:
            happening = self.happenings[self.seen]
            if isinstance(happening, Signal.Recorded):
                fact = SignalFact(happening.occurred_at, dict(happening.properties))
                self.signals.setdefault(happening.signal_type, []).append(fact)
                last = self.last_seen.get(happening.signal_type, happening.occurred_at)
                self.last_seen[happening.signal_type] = max(last, happening.occurred_at)
            elif isinstance(happening, Membership.Entered):
                self.segments.add(happening.segment_key)
            else:
                self.segments.discard(happening.segment_key)
            self.seen += 1

    @property
    def enrollment(self) -> Enrollment | None:
        last = self.enrollments[-1] if self.enrollments else None
        return last if last is not None and last.active else None

    def facts(self) -> SegmentFacts:
        customer = self.customer
        if customer is None:
            return SegmentFacts(signals=self.signals, last_seen=self.last_seen)
        attributes: dict[str, Any] = dict(customer.attributes)
        for name in _PROFILE_FIELDS:
            value = getattr(customer.profile, name)
            if value is not None:
                attributes[name] = value
        for name, value in self.updated.items():
            if value is None:
                attributes.pop(name, None)
            else:
                attributes[name] = value
        consents: dict[tuple[Channel, Purpose], bool] = {
            key: state.granted for key, state in customer.consents.items()
        }
        for channel, state in customer.opted_out.items():
            if not state.granted:
                consents.update({(channel, purpose): False for purpose in Purpose})
        return SegmentFacts(
            attributes=attributes,
            identity_types=frozenset(i.type for i in customer.identities),
            consents=consents,
            signals=self.signals,
            last_seen=self.last_seen,
        )


class _Replay:
    """The period played in simulated time: happenings in the order recorded, timers between."""

    def __init__(
        self,
        campaign_id: UUID,
        version: int,
        journey: Journey,
        run: DryRun,
        report: DryRunReport,
        lives: dict[UUID, _Life],
        book: _RuleBookAsOf,
    ) -> None:
        self.campaign_id = campaign_id
        self.version = version
        self.journey = journey
        self.run = run
        self.report = report
        self.lives = lives
        self.book = book
        self.timers: list[tuple[datetime, int, UUID]] = []
        self.order = itertools.count()
        self.entered = 0
        self.asks_segments = any(
            case.in_segment is not None
            for step in journey.steps.values()
            if isinstance(step, Branch)
            for case in step.cases
        )

    def play(self, happenings: Iterable[Happening]) -> None:
        """Plays the happenings of the period, in the order they were recorded."""
        for happening in happenings:
            at = happening.timestamp
            self.fire(at)
            life = self.lives[happening.customer_id]
            life.at(at)
            self.happened(life, happening, at)
        self.fire(self.run.until)
        for life in self.lives.values():
            enrollment = life.enrollment
            if enrollment is not None and enrollment.step is not None:
                self.report.steps[enrollment.step].held += 1

    def fire(self, until: datetime) -> None:
        while self.timers and self.timers[0][0] <= until:
            due, _, customer_id = heapq.heappop(self.timers)
            life = self.lives[customer_id]
            enrollment = life.enrollment
            if enrollment is None or enrollment.hold is None or enrollment.hold.until != due:
                continue  # moved on before its timer
            life.at(due)
            self.advance(life, enrollment, due)

    def happened(self, life: _Life, happening: Happening, at: datetime) -> None:
        entry = self.journey.entry
        if isinstance(happening, Signal.Recorded):
            enrollment = life.enrollment
            if enrollment is not None and enrollment.entered_at <= happening.occurred_at:
                if happening.signal_type == INBOUND_SIGNAL and enrollment.last_send is not None:
                    channel = happening.properties.get("channel", "a channel")
                    why = f"the customer wrote on {channel}"
                    enrollment.note_response(enrollment.last_send, Response.REPLIED, why, None, at)
                arrived = ArrivedSignal(
                    happening.signal_type,
                    happening.properties,
                    happening.occurred_at,
                    happening.event_id,
                )
                self.advance(life, enrollment, at, arrived)
            if (
                isinstance(entry, OnSignal)
                and happening.signal_type == entry.signal
                and all(where.matches(happening.properties) for where in entry.where)
            ):
                self.enroll(life, f"signal {entry.signal}", at)
        elif (
            isinstance(happening, Membership.Entered)
            and isinstance(entry, OnSegmentEntered)
            and happening.segment_key == entry.segment
        ):
            self.enroll(life, f"entering segment {entry.segment}", at)

    def enroll(self, life: _Life, source: str, at: datetime) -> None:
        past = [PastEntry(e.entered_at, e.exited_at) for e in life.enrollments]
        refusal = entry_refusal(self.journey.policies, past, self.entered, at)
        if refusal is not None:
            self.report.refused[refusal] += 1
            return
        enrollment = Enrollment.enter(
            self.campaign_id, self.version, life.customer_id, len(past) + 1, source, at
        )
        life.enrollments.append(enrollment)
        self.entered += 1
        self.report.entered += 1
        self.report.entered_by[source] += 1
        try:
            progress = begin(self.journey, _traveller(enrollment), self.facts(life, at))
        except DomainError as error:
            self.fault(enrollment, f"the journey could not begin: {error}", at)
            return
        self.carry_out(life, enrollment, progress, at)

    def advance(
        self,
        life: _Life,
        enrollment: Enrollment,
        at: datetime,
        signal: ArrivedSignal | None = None,
    ) -> None:
        try:
            progress = advance(
                self.journey,
                _traveller(enrollment),
                enrollment.place,
                self.facts(life, at, signal),
            )
        except DomainError as error:
            self.fault(enrollment, f"stopped: {error}", at)
            return
        self.carry_out(life, enrollment, progress, at)

    def carry_out(
        self, life: _Life, enrollment: Enrollment, progress: Progress, at: datetime
    ) -> None:
        for _ in range(_RESPONSE_ROUNDS):
            if not progress.actions:
                return  # still held: its timer stands
            enrollment.record(progress, at)
            self.tally(progress)
            if progress.timer is not None:
                heapq.heappush(self.timers, (progress.timer, next(self.order), life.customer_id))
            answered = False
            for dispatch in progress.dispatches:
                answered |= self.send(life, enrollment, dispatch, at)
            for change in progress.changes:
                life.updated.update(change.profile)
                life.updated.update(change.attributes)
            if not (answered and enrollment.active and enrollment.hold is not None):
                return
            try:
                progress = advance(
                    self.journey, _traveller(enrollment), enrollment.place, self.facts(life, at)
                )
            except DomainError as error:
                self.fault(enrollment, f"stopped: {error}", at)
                return
        self.fault(enrollment, "stopped: the journey answers itself without waiting", at)

    def fault(self, enrollment: Enrollment, reason: str, at: datetime) -> None:
        enrollment.exit(reason, at)
        self.report.faults[reason] += 1
        self.report.exits[reason] += 1

    def tally(self, progress: Progress) -> None:
        report = self.report
        for action in progress.actions:
            if isinstance(action, Move):
                report.steps[action.step].reached += 1
                if action.arm is not None and action.came_from is not None:
                    report.arms.setdefault(action.came_from, Counter())[action.arm] += 1
            elif isinstance(action, Leave):
                report.exits[action.reason] += 1
                if action.split is not None and action.arm is not None:
                    report.arms.setdefault(action.split, Counter())[action.arm] += 1
            elif isinstance(action, Conversion):
                report.conversions += 1

    def send(self, life: _Life, enrollment: Enrollment, dispatch: Dispatch, at: datetime) -> bool:
        """Decides the send as the rules would have; whether its outcome is known at once."""
        send = dispatch.send
        request = SendRequest(
            send.team, send.purpose, send.channels, send.priority, dedup_key=dispatch.dedup_key
        )
        customer = life.customer
        if customer is None:
            reason = "not sent: the customer is not known"
            self.report.sends.setdefault(dispatch.step, SendTally()).suppressed += 1
            return enrollment.note_response(dispatch.step, Response.SUPPRESSED, reason, None, at)
        ledger = [*customer.ledger, *life.contacts]
        decision = decide(request, customer.facts(), ledger, self.book.at(at), at)
        self.report.sends.setdefault(dispatch.step, SendTally()).add(decision)
        if decision.allows_send:
            if decision.channel is not None:
                life.contacts.append(
                    ContactRecord(
                        at,
                        decision.channel,
                        send.purpose,
                        send.team,
                        send.priority,
                        dispatch.dedup_key,
                    )
                )
            if not self.run.assume_delivered:
                return False
            response, why = Response.DELIVERED, "assumed delivered"
        elif decision.outcome is Outcome.DEFER:
            response, why = Response.DEFERRED, "deferred"
        else:
            response, why = Response.SUPPRESSED, "suppressed"
        return enrollment.note_response(dispatch.step, response, why, None, at)

    def facts(self, life: _Life, at: datetime, signal: ArrivedSignal | None = None) -> Facts:
        customer = life.facts()
        time_zone = customer.attributes.get("time_zone")
        enrollment = life.enrollment
        return Facts(
            at,
            customer,
            frozenset(life.segments) if self.asks_segments else frozenset(),
            time_zone if isinstance(time_zone, str) else None,
            dict(enrollment.responses) if enrollment is not None else {},
            sum(e.sends for e in life.enrollments),
            signal,
        )


def _traveller(enrollment: Enrollment) -> Traveller:
    return Traveller(
        enrollment.campaign_id, enrollment.campaign_version, enrollment.customer_id, enrollment.id
    )
