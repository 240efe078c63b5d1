"""Takes customers through campaigns: enrols them, advances them, and carries out each step.

Customers enter an active campaign on a recorded signal that matches its trigger entry (type
and property filters), on entering its segment, or through the API (`EnrollCustomer` records
`Enrollment.Entered`, which this process begins). The journey's policies are asked first: the
customer's re-entry (`re_entry_refusal`), then the enrollment cap, whose place an entry takes in
this process's transaction, counted with the API's entries (`EnrollmentIndex.take_place`). A
customer entering on a signal enters when it was recorded, and the journey's first waits run
from then, however late this process handles it.

An enrollment moves on when a signal it waits for arrives, when its goal signal arrives (a
conversion, which ends it; one that left converts too while its goal's window is still open),
when what became of one of its sends is known (the rules suppressed or deferred it, its message
was delivered, opened, failed or was replied to), and when its timer falls due (`due`, run by a
durable scheduler). A delivery fallback's message answers for its send. Its decision and its
`FellBack` commit together, so its statuses follow `FellBack` in the log; only a fallback
decided by an earlier version, which committed them apart, may have been sent and reported on
before its `FellBack`: what it became by then is heard when `FellBack` is read, so the order
they reach the log in does not matter.
Each `Progress` is carried out:
- recorded on the `Enrollment`, an event per action with its reason;
- each `Dispatch` asked of the rules through `RequestMessage`, with the step's dedup key as
  both the rules' dedup key and the idempotency key, so a page or a timer run that is retried
  never sends twice; its decision names the campaign, version, step and enrollment (`origin`);
  a template that fails to render suppresses that send, with the reason; the rules' answer is
  noted at once on an enrollment held at the send (for its decision, or its delivery), which
  then goes on in the same turn, so a branch right after it sees `suppressed` or `deferred`;
- each `Change` applied to the customer;
- `Progress.timer` kept as the enrollment's durable timer.

A paused campaign holds its enrollments (its timers do not fire, and nothing moves them along
the journey) until resumed, but its goal still ends an enrollment, as a conversion: pausing
holds sends and steps, not what the customers do. Archiving exits every enrollment with the
reason, as does a timer whose campaign or version is gone. A journey fault exits that
enrollment with the reason and the others go on.
"""

from __future__ import annotations

import asyncio
from contextlib import nullcontext
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

import structlog

from application.messages.compose import MessageContent
from application.messages.request_message import MessageDecided, SendAsked
from domain.campaign.aggregate import Campaign, CampaignStatus
from domain.campaign.enrollment import Enrollment, PastEntry, cap_reached, re_entry_refusal
from domain.campaign.journey import Branch, OnSchedule, Response
from domain.campaign.local_time import zone_of
from domain.campaign.origin import SendOrigin
from domain.campaign.progress import (
    ArrivedSignal,
    Facts,
    HoldKind,
    Progress,
    advance,
    begin,
    conversion,
    reach_goal,
    sends_held_for_decision,
)
from domain.catalog import class_of, topic_of
from domain.customer.aggregate import Customer
from domain.customer.keywords import INBOUND_SIGNAL
from domain.message.aggregate import Message, MessageStatus
from domain.policy.decision import Effect, Outcome, SendRequest
from domain.segments.aggregate import Membership
from domain.segments.conditions import SegmentFacts
from domain.shared.durations import parse_duration
from domain.shared.errors import DomainError
from domain.signals.aggregate import Signal
from domain.triggers.definition import OnSegmentEntered, OnSignal
from ports.campaign_enrollments import EnrollmentRow, KnownCampaign, SentBy
from ports.delivery import Fallback
from ports.segment_evaluation import SegmentInForce
from ports.unit_of_work import ConcurrencyConflict

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from contextlib import AbstractContextManager
    from datetime import datetime

    from eventsourcing.domain import CanMutateAggregate

    from application.customer.update_profile import UpdateProfile
    from application.delivery.give_up import GiveUpMessage
    from application.messages.request_message import RequestMessage, SendDeciders
    from domain.campaign.journey import Journey
    from domain.campaign.progress import Dispatch
    from domain.policy.decision import FiredRule
    from domain.segments.conditions import Condition
    from ports.campaign_enrollments import CampaignEnrollmentPorts
    from ports.campaign_schedules import ScheduledPorts
    from ports.clock import Clock
    from ports.signal_traces import SignalTraces

__all__ = ["CampaignEnrollments", "origin_of", "sent_by_origin"]


def _events_of(aggregate: type, *kinds: str) -> tuple[type[Any], ...]:
    return tuple(class_of(f"{topic_of(aggregate)}.{kind}") for kind in kinds)


_CAMPAIGN_EVENTS = _events_of(
    Campaign,
    "Created",
    "DraftEdited",
    "VersionPublished",
    "Activated",
    "Paused",
    "Resumed",
    "Archived",
)
_CREATED, _DRAFT_EDITED, _PUBLISHED, _ACTIVATED, _PAUSED, _RESUMED, _ARCHIVED = _CAMPAIGN_EVENTS
(_ENTERED,) = _events_of(Enrollment, "Entered")
_DECISIONS = (Customer.MessageAllowed, Customer.MessageDeferred, Customer.MessageSuppressed)
_MESSAGE_EVENTS = _events_of(
    Message, "Accepted", "StatusReported", "DeliveryFailed", "FellBack", "Expired"
)
_ACCEPTED, _STATUS_REPORTED, _DELIVERY_FAILED, _FELL_BACK, _EXPIRED = _MESSAGE_EVENTS

