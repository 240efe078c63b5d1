"""A campaign's dry run: its journey played over the recorded history of a period, in simulated
time, sending and recording nothing.

Who enters is read from the recorded signals and segment entries of the period (a signal entry
with its property filters, a segment entry), with the journey's re-entry policy and enrollment
cap; schedules and API calls are not replayed (a broadcast's audience and the API's callers
are not facts of the log), and the answer says so. Each entered customer is taken through the
journey by the interpreter (`progress.begin`/`advance`) on an in-memory `Enrollment`, as the
enrollments process does: waits end at their time, a wait for a signal ends on the customer's
next recorded signal of that type, a goal signal converts, and so does one after the customer
left the journey while the goal's attribution window from their entry is still open.

History is read as it stood without the campaign's own effects: the decisions its sends were
given (their origin names the campaign; a deferred one decided again keeps its message id) are
taken back out of each customer's contact ledger, so replaying a period the campaign already
ran answers what it would do, not that its own sends were duplicates.

Each send is made as the enrollments process makes it: its template rendered for the customer
as they were (`messages.compose`, the version in force then, off the event loop within the
render budgets, apart from real sends), a template that fails to render suppressing that send
with the reason, and what the content says of WhatsApp approval given to the rules
(`approved_as_sent`). It is then decided by the rules' engine (`policy.engine.decide`, as the
rules' simulate does) on the customer as they were at that moment (their stream replayed up to
it, with the sends the dry run allowed them before) and the rule set in force then (the rule
book replayed up to it). A deferred send is decided again when its deferral ends, as the
scheduler does, unless the journey went on without it first: a send held for its delivery
(`on_not_delivered`) that the customer leaves is withdrawn, as the enrollments process withdraws
it, a deferred one suppressed citing `withdrawn`, so it is never decided again nor counted
against a cap. What became of an allowed send is not in the log: it counts as delivered unless
the dry run is told otherwise, and then it is never heard of (an `on_not_delivered` falls
through at its `within`). Updates change what later conditions and renders see of the customer,
not the log.
"""

from __future__ import annotations