_RESPONSE_OF_STATUS = {
    MessageStatus.DELIVERED: Response.DELIVERED,
    MessageStatus.READ: Response.OPENED,
    MessageStatus.FAILED: Response.FAILED,
    MessageStatus.BOUNCED: Response.FAILED,
}
# Where a status came from (`StatusChange.source`): Chorus's dispatch, or the provider.
_DISPATCH, _PROVIDER = "dispatch", "webhook"
# A customer who entered and at once went on takes few steps; a loop always waits, so an
# enrollment that keeps answering without waiting is a fault.
_RESPONSE_ROUNDS = 8
# A send held for its decision goes on when its page hears the rules; one whose page did not (a
# retried request's answer says only that it was decided) goes on when the decision's event is
# read, and its timer is a backstop that leaves that event time to come first.
_DECISION_GRACE = timedelta(minutes=1)
_NOW = timedelta(0)
# A broadcast's sends are decided this many to a commit (`RequestMessage.all`).
_SENDS_PER_COMMIT = 1_000
# A broadcast enrols, decides and writes this many customers at a time (two commits of sends).
_BROADCAST_SLICE = 2 * _SENDS_PER_COMMIT


def origin_of(campaign: KnownCampaign, version: int, step: str, enrollment: UUID) -> str:
    """What a campaign send's decision names as its origin: campaign, version, step, enrollment."""
    return str(SendOrigin(campaign.key, version, step, enrollment))


def sent_by_origin(origin: str) -> SentBy | None:
    """The enrollment and step a decision's origin names, if a campaign send made it."""
    send = SendOrigin.parse(origin)
    return None if send is None else SentBy(send.enrollment, send.step)


@dataclass(frozen=True, slots=True)
class _Entries:
    """The active campaigns by what lets customers in."""

    on_signal: dict[str, list[tuple[KnownCampaign, OnSignal]]]
    on_segment: dict[str, list[KnownCampaign]]

    @classmethod
    def of(cls, campaigns: Iterable[KnownCampaign]) -> _Entries:
        on_signal: dict[str, list[tuple[KnownCampaign, OnSignal]]] = {}
        on_segment: dict[str, list[KnownCampaign]] = {}
        for campaign in campaigns:
            if campaign.status is not CampaignStatus.ACTIVE:
                continue
            entry = campaign.entry
            if isinstance(entry, OnSignal):
                on_signal.setdefault(entry.signal, []).append((campaign, entry))
            elif isinstance(entry, OnSegmentEntered):
                on_segment.setdefault(entry.segment, []).append(campaign)
        return cls(on_signal, on_segment)


class _Round:
    """One page or one timer run: what it read and what it has yet to write."""

    def __init__(
        self, ports: CampaignEnrollmentPorts, now: datetime, states: dict[UUID, KnownCampaign]
    ) -> None:
        self.ports = ports
        self.now = now
        self.states = states
        self.entries = _Entries.of(states.values())
        self.campaigns: dict[UUID, Campaign | None] = {}
        self.dirty: dict[UUID, tuple[Enrollment, bool]] = {}  # by id: (enrollment, new)
        self.known_facts: dict[UUID, SegmentFacts] | None = None  # read ahead for a timer run
        self.asked: list[tuple[Enrollment, str, SendAsked]] | None = None  # kept for a broadcast
        self.audiences: dict[tuple[UUID, int], int] = {}
        self.full: set[tuple[UUID, int]] = set()  # campaign versions whose cap is reached
        self.held_for_decision: dict[tuple[UUID, int], frozenset[str]] = {}

    async def cap_refusal(self, campaign_id: UUID, version: int, cap: int | None) -> str | None:
        """Takes a new entry's place under the version's cap; why not, once it is reached.
        Counted in this round's transaction, with the entries made through the API."""
        if cap is None:
            return None
        key = (campaign_id, version)
        if key not in self.full and await self.ports.enrollment_index.take_place(*key, cap):
            return None
        self.full.add(key)
        return cap_reached(cap)

    def state_by_key(self, key: str) -> KnownCampaign | None:
        return next((state for state in self.states.values() if state.key == key), None)

    async def sends_held(self, campaign_id: UUID, version: int) -> frozenset[str]:
        """The send steps of the campaign's version that hold a customer for their decision."""
        key = (campaign_id, version)
        if key not in self.held_for_decision:
            campaign = await self.campaign(campaign_id)
            held = (
                sends_held_for_decision(campaign.journey_of(version))
                if campaign is not None and version in campaign.versions
                else frozenset()
            )
            self.held_for_decision[key] = held
        return self.held_for_decision[key]

    async def audience(self, campaign_id: UUID, version: int) -> int:
        """How many customers the campaign's version reaches: its entries, read once a round.
        A send says it, so the rules can hold a broadcast above a size for approval."""
        key = (campaign_id, version)
        if key not in self.audiences:
            entered = await self.ports.enrollment_index.enrolled(campaign_id, version)
            self.audiences[key] = max(entered, 1)
        return self.audiences[key]

    async def campaign(self, campaign_id: UUID) -> Campaign | None:
        if campaign_id not in self.campaigns:
            found = (await self.ports.streams.load([campaign_id])).get(campaign_id)
            self.campaigns[campaign_id] = found if isinstance(found, Campaign) else None
        return self.campaigns[campaign_id]

    async def enrollments(self, ids: Sequence[UUID]) -> list[Enrollment]:
        found = {i: self.dirty[i][0] for i in ids if i in self.dirty}
        missing = [i for i in ids if i not in found]
        if missing:
            loaded = await self.ports.streams.load(missing)
            found.update((k, v) for k, v in loaded.items() if isinstance(v, Enrollment))
        return [found[i] for i in ids if i in found]

    async def enrollment(self, enrollment_id: UUID) -> Enrollment | None:
        found = await self.enrollments([enrollment_id])
        return found[0] if found else None

    async def goal_until(self, enrollment: Enrollment) -> datetime | None:
        """Until when the enrollment's goal still counts; None without one, or once reached."""
        if enrollment.converted_at is not None:
            return None
        campaign = await self.campaign(enrollment.campaign_id)
        if campaign is None or enrollment.campaign_version not in campaign.versions:
            return None
        goal = campaign.journey_of(enrollment.campaign_version).goal
        return None if goal is None else enrollment.entered_at + goal.window

    def touched(self, enrollment: Enrollment, new: bool = False) -> None:
        was_new = self.dirty.get(enrollment.id, (enrollment, False))[1]
        self.dirty[enrollment.id] = (enrollment, new or was_new)

    async def flush(self) -> None:
        """Appends the enrollments' events and indexes them, with their timers."""
        if not self.dirty:
            return
        ports = self.ports
        rows: list[EnrollmentRow] = []
        timers: list[tuple[UUID, UUID, datetime]] = []
        cleared: list[UUID] = []
        pending = [(e, new, e.collect_events()) for e, new in self.dirty.values()]
        new_ids = [e.id for e, new, _ in pending if new]
        # Entered through the API meanwhile: its own stream says so, and it wins.
        taken = set(await ports.streams.load(new_ids)) if new_ids else set()
        # The place it took under its version's cap is kept: the API entered a newer version,
        # and this one takes no entries any more.
        pending = [p for p in pending if p[0].id not in taken]
        firsts = [events[0] for _, new, events in pending if new]
        if firsts and await ports.events.append_new(firsts) != len(firsts):
            # One entered through the API since the look: this run is taken again.
            raise ConcurrencyConflict("an enrollment was entered elsewhere meanwhile")
        written: list[Any] = [e for _, new, events in pending for e in events[1 if new else 0 :]]
        kept = [enrollment for enrollment, _, _ in pending]
        if written:
            await ports.events.append(written)
        for enrollment in kept:
            rows.append(_row(enrollment, await self.goal_until(enrollment)))
            hold = enrollment.hold
            if enrollment.active and hold is not None:
                due = hold.until + (_DECISION_GRACE if hold.kind is HoldKind.DECISION else _NOW)
                timers.append((enrollment.id, enrollment.campaign_id, due))
            else:
                cleared.append(enrollment.id)
        self.dirty.clear()
        if rows:
            await ports.enrollment_index.save(rows)
        if cleared:
            await ports.campaign_timers.clear(cleared)
        if timers:
            await ports.campaign_timers.set(timers)


def _row(enrollment: Enrollment, goal_until: datetime | None) -> EnrollmentRow:
    return EnrollmentRow(
        enrollment.id,
        enrollment.campaign_id,
        enrollment.campaign_version,
        enrollment.customer_id,
        enrollment.entry,
        enrollment.entered_at,
        enrollment.exited_at,
        enrollment.sends,
        goal_until,
    )


def _conditions(journey: Journey) -> list[Condition]:
    found = [
        case.condition
        for step in journey.steps.values()
        if isinstance(step, Branch)
        for case in step.cases
        if case.condition is not None
    ]
    if journey.goal is not None and journey.goal.condition is not None:
        found.append(journey.goal.condition)
    return found


def _in_force(campaign_id: UUID, version: int, journey: Journey) -> list[SegmentInForce]:
    """The journey's conditions, as the customer facts port reads segments'."""
    return [
        SegmentInForce(campaign_id, f"journey-{i}", version, condition)
        for i, condition in enumerate(_conditions(journey))
    ]


def _asks_segments(journey: Journey) -> bool:
    return any(
        case.in_segment is not None
        for step in journey.steps.values()
        if isinstance(step, Branch)
        for case in step.cases
    )


class CampaignEnrollments:
    """Runs after the read models it reads customers' facts from (`follows`). Not
    rebuildable: what it records are facts."""

    name = "campaign_enrollments"
    handles: tuple[type[Any], ...] = (
        *_CAMPAIGN_EVENTS,
        Signal.Recorded,
        Membership.Entered,
        _ENTERED,
        *_DECISIONS,
        *_MESSAGE_EVENTS,
    )
    follows = ("customer_directory", "signal_activity", "segment_members")
    page_size: int | None = None

    def __init__(
        self,
        clock: Clock,
        request_message: RequestMessage,
        update_profile: UpdateProfile,
        give_up: GiveUpMessage,
        traces: SignalTraces | None = None,
        deciders: SendDeciders | None = None,
    ) -> None:
        self.clock = clock
        self.request_message = request_message
        # A broadcast's sends, decided many at once; by other processes where wired so.
        self.deciders: SendDeciders = deciders or request_message
        self.update_profile = update_profile
        self.give_up = give_up
        self.traces = traces
        self.log = structlog.get_logger("chorus.campaigns")

    # following the log

    async def handle(
        self, events: Sequence[CanMutateAggregate[UUID]], ports: CampaignEnrollmentPorts
    ) -> None:
        states = {c.campaign_id: c for c in await ports.campaign_states.load()}
        work = _Round(ports, self.clock.now(), states)
        signals = [e for e in events if isinstance(e, Signal.Recorded)]
        customers = {e.customer_id for e in signals}
        index = ports.enrollment_index
        enrolled = {row.customer_id for row in await index.active(customers)}
        if signals:
            # A goal reached after leaving still converts, within the goal's window.
            since = min(e.occurred_at for e in signals)
            enrolled |= {row.customer_id for row in await index.open_goals(customers, since)}
        traced = await self._traces_of(events, signals, enrolled, work.entries)
        for event in events:
            if isinstance(event, _CAMPAIGN_EVENTS):
                await self._campaign_changed(work, event)
            elif isinstance(event, Signal.Recorded):
                with self._in_trace_of(event, traced):
                    await self._on_signal(work, event, enrolled)
            elif isinstance(event, Membership.Entered):
                for campaign in work.entries.on_segment.get(event.segment_key, ()):
                    source = f"entered segment {event.segment_key}"
                    if await self._enroll(work, campaign, event.customer_id, source):
                        enrolled.add(event.customer_id)
            elif isinstance(event, _ENTERED):
                await self._entered_elsewhere(work, event.originator_id)
                enrolled.add(event.customer_id)
            elif isinstance(event, _DECISIONS):
                await self._decided(work, event)
            else:
                await self._message_changed(work, event)
            await work.flush()

    async def _on_signal(self, work: _Round, event: Signal.Recorded, enrolled: set[UUID]) -> None:
        if event.customer_id in enrolled:
            await self._signal_arrived(work, event)
        for campaign, on in work.entries.on_signal.get(event.signal_type, ()):
            if all(where.matches(event.properties) for where in on.where):
                source = f"signal {event.signal_type} {event.event_id}"
                # The customer entered when the signal was recorded, as the dry run has it: the
                # journey's timers run from then, however late this page is.
                at = event.timestamp
                if await self._enroll(work, campaign, event.customer_id, source, at=at):
                    enrolled.add(event.customer_id)

    async def _traces_of(
        self,
        events: Sequence[CanMutateAggregate[UUID]],
        signals: Sequence[Signal.Recorded],
        enrolled: set[UUID],
        entries: _Entries,
    ) -> Mapping[UUID, str]:
        """The trace contexts the signals that may enrol or move someone were received in: all
        of the page's when it also changes campaigns or entries (which the signals then meet)."""
        if self.traces is None or not signals:
            return {}
        changing = any(isinstance(e, (*_CAMPAIGN_EVENTS, _ENTERED)) for e in events)
        acting = [
            e.originator_id
            for e in signals
            if changing or e.customer_id in enrolled or e.signal_type in entries.on_signal
        ]
        return await self.traces.received_in(acting) if acting else {}

    def _in_trace_of(
        self, event: Signal.Recorded, traced: Mapping[UUID, str]
    ) -> AbstractContextManager[object]:
        """One signal's work (its entries, what it moves, their sends) in the signal's trace,
        so its sends' outbox rows carry that trace to their dispatch (ADR 0020)."""
        if self.traces is None:
            return nullcontext()
        return self.traces.continued(
            self.name, traced.get(event.originator_id), event.originator_id, event.customer_id
        )

    async def _campaign_changed(self, work: _Round, event: Any) -> None:
        campaign_id: UUID = event.originator_id
        before = work.states.get(campaign_id)
        if isinstance(event, _CREATED):
            after = KnownCampaign(
                campaign_id, event.key, CampaignStatus.DRAFT, 1, event.journey.entry
            )
        elif before is None:
            self.log.warning("campaign event without its creation", campaign=str(campaign_id))
            return
        elif isinstance(event, _DRAFT_EDITED):
            after = replace(before, entry=event.journey.entry)
        elif isinstance(event, _PUBLISHED):
            live = event.timestamp if before.status is CampaignStatus.ACTIVE else None
            after = replace(
                before, version=event.number, entry=event.journey.entry, live_since=live
            )
        elif isinstance(event, _ARCHIVED):
            after = replace(before, status=CampaignStatus.ARCHIVED, archived_reason=event.reason)
        elif isinstance(event, _PAUSED):
            after = replace(before, status=CampaignStatus.PAUSED)
        else:  # activated or resumed: live from then, unless it was already
            since = before.live_since if before.status is CampaignStatus.PAUSED else None
            after = replace(
                before, status=CampaignStatus.ACTIVE, live_since=since or event.timestamp
            )
        work.states[campaign_id] = after
        work.entries = _Entries.of(work.states.values())
        work.campaigns.pop(campaign_id, None)
        await work.ports.campaign_states.save([after])
        if isinstance(event, _ARCHIVED):
            reason = f"the campaign was archived: {event.reason}"
            for enrollment in await self._active_of(work, campaign_id):
                enrollment.exit(reason, work.now)
                work.touched(enrollment)
        elif isinstance(event, _PUBLISHED) and event.migration.moves:
            for enrollment in await self._active_of(work, campaign_id):
                at = enrollment.step
                target = (
                    None if at is None else event.migration.target(enrollment.campaign_version, at)
                )
                if target is None or enrollment.campaign_version >= event.number:
                    continue
                enrollment.migrate(event.number, target, event.by, work.now)
                await self._advance(work, enrollment)

    async def _active_of(self, work: _Round, campaign_id: UUID) -> list[Enrollment]:
        rows = await work.ports.enrollment_index.active(campaign_id=campaign_id)
        return [e for e in await work.enrollments([r.enrollment_id for r in rows]) if e.active]

    async def _signal_arrived(self, work: _Round, event: Signal.Recorded) -> None:
        index = work.ports.enrollment_index
        rows = await index.active([event.customer_id])
        rows += await index.open_goals([event.customer_id], event.occurred_at)
        arrived = ArrivedSignal(
            event.signal_type, event.properties, event.occurred_at, event.event_id
        )
        for enrollment in await work.enrollments([r.enrollment_id for r in rows]):
            if enrollment.entered_at > event.occurred_at:
                continue  # entered on this very signal, or after it happened
            if not enrollment.active:
                await self._converted_after_leaving(work, enrollment, arrived)
                continue
            if event.signal_type == INBOUND_SIGNAL and enrollment.last_send is not None:
                why = f"the customer wrote on {event.properties.get('channel', 'a channel')}"
                if enrollment.note_response(
                    enrollment.last_send, Response.REPLIED, why, None, work.now
                ):
                    work.touched(enrollment)
            await self._advance(work, enrollment, arrived)

    async def _converted_after_leaving(
        self, work: _Round, enrollment: Enrollment, arrived: ArrivedSignal
    ) -> None:
        """The goal, reached after the customer left the journey (the control group leaves at
        once) and within its window from entry, converts the enrollment all the same."""
        if enrollment.converted_at is not None:
            return
        campaign = await work.campaign(enrollment.campaign_id)
        if campaign is None or enrollment.campaign_version not in campaign.versions:
            return
        journey = campaign.journey_of(enrollment.campaign_version)
        try:
            facts = await self._facts(work, enrollment, journey, arrived)
            reached = conversion(journey, enrollment.entered_at, facts)
        except DomainError as error:
            self.log.warning(
                "late goal not checked", enrollment=str(enrollment.id), error=str(error)
            )
            return
        if reached is not None and enrollment.convert(reached, work.now):
            work.touched(enrollment)

    async def _entered_elsewhere(self, work: _Round, enrollment_id: UUID) -> None:
        """An entry recorded outside this process (the API): the journey begins here."""
        if await work.ports.enrollment_index.known([enrollment_id]):
            return
        enrollment = await work.enrollment(enrollment_id)
        if enrollment is None or enrollment.step is not None or not enrollment.active:
            return
        state = work.states.get(enrollment.campaign_id)
        if state is None or state.status is not CampaignStatus.ACTIVE:
            status = "unknown" if state is None else state.status.value
            enrollment.exit(f"the campaign is {status}: it takes no entries", work.now)
            work.touched(enrollment)
            return
        await self._begin(work, state, enrollment)

    async def _decided(self, work: _Round, event: Customer.MessageDecided) -> None:
        sent = sent_by_origin(event.origin)
        if sent is None:
            return
        await work.ports.enrollment_index.note_messages([(event.message_id, sent)])
        heard = _response_to(event.outcome, event.defer_until, event.fired)
        if heard is not None:
            await self._respond(work, sent, *heard, event.message_id)
        elif await self._held_for_decision(work, event.origin):
            # Heard here only when its page did not hear it (a retry of its request): go on.
            enrollment = await work.enrollment(sent.enrollment_id)
            hold = None if enrollment is None else enrollment.hold
            if (
                enrollment is not None
                and hold is not None
                and hold.kind is HoldKind.DECISION
                and enrollment.step == sent.step
            ):
                await self._advance(work, enrollment)

    async def _held_for_decision(self, work: _Round, origin: str) -> bool:
        """Whether the campaign send that `origin` names holds its customer for its decision."""
        send = SendOrigin.parse(origin)
        state = None if send is None else work.state_by_key(send.campaign)
        if send is None or state is None:
            return False
        return send.step in await work.sends_held(state.campaign_id, send.version)

    async def _message_changed(self, work: _Round, event: Any) -> None:
        message_id: UUID = event.originator_id
        sent = (await work.ports.enrollment_index.sent_by([message_id])).get(message_id)
        if sent is None:
            return
        if isinstance(event, _FELL_BACK):
            await self._fell_back(work, sent, event.fallback_message_id)
            return
        if isinstance(event, _DELIVERY_FAILED):
            heard = _response_of(MessageStatus.FAILED, _DISPATCH, event.reason)
        elif isinstance(event, _EXPIRED):
            heard = _response_of(MessageStatus.EXPIRED, _DISPATCH, event.reason)
        else:
            reason = getattr(event, "reason", None)
            heard = _response_of(MessageStatus(event.status), _PROVIDER, reason)
        if heard is not None:
            await self._respond(work, sent, *heard, message_id)

    async def _fell_back(self, work: _Round, sent: SentBy, fallback_id: UUID) -> None:
        """The delivery's own fallback: its message answers for the same send. Its decision
        (origin `fallback`) commits with this `FellBack`, so its statuses come later in the log;
        a fallback decided by an earlier version, which committed them apart, may have been sent
        and reported on before this names the send: what its stream says so far is heard now,
        in the order it was recorded. A status heard here is not heard again when its own event
        is read (`note_response`), nor when a page is taken again."""
        await work.ports.enrollment_index.note_messages([(fallback_id, sent)])
        fallback = (await work.ports.streams.load([fallback_id])).get(fallback_id)
        if not isinstance(fallback, Message):
            return
        for change in fallback.statuses:
            reason = change.reason
            if change.source == _DISPATCH and reason is None:
                reason = fallback.failure
            heard = _response_of(change.status, change.source, reason)
            if heard is not None:
                await self._respond(work, sent, *heard, fallback_id)

    async def _respond(
        self, work: _Round, sent: SentBy, response: Response, why: str, message_id: UUID | None
    ) -> None:
        enrollment = await work.enrollment(sent.enrollment_id)
        if enrollment is None:
            return
        if enrollment.note_response(sent.step, response, why, message_id, work.now):
            work.touched(enrollment)
            if enrollment.active and _moved_by(enrollment, sent.step):
                await self._advance(work, enrollment)

    # entering

    async def _enroll(
        self,
        work: _Round,
        state: KnownCampaign,
        customer_id: UUID,
        source: str,
        known: list[PastEntry] | None = None,
        at: datetime | None = None,
    ) -> bool:
        """Whether the customer entered the campaign; `known` is their past entries, when the
        caller read them ahead; `at` when they entered (the signal's recorded time), now if not
        given."""
        campaign = await work.campaign(state.campaign_id)
        if campaign is None:
            return False
        journey = campaign.journey_of(state.version)
        if known is None:
            index = work.ports.enrollment_index
            past = (await index.past(state.campaign_id, [customer_id])).get(customer_id, [])
        else:
            past = known
        entered_at = work.now if at is None else at
        refusal = re_entry_refusal(journey.policies, past, entered_at)
        if refusal is None:
            cap = journey.policies.enrollment_cap
            refusal = await work.cap_refusal(state.campaign_id, state.version, cap)
        if refusal is not None:
            self.log.debug(
                "entry refused", campaign=state.key, customer=str(customer_id), reason=refusal
            )
            return False
        enrollment = Enrollment.enter(
            state.campaign_id, state.version, customer_id, len(past) + 1, source, entered_at
        )
        work.touched(enrollment, new=True)
        await self._begin(work, state, enrollment)
        return True

    async def _begin(self, work: _Round, state: KnownCampaign, enrollment: Enrollment) -> None:
        campaign = await work.campaign(state.campaign_id)
        try:
            if campaign is None:
                raise DomainError(f"campaign {state.key!r} is gone")
            journey = campaign.journey_of(enrollment.campaign_version)
            facts = await self._facts(work, enrollment, journey)
            # The journey runs from the entry: a wait already over is due at once.
            progress = begin(
                journey, enrollment.traveller, replace(facts, now=enrollment.entered_at)
            )
        except DomainError as error:
            enrollment.exit(f"the journey could not begin: {error}", work.now)
            work.touched(enrollment)
            return
        await self._carry_out(work, state, journey, enrollment, progress)

    # moving on

    async def _advance(
        self, work: _Round, enrollment: Enrollment, signal: ArrivedSignal | None = None
    ) -> None:
        state = work.states.get(enrollment.campaign_id)
        paused = state is not None and state.status is CampaignStatus.PAUSED
        if paused and signal is None:
            return  # held until resumed
        hold = enrollment.hold
        # Pausing holds the steps and sends, not what the customer does; so does a send's
        # decision not heard yet (a retried request's). A signal then only ends the journey if
        # it is the goal, which counts.
        goal_only = paused or (hold is not None and hold.kind is HoldKind.DECISION)
        campaign = await work.campaign(enrollment.campaign_id)
        try:
            if state is None or campaign is None:
                raise DomainError("the campaign is gone")
            if state.status is CampaignStatus.ARCHIVED:
                enrollment.exit(
                    f"the campaign was archived: {state.archived_reason or 'no reason given'}",
                    work.now,
                )
                work.touched(enrollment)
                return
            journey = campaign.journey_of(enrollment.campaign_version)
            if goal_only and signal is not None:
                goal = journey.goal
                if goal is None or signal.signal != goal.signal:
                    return
                facts = await self._facts(work, enrollment, journey, signal)
                progress = reach_goal(journey, enrollment.entered_at, facts)
            else:
                facts = await self._facts(work, enrollment, journey, signal)
                progress = advance(journey, enrollment.traveller, enrollment.place, facts)
        except DomainError as error:
            enrollment.exit(f"stopped: {error}", work.now)
            work.touched(enrollment)
            return
        await self._carry_out(work, state, journey, enrollment, progress)

    async def _carry_out(
        self,
        work: _Round,
        state: KnownCampaign,
        journey: Journey,
        enrollment: Enrollment,
        progress: Progress,
    ) -> None:
        # Each round goes on past a send answered at once: no more of them than it has steps.
        for _ in range(max(_RESPONSE_ROUNDS, len(journey.steps) + 1)):
            if not progress.actions:
                return
            enrollment.record(progress, work.now)
            for step, why in progress.left_undelivered(journey):
                # The journey went on to another send: this one must not go out as well.
                sent = SentBy(enrollment.id, step)
                for message_id in await work.ports.enrollment_index.messages_of(sent):
                    await self.give_up(message_id, why)
            work.touched(enrollment)
            answered = False
            for dispatch in progress.dispatches:
                answered |= await self._send(work, state, enrollment, dispatch)
            for change in progress.changes:
                try:
                    await self.update_profile(
                        enrollment.customer_id, dict(change.profile), dict(change.attributes)
                    )
                except DomainError as error:
                    self.log.warning(
                        "update step not applied",
                        enrollment=str(enrollment.id),
                        step=change.step,
                        error=str(error),
                    )
            if not (answered and enrollment.active and enrollment.hold is not None):
                return
            # The send it is held at was answered at once (the rules' decision, a template that
            # does not render): go on, so what follows sees it.
            facts = await self._facts(work, enrollment, journey)
            try:
                progress = advance(journey, enrollment.traveller, enrollment.place, facts)
            except DomainError as error:
                enrollment.exit(f"stopped: {error}", work.now)
                return
        enrollment.exit("stopped: the journey answers itself without waiting", work.now)

    async def _send(
        self, work: _Round, state: KnownCampaign, enrollment: Enrollment, dispatch: Dispatch
    ) -> bool:
        """Asks the rules; whether the enrollment, held at the send, may go on now that they
        answered (`_heard`). A broadcast's sends are kept, to be asked many at once."""
        send = dispatch.send
        request = SendRequest(
            send.team,
            send.purpose,
            send.channels,
            send.priority,
            dedup_key=dispatch.dedup_key,
            audience=await work.audience(enrollment.campaign_id, enrollment.campaign_version),
        )
        fallback = (
            None
            if send.fallback is None
            else Fallback(
                send.fallback.channels, parse_duration(send.fallback.after).total_seconds()
            )
        )
        content = MessageContent(
            template=send.template,
            campaign=state.key,
            correlation_id=f"{enrollment.id}:{dispatch.step}",
            fallback=fallback,
        )
        origin = origin_of(state, enrollment.campaign_version, dispatch.step, enrollment.id)
        if work.asked is not None:
            asked = SendAsked(enrollment.customer_id, request, dispatch.dedup_key, origin, content)
            work.asked.append((enrollment, dispatch.step, asked))
            return False
        answer: MessageDecided | DomainError
        try:
            answer = await self.request_message(
                enrollment.customer_id,
                request,
                idempotency_key=dispatch.dedup_key,
                origin=origin,
                content=content,
            )
        except DomainError as error:  # the template, the customer: nothing was decided
            answer = error
        return _heard(work, enrollment, dispatch.step, answer)

    async def _facts(
        self,
        work: _Round,
        enrollment: Enrollment,
        journey: Journey,
        signal: ArrivedSignal | None = None,
    ) -> Facts:
        customer = enrollment.customer_id
        ports = work.ports
        if work.known_facts is not None:
            known = work.known_facts.get(customer)
        elif not journey.reads_customer():
            known = None  # nothing in it looks at them
        else:
            conditions = _in_force(enrollment.campaign_id, enrollment.campaign_version, journey)
            found = await ports.customer_facts.facts([customer], conditions, work.now)
            known = found.get(customer)
        facts = known or SegmentFacts()
        segments = (
            (await ports.customer_segments.of([customer])).get(customer, frozenset())
            if _asks_segments(journey)
            else frozenset()
        )
        # The enrollment in hand counts its own sends (those not indexed yet, and those
        # its sends' answers took back); the index counts the customer's other entries.
        sends = (
            await ports.enrollment_index.sends(enrollment.campaign_id, customer, enrollment.id)
            + enrollment.sends
            if journey.policies.send_limit is not None
            else 0
        )
        time_zone = facts.attributes.get("time_zone")
        return Facts(
            work.now,
            facts,
            segments,
            time_zone if isinstance(time_zone, str) else None,
            dict(enrollment.responses),
            sends,
            signal,
        )

    # the timers

    async def due(self, ports: CampaignEnrollmentPorts, limit: int) -> int:
        """Fires up to `limit` due timers; the caller holds the process's turn, so no page runs
        meanwhile, and the claim, the steps and the timers' removal commit together."""
        now = self.clock.now()
        fired = await ports.campaign_timers.claim_due(now, limit)
        if not fired:
            return 0
        states = {c.campaign_id: c for c in await ports.campaign_states.load()}
        work = _Round(ports, now, states)
        await ports.campaign_timers.clear(fired)
        held = [e for e in await work.enrollments(fired) if e.active and e.hold is not None]
        conditions: list[SegmentInForce] = []
        reading: set[tuple[UUID, int]] = set()
        for campaign_id, version in {(e.campaign_id, e.campaign_version) for e in held}:
            campaign = await work.campaign(campaign_id)
            if campaign is not None and version in campaign.versions:
                journey = campaign.journey_of(version)
                conditions += _in_force(campaign_id, version, journey)
                if journey.reads_customer():
                    reading.add((campaign_id, version))
        # Only the customers of journeys that look at them are read; the others' facts are
        # none (`_facts`), which their steps never ask for.
        customers = {e.customer_id for e in held if (e.campaign_id, e.campaign_version) in reading}
        work.known_facts = (
            await ports.customer_facts.facts(customers, conditions, now) if customers else {}
        )
        for enrollment in held:
            work.touched(enrollment)  # its timer is set again if it stays held
            await self._advance(work, enrollment)
        await work.flush()
        return len(fired)

    # the schedules

    async def scheduled(self, ports: ScheduledPorts, limit: int) -> int:
        """Runs up to `limit` due schedules: each member of the segment whose own occurrence (in
        their time zone, unless the schedule names one) came since the last run enters, once
        for that occurrence; the caller holds the process's turn, as for `due`."""
        now = self.clock.now()
        schedules = ports.campaign_schedules
        claimed = await schedules.claim_due(now, limit)
        if not claimed:
            return 0
        states = {c.campaign_id: c for c in await ports.campaign_states.load()}
        for due in claimed:
            work = _Round(ports, now, states)
            state = states.get(due.campaign_id)
            entry = None if state is None else state.entry
            if state is None or not isinstance(entry, OnSchedule):
                await schedules.moved(due.campaign_id, now, None)
                continue
            audience = await schedules.audience(entry.segment)
            occurrences = []
            for member in audience:
                occurrence = entry.next_run(due.checked_until, zone_of(member.time_zone))
                if occurrence is not None and occurrence <= now:
                    occurrences.append((member.customer_id, occurrence))
            fresh = await schedules.entered(state.campaign_id, occurrences)
            await self._broadcast(work, state, [o for o in occurrences if o[0] in fresh])
            zones = {member.time_zone for member in audience} | {None}
            coming = [entry.next_run(now, zone_of(zone)) for zone in zones]
            await schedules.moved(
                state.campaign_id, now, min((c for c in coming if c is not None), default=None)
            )
            await work.flush()
        return len(claimed)

    async def _broadcast(
        self, work: _Round, state: KnownCampaign, occurrences: Sequence[tuple[UUID, datetime]]
    ) -> None:
        """Enrols these customers a slice at a time, each slice's facts and past entries read at
        once, and holds only a slice or two in memory, not the whole audience. The slices go
        through a pipeline: while one slice's sends are decided and committed (on connections
        of their own, by the deciders), the next is enrolled, the one before is heard, and the
        enrollments are written in the schedule's transaction, so the database, the deciders
        and this process work at once."""
        if not occurrences:
            return
        campaign = await work.campaign(state.campaign_id)
        if campaign is None:
            return
        journey = campaign.journey_of(state.version)
        conditions = _in_force(state.campaign_id, state.version, journey)
        reads_customer = journey.reads_customer()
        index = work.ports.enrollment_index
        # What its sends tell the rules of their reach (an approval over a size): the entries
        # before this run, which commits them all at its end, and this run's.
        before = await index.enrolled(state.campaign_id, state.version)
        work.audiences[(state.campaign_id, state.version)] = before + len(occurrences)
        in_flight: list[asyncio.Task[list[MessageDecided | DomainError]]] = []
        decided: list[tuple[Enrollment, str, SendAsked]] = []
        decided_facts: dict[UUID, SegmentFacts] = {}
        try:
            for start in range(0, len(occurrences), _BROADCAST_SLICE):
                chunk = occurrences[start : start + _BROADCAST_SLICE]
                customers = [customer for customer, _ in chunk]
                facts = (
                    await work.ports.customer_facts.facts(customers, conditions, work.now)
                    if reads_customer
                    else {}
                )
                work.known_facts = facts
                past = await index.past(state.campaign_id, customers)
                work.asked = []
                for customer, occurrence in chunk:
                    source = f"schedule {occurrence.isoformat()}"
                    await self._enroll(work, state, customer, source, past.get(customer, []))
                asked, work.asked = work.asked, None
                # Asked at once, before the slice ahead is heard and written: the enrollments
                # commit with the run, and a send decided before them is answered as a retry
                # when the run is taken again, so the deciders never wait for this process.
                in_flight.append(asyncio.create_task(self._decide_all(asked)))
                if len(in_flight) > 1:
                    answers = await in_flight.pop(0)
                    await self._answered(work, decided, answers, decided_facts)
                await work.flush()
                decided, decided_facts = asked, facts
            if in_flight:
                await self._answered(work, decided, await in_flight.pop(0), decided_facts)
        finally:
            work.known_facts = None
            work.asked = None
            for task in in_flight:
                task.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)

    async def _decide_all(
        self, asked: Sequence[tuple[Enrollment, str, SendAsked]]
    ) -> list[MessageDecided | DomainError]:
        """Asks the rules for the sends a broadcast kept, many a commit and two commits at once
        (one decides while the other's rows are written)."""
        chunks = [
            [send for _, _, send in asked[start : start + _SENDS_PER_COMMIT]]
            for start in range(0, len(asked), _SENDS_PER_COMMIT)
        ]
        answers: list[MessageDecided | DomainError] = []
        for first in range(0, len(chunks), 2):
            both = chunks[first : first + 2]
            for found in await asyncio.gather(*(self.deciders.all(c) for c in both)):
                answers += found
        return answers

    async def _answered(
        self,
        work: _Round,
        asked: Sequence[tuple[Enrollment, str, SendAsked]],
        answers: Sequence[MessageDecided | DomainError],
        facts: dict[UUID, SegmentFacts],
    ) -> None:
        """The rules' answers to a slice of a broadcast, heard as `_carry_out` hears one: an
        enrollment held at its send for them goes on, with the facts read for its slice."""
        work.known_facts = facts
        for (enrollment, step, _), answer in zip(asked, answers, strict=True):
            if _heard(work, enrollment, step, answer):
                await self._advance(work, enrollment)