import copy
import heapq
import itertools
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from application.campaigns.stored import load_campaign
from application.messages.compose import MessageContent, approved_as_sent, compose
from domain.campaign.aggregate import Campaign, CampaignStatus
from domain.campaign.enrollment import Enrollment, PastEntry, entry_refusal
from domain.campaign.journey import Branch, Response
from domain.campaign.origin import SendOrigin
from domain.campaign.progress import (
    ArrivedSignal,
    Conversion,
    Facts,
    Leave,
    Move,
    Progress,
    advance,
    begin,
    conversion,
)
from domain.customer.aggregate import Customer
from domain.customer.keywords import INBOUND_SIGNAL
from domain.policy.decision import (
    ContactRecord,
    Decision,
    Effect,
    FiredRule,
    Outcome,
    SendRequest,
)
from domain.policy.defaults import default_rule_set
from domain.policy.engine import decide
from domain.policy.rule_book import RULE_BOOK_ID, RuleBook
from domain.policy.vocabulary import Purpose
from domain.segments.aggregate import Membership
from domain.segments.conditions import SegmentFacts, SignalFact
from domain.shared.durations import parse_duration
from domain.shared.errors import DomainError, InvalidValue
from domain.signals.aggregate import Signal
from domain.triggers.definition import OnSegmentEntered, OnSignal
from ports.delivery import Fallback
from ports.templates import TemplateNotFound

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from datetime import datetime
    from uuid import UUID

    from eventsourcing.domain import CanMutateAggregate

    from domain.campaign.journey import Journey
    from domain.campaign.progress import Dispatch
    from domain.message.content import Content
    from domain.policy.rules import RuleSet
    from domain.policy.vocabulary import Channel
    from domain.templates.aggregate import Template
    from ports.history import History
    from ports.journey_history import Happening, JourneyHistory
    from ports.templates import PublishedTemplates, RenderAsk, RenderedContent, Templates
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
_WITHDRAWN = "withdrawn"  # the rule a deferred send's withdrawal cites, as `GiveUpMessage` does


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
    """What became of the sends of a send step: the rules' decisions (a deferred send decided
    again when its deferral ends counts again, in `redecided` and its new outcome), the rules
    that held sends back, and the sends that could not be made (`not_sent`, by reason: a
    template that did not render, an unknown customer), counted as suppressed."""

    requested: int = 0
    allowed: int = 0
    deferred: int = 0
    suppressed: int = 0
    held: int = 0  # held for an operator's approval: the run does not guess the verdict
    redecided: int = 0
    channels: Counter[str] = field(default_factory=Counter)
    deferred_by: Counter[str] = field(default_factory=Counter)
    suppressed_by: Counter[str] = field(default_factory=Counter)
    held_by: Counter[str] = field(default_factory=Counter)
    not_sent: Counter[str] = field(default_factory=Counter)

    def add(self, decision: Decision, *, again: bool = False) -> None:
        if again:
            self.redecided += 1
        else:
            self.requested += 1
        held_by = [rule.rule_id for rule in decision.fired if rule.effect in _HOLDING]
        if decision.allows_send:
            self.allowed += 1
            self.channels[str(decision.channel)] += 1
        elif decision.outcome is Outcome.DEFER:
            self.deferred += 1
            self.deferred_by.update(held_by)
        elif decision.outcome is Outcome.HOLD:
            self.held += 1
            self.held_by.update(r.rule_id for r in decision.fired if r.effect is Effect.HELD)
        else:
            self.suppressed += 1
            self.suppressed_by.update(held_by)

    def refuse(self, reason: str) -> None:
        self.requested += 1
        self.suppressed += 1
        self.not_sent[reason] += 1


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
        templates: Templates,
        published: PublishedTemplates,
        default_rules: RuleSet | None = None,
    ) -> None:
        self.uows = uows
        self.history = history
        self.journeys = journeys
        self.templates = templates
        self.published = published
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
            stream = await self.history.stream(customer_id)
            lives[customer_id] = _Life(customer_id, stream, campaign.key)
        happenings = await self.journeys.lives(customers, run.until)
        for happening in happenings:
            lives[happening.customer_id].happenings.append(happening)
        book = _RuleBookAsOf(await self.history.stream(RULE_BOOK_ID), self.default_rules)
        content = _ContentAsOf(_RenderedApart(self.templates), self.published)
        replay = _Replay(campaign, version, journey, run, report, lives, book, content)
        await replay.play(h for h in happenings if h.timestamp >= run.since)
        return report