def _heard(
    work: _Round, enrollment: Enrollment, step: str, answer: MessageDecided | DomainError
) -> bool:
    """Notes what the rules' answer says at once of the send at `step`: a send that could not
    be made (its template, its customer) is suppressed; one the rules suppressed or deferred is
    noted so when the enrollment is held at the send (else the decision's event tells it, as a
    retried request's does). Whether the enrollment, held at the send, may go on now."""
    hold = enrollment.hold
    held_here = enrollment.active and hold is not None and enrollment.step == step
    message_id = None
    if isinstance(answer, DomainError):
        heard: tuple[Response, str] | None = (Response.SUPPRESSED, f"not sent: {answer}")
    elif held_here and answer.decision is not None:
        decision = answer.decision
        heard = _response_to(decision.outcome, decision.defer_until, decision.fired)
        message_id = answer.message_id
    else:
        return False
    noted = heard is not None and enrollment.note_response(
        step, heard[0], heard[1], message_id, work.now
    )
    if noted:
        work.touched(enrollment)
    return hold is not None and held_here and (noted or hold.kind is HoldKind.DECISION)


def _response_of(
    status: MessageStatus, source: str, reason: str | None
) -> tuple[Response, str] | None:
    """What a message's status is to the journey, with why, if it says what became of the
    send: recorded by Chorus's dispatch (`source`), or reported by its provider."""
    if status is MessageStatus.EXPIRED:
        return Response.FAILED, f"expired: {reason}"
    if status is MessageStatus.FAILED and source == _DISPATCH:
        return Response.FAILED, f"delivery failed: {reason}"
    found = _RESPONSE_OF_STATUS.get(status)
    if found is None:
        return None
    why = f"the provider reported {status}"
    return found, f"{why}: {reason}" if reason else why


def _moved_by(enrollment: Enrollment, step: str) -> bool:
    """Whether what became of the send at `step` may move the enrollment on: it is held, and
    not for the decision of another send."""
    hold = enrollment.hold
    return hold is not None and (hold.kind is not HoldKind.DECISION or enrollment.step == step)


def _response_to(
    outcome: Outcome, defer_until: datetime | None, fired: Sequence[FiredRule]
) -> tuple[Response, str] | None:
    """What a decision is to the journey, with why, if it says what became of the send: the
    rules suppressed or deferred it."""
    if outcome not in (Outcome.DEFER, Outcome.SUPPRESS):
        return None
    said = [
        rule.reason
        for rule in fired
        if rule.effect in (Effect.SUPPRESSED, Effect.DEFERRED, Effect.BLOCKED_CHANNEL)
    ]
    reasons = "; ".join(said) or str(outcome)
    if outcome is Outcome.DEFER:
        until = defer_until.isoformat() if defer_until else "later"
        return Response.DEFERRED, f"deferred until {until}: {reasons}"
    return Response.SUPPRESSED, f"suppressed: {reasons}"