def _assumptions(run: DryRun) -> list[str]:
    delivered = (
        "an allowed send counts as delivered at once"
        if run.assume_delivered
        else "an allowed send is never heard of again: no delivery, open or reply"
    )
    return [
        delivered,
        "a deferred send is decided again when its deferral ends, as the scheduler does, "
        "unless the journey went on without it: then it is withdrawn",
        "a send the rules hold for an operator's approval stays held: no verdict is guessed",
        "timers fire at their time; a signal waited for ends the wait when it was recorded",
        "the customer is as they were at each moment, with the sends this run allowed before",
        "the campaign's own sends are not in the history it replays",
        "nobody is in the journey when the period begins",
        "templates are rendered as the version published at each moment",
        "an update step changes what later conditions and renders see, not the customer",
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


class _RenderedApart:
    """Renders as sends do, within the same budgets and off the event loop, but on the
    previews' thread: a large dry run never queues real sends behind its renders."""

    def __init__(self, templates: Templates) -> None:
        self.templates = templates

    async def render(
        self,
        key: str,
        channel: Channel,
        locale: str | None,
        context: Mapping[str, Any],
        version: int | None = None,
        *,
        preview: bool = False,
    ) -> RenderedContent:
        return await self.templates.render(key, channel, locale, context, version, preview=True)

    async def render_inline(self, content: Content, context: Mapping[str, Any]) -> RenderedContent:
        return await self.templates.render_inline(content, context)

    async def render_all(self, asked: Sequence[RenderAsk]) -> list[RenderedContent | DomainError]:
        """One ask at a time on the previews' thread: a dry run is never in a hurry."""
        answers: list[RenderedContent | DomainError] = []
        for ask in asked:
            try:
                if ask.inline is not None:
                    answers.append(await self.render_inline(ask.inline, ask.context))
                else:
                    assert ask.key is not None
                    answers.append(
                        await self.render(
                            ask.key, ask.channel, ask.locale, ask.context, ask.version
                        )
                    )
            except DomainError as error:
                answers.append(error)
        return answers


class _ContentAsOf:
    """What a send step would have said at a moment: the version of its template published
    by then, rendered for the customer (`messages.compose`, as the enrollments process asks)."""

    def __init__(self, templates: Templates, published: PublishedTemplates) -> None:
        self.templates = templates
        self.published = published
        self.known: dict[str, Template | None] = {}

    async def version_at(self, key: str, at: datetime) -> int:
        if key not in self.known:
            self.known[key] = await self.published.load(key)
        template = self.known[key]
        versions = [] if template is None else template.versions
        in_force = [v.number for v in versions if v.published_at <= at]
        if not in_force:
            raise TemplateNotFound(f"template {key!r} was not published yet")
        return in_force[-1]


class _Life:
    """One customer: their stream and happenings, replayed up to the moment the run is at,
    without the effects of the campaign's own sends."""

    def __init__(
        self, customer_id: UUID, stream: list[CanMutateAggregate[UUID]], campaign: str
    ) -> None:
        self.customer_id = customer_id
        self.stream = stream
        self.campaign = campaign
        self.own_messages: set[UUID] = set()
        self.happenings: list[Happening] = []
        self.customer: Customer | None = None
        self.folded = 0
        self.seen = 0
        self.signals: dict[str, list[SignalFact]] = {}
        self.last_seen: dict[str, datetime] = {}
        self.segments: set[str] = set()
        self.profile_changes: dict[str, Any] = {}
        self.attribute_changes: dict[str, Any] = {}
        self.contacts: list[ContactRecord] = []
        self.enrollments: list[Enrollment] = []

    def at(self, when: datetime) -> None:
        """Replays what was recorded up to `when`."""
        while self.folded < len(self.stream) and self.stream[self.folded].timestamp <= when:
            event = self.stream[self.folded]
            self.customer = event.mutate(self.customer)
            self.folded += 1
            if self._added_own_contact(event) and self.customer is not None:
                # The event is folded (the stream's versions must follow on) and its contact,
                # the last one it added to the ledger, is taken back out.
                self.customer.ledger.pop()
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

    def _added_own_contact(self, event: CanMutateAggregate[UUID]) -> bool:
        """Notes the decisions on the campaign's sends (a deferred send decided again names the
        scheduler as its origin, under the same message id); whether this one, allowed, put a
        contact in the ledger."""
        if not isinstance(event, Customer.MessageDecided):
            return False
        sent = SendOrigin.parse(event.origin)
        if sent is not None and sent.campaign == self.campaign:
            self.own_messages.add(event.message_id)
        if event.message_id not in self.own_messages:
            return False
        return isinstance(event, Customer.MessageAllowed) and event.channel is not None

    @property
    def enrollment(self) -> Enrollment | None:
        last = self.enrollments[-1] if self.enrollments else None
        return last if last is not None and last.active else None

    def update(self, profile: Mapping[str, Any], attributes: Mapping[str, Any]) -> None:
        """An update step: later conditions and renders see it."""
        self.profile_changes.update(profile)
        self.attribute_changes.update(attributes)

    def shown(self) -> Customer | None:
        """The customer as a template sees them then: with the run's updates."""
        customer = self.customer
        if customer is None or not (self.profile_changes or self.attribute_changes):
            return customer
        shown = copy.copy(customer)
        shown.profile = customer.profile.merged_with(self.profile_changes)
        attributes = {**customer.attributes, **self.attribute_changes}
        shown.attributes = {name: value for name, value in attributes.items() if value is not None}
        return shown

    def facts(self) -> SegmentFacts:
        customer = self.customer
        if customer is None:
            return SegmentFacts(signals=self.signals, last_seen=self.last_seen)
        attributes: dict[str, Any] = dict(customer.attributes)
        for name in _PROFILE_FIELDS:
            value = getattr(customer.profile, name)
            if value is not None:
                attributes[name] = value
        for name, value in {**self.profile_changes, **self.attribute_changes}.items():
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


@dataclass(frozen=True, slots=True)
class _Deferral:
    """A send the rules deferred, to be decided again when its deferral ends."""

    enrollment: Enrollment
    step: str
    request: SendRequest


class _Replay:
    """The period played in simulated time: happenings in the order recorded, timers between."""

    def __init__(
        self,
        campaign: Campaign,
        version: int,
        journey: Journey,
        run: DryRun,
        report: DryRunReport,
        lives: dict[UUID, _Life],
        book: _RuleBookAsOf,
        content: _ContentAsOf,
    ) -> None:
        self.campaign = campaign
        self.version = version
        self.journey = journey
        self.run = run
        self.report = report
        self.lives = lives
        self.book = book
        self.content = content
        # Enrollment timers and deferrals' ends, in time order (then the order they were set).
        self.timers: list[tuple[datetime, int, UUID, _Deferral | None]] = []
        # The deferral each enrollment's send step waits on; one withdrawn is no longer here.
        self.deferrals: dict[tuple[UUID, str], _Deferral] = {}
        self.order = itertools.count()
        self.entered = 0
        self.asks_segments = any(
            case.in_segment is not None
            for step in journey.steps.values()
            if isinstance(step, Branch)
            for case in step.cases
        )

    async def play(self, happenings: Iterable[Happening]) -> None:
        """Plays the happenings of the period, in the order they were recorded."""
        for happening in happenings:
            at = happening.timestamp
            await self.fire(at)
            life = self.lives[happening.customer_id]
            life.at(at)
            await self.happened(life, happening, at)
        await self.fire(self.run.until)
        for life in self.lives.values():
            enrollment = life.enrollment
            if enrollment is not None and enrollment.step is not None:
                self.report.steps[enrollment.step].held += 1

    async def fire(self, until: datetime) -> None:
        while self.timers and self.timers[0][0] <= until:
            due, _, customer_id, deferral = heapq.heappop(self.timers)
            life = self.lives[customer_id]
            life.at(due)
            if deferral is not None:
                await self.decide_again(life, deferral, due)
                continue
            enrollment = life.enrollment
            if enrollment is None or enrollment.hold is None or enrollment.hold.until != due:
                continue  # moved on before its timer
            await self.advance(life, enrollment, due)

    async def happened(self, life: _Life, happening: Happening, at: datetime) -> None:
        entry = self.journey.entry
        if isinstance(happening, Signal.Recorded):
            arrived = ArrivedSignal(
                happening.signal_type,
                happening.properties,
                happening.occurred_at,
                happening.event_id,
            )
            self.converted_after_leaving(life, arrived, at)
            enrollment = life.enrollment
            if enrollment is not None and enrollment.entered_at <= happening.occurred_at:
                if happening.signal_type == INBOUND_SIGNAL and enrollment.last_send is not None:
                    channel = happening.properties.get("channel", "a channel")
                    why = f"the customer wrote on {channel}"
                    enrollment.note_response(enrollment.last_send, Response.REPLIED, why, None, at)
                await self.advance(life, enrollment, at, arrived)
            if (
                isinstance(entry, OnSignal)
                and happening.signal_type == entry.signal
                and all(where.matches(happening.properties) for where in entry.where)
            ):
                await self.enroll(life, f"signal {entry.signal}", at)
        elif (
            isinstance(happening, Membership.Entered)
            and isinstance(entry, OnSegmentEntered)
            and happening.segment_key == entry.segment
        ):
            await self.enroll(life, f"entering segment {entry.segment}", at)

    def converted_after_leaving(self, life: _Life, arrived: ArrivedSignal, at: datetime) -> None:
        """The goal, reached after the customer left the journey (the control group leaves at
        once) and within its window from entry, converts that enrollment all the same, as the
        enrollments process counts it."""
        if self.journey.goal is None:
            return
        for enrollment in life.enrollments:
            if enrollment.active or enrollment.converted_at is not None:
                continue
            if arrived.occurred_at is not None and enrollment.entered_at > arrived.occurred_at:
                continue
            try:
                reached = conversion(
                    self.journey, enrollment.entered_at, self.facts(life, at, arrived)
                )
            except DomainError:
                continue  # as the process: a late goal that cannot be checked is not counted
            if reached is not None and enrollment.convert(reached, at):
                self.report.conversions += 1

    async def enroll(self, life: _Life, source: str, at: datetime) -> None:
        past = [PastEntry(e.entered_at, e.exited_at) for e in life.enrollments]
        refusal = entry_refusal(self.journey.policies, past, self.entered, at)
        if refusal is not None:
            self.report.refused[refusal] += 1
            return
        enrollment = Enrollment.enter(
            self.campaign.id, self.version, life.customer_id, len(past) + 1, source, at
        )
        life.enrollments.append(enrollment)
        self.entered += 1
        self.report.entered += 1
        self.report.entered_by[source] += 1
        try:
            progress = begin(self.journey, enrollment.traveller, self.facts(life, at))
        except DomainError as error:
            self.fault(enrollment, f"the journey could not begin: {error}", at)
            return
        await self.carry_out(life, enrollment, progress, at)

    async def advance(
        self,
        life: _Life,
        enrollment: Enrollment,
        at: datetime,
        signal: ArrivedSignal | None = None,
    ) -> None:
        try:
            progress = advance(
                self.journey,
                enrollment.traveller,
                enrollment.place,
                self.facts(life, at, signal),
            )
        except DomainError as error:
            self.fault(enrollment, f"stopped: {error}", at)
            return
        await self.carry_out(life, enrollment, progress, at)

    async def carry_out(
        self, life: _Life, enrollment: Enrollment, progress: Progress, at: datetime
    ) -> None:
        for _ in range(_RESPONSE_ROUNDS):
            if not progress.actions:
                return  # still held: its timer stands
            enrollment.record(progress, at)
            self.tally(progress)
            for step, why in progress.left_undelivered(self.journey):
                self.withdraw(enrollment, step, why, at)
            if progress.timer is not None:
                heapq.heappush(
                    self.timers, (progress.timer, next(self.order), life.customer_id, None)
                )
            answered = False
            for dispatch in progress.dispatches:
                answered |= await self.send(life, enrollment, dispatch, at)
            for change in progress.changes:
                life.update(change.profile, change.attributes)
            if not (answered and enrollment.active and enrollment.hold is not None):
                return
            try:
                progress = advance(
                    self.journey, enrollment.traveller, enrollment.place, self.facts(life, at)
                )
            except DomainError as error:
                self.fault(enrollment, f"stopped: {error}", at)
                return
        self.fault(enrollment, "stopped: the journey answers itself without waiting", at)

    def withdraw(self, enrollment: Enrollment, step: str, why: str, at: datetime) -> None:
        """The journey went on to another send: a deferred send of `step` must not go out as
        well. As the process gives it up, it is suppressed citing `withdrawn` and never
        decided again (an allowed one the dry run does not hold: it was decided already)."""
        deferral = self.deferrals.pop((enrollment.id, step), None)
        if deferral is None:
            return
        fired = (FiredRule(_WITHDRAWN, Effect.SUPPRESSED, why),)
        version = self.book.at(at).version
        decision = Decision(Outcome.SUPPRESS, version, None, None, fired)
        self.report.sends.setdefault(step, SendTally()).add(decision, again=True)
        enrollment.note_response(step, Response.SUPPRESSED, f"suppressed: {why}", None, at)

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

    async def send(
        self, life: _Life, enrollment: Enrollment, dispatch: Dispatch, at: datetime
    ) -> bool:
        """Makes and decides the send as the enrollments process would; whether its outcome
        is known at once."""
        send = dispatch.send
        tally = self.report.sends.setdefault(dispatch.step, SendTally())
        request = SendRequest(
            send.team, send.purpose, send.channels, send.priority, dedup_key=dispatch.dedup_key
        )
        customer = life.shown()
        try:
            if customer is None:
                raise DomainError("the customer is not known")
            fallback = (
                None
                if send.fallback is None
                else Fallback(
                    send.fallback.channels, parse_duration(send.fallback.after).total_seconds()
                )
            )
            content = MessageContent(
                template=send.template,
                version=await self.content.version_at(send.template, at),
                campaign=self.campaign.key,
                correlation_id=f"{enrollment.id}:{dispatch.step}",
                fallback=fallback,
            )
            delivery = await compose(self.content.templates, content, customer, request.channels)
        except DomainError as error:  # as the process: nothing is decided, the send is answered
            reason = f"not sent: {error}"
            tally.refuse(reason)
            return enrollment.note_response(dispatch.step, Response.SUPPRESSED, reason, None, at)
        said = approved_as_sent(request, delivery)
        decision = self.decide(life, said, at)
        tally.add(decision)
        if decision.outcome is Outcome.DEFER and decision.defer_until is not None:
            deferral = _Deferral(enrollment, dispatch.step, said)
            self.deferrals[(enrollment.id, dispatch.step)] = deferral
            entry = (decision.defer_until, next(self.order), life.customer_id, deferral)
            heapq.heappush(self.timers, entry)
        if decision.outcome is Outcome.HOLD:
            return False  # as for real: nothing is heard of it until an operator settles it
        if decision.allows_send:
            if not self.run.assume_delivered:
                return False
            response, why = Response.DELIVERED, "assumed delivered"
        elif decision.outcome is Outcome.DEFER:
            response, why = Response.DEFERRED, "deferred"
        else:
            response, why = Response.SUPPRESSED, "suppressed"
        return enrollment.note_response(dispatch.step, response, why, None, at)

    def decide(self, life: _Life, request: SendRequest, at: datetime) -> Decision:
        """The rules' decision on the customer then, with the contacts this run allowed."""
        customer = life.customer
        assert customer is not None  # a send was made for them
        ledger = [*customer.ledger, *life.contacts]
        decision = decide(request, customer.facts(), ledger, self.book.at(at), at)
        if decision.allows_send and decision.channel is not None:
            life.contacts.append(
                ContactRecord(
                    at,
                    decision.channel,
                    request.purpose,
                    request.team,
                    request.priority,
                    request.dedup_key,
                )
            )
        return decision

    async def decide_again(self, life: _Life, deferral: _Deferral, at: datetime) -> None:
        """A deferral ended: the scheduler decides the send again. Only a send it allows is
        heard of by the enrollment (as its delivery); another deferral waits again. One the
        journey withdrew meanwhile is not decided again."""
        key = (deferral.enrollment.id, deferral.step)
        if self.deferrals.get(key) is not deferral:
            return
        decision = self.decide(life, deferral.request, at)
        self.report.sends.setdefault(deferral.step, SendTally()).add(decision, again=True)
        if decision.outcome is Outcome.DEFER and decision.defer_until is not None:
            entry = (decision.defer_until, next(self.order), life.customer_id, deferral)
            heapq.heappush(self.timers, entry)
        else:
            del self.deferrals[key]
        if not (decision.allows_send and self.run.assume_delivered):
            return
        enrollment = deferral.enrollment
        why = "assumed delivered"
        if enrollment.note_response(deferral.step, Response.DELIVERED, why, None, at) and (
            enrollment.active and enrollment.hold is not None
        ):
            await self.advance(life, enrollment, at)

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
