"""The campaign enrollments process takes customers through journeys, on the in-memory ports:
entries, waits and their timers, signals waited for, goals, sends through the rules and what
became of them, pause, resume and archive."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from adapters.inmemory.campaign_enrollments import InMemoryEnrollmentCounts
from adapters.inmemory.campaign_stats import InMemoryCampaignStats
from adapters.inmemory.campaigns import InMemoryCampaigns
from adapters.inmemory.processes import InMemoryProcessPorts, InMemoryProcessRunner
from adapters.templates.jinja import JinjaRenderer
from application.customer.update_profile import UpdateProfile
from application.delivery.give_up import GiveUpMessage
from application.enrollments.enroll_customer import EnrollCustomer, EnrollmentRefused
from application.processes.campaign_enrollments import (
    CampaignEnrollments,
    sent_by_origin,
)
from application.processes.segment_evaluator import SegmentEvaluator
from application.queries.campaign_stats import CampaignStatsQueries
from application.segments.define_segment import DefineSegment, SegmentDraft
from application.templates.publish_template import PublishTemplate, TemplateDraft
from domain.campaign.aggregate import Campaign, CampaignStatus, Migration, StepMove
from domain.campaign.enrollment import Enrollment, enrollment_id
from domain.campaign.journey import CONTROL
from domain.customer.aggregate import Customer
from domain.customer.contact import ConsentRecord
from domain.message.aggregate import Message, MessageStatus
from domain.policy.vocabulary import Channel, Purpose
from domain.segments.conditions import decode_condition
from domain.templates.aggregate import Variant
from tests.unit.domain.campaign.journeys import journey, read, send
from tests.unit.in_memory_chorus import InMemoryChorus, claim, report

if TYPE_CHECKING:
    from uuid import UUID

    from domain.customer.identities import IdentityClaim

ANA = claim("email", "ana@example.org")
ANA_PHONE = claim("phone", "+351912345678")
BO = claim("email", "bo@example.org")
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)

ORDER_ENTRY = {
    "type": "signal",
    "signal": "order.placed",
    "where": [{"property": "total", "op": "gte", "value": 50}],
}
WAIT_THEN_SEND = {
    "a-day-later": {"type": "wait", "for": "1d", "next": "welcome"},
    "welcome": send(),
}


class Journeys:
    """Chorus in memory with the segment evaluator and the campaign process following its log;
    the durable timers fired as the scheduler would, when the clock moves."""

    def __init__(self) -> None:
        self.chorus = chorus = InMemoryChorus()
        self.clock = chorus.clock
        self.store = chorus.storage.events
        self.ports = InMemoryProcessPorts(self.store)
        self.evaluator = InMemoryProcessRunner(SegmentEvaluator(self.clock), self.ports, self.store)
        self.process = CampaignEnrollments(
            self.clock,
            chorus.request_message,
            UpdateProfile(chorus.uows, self.clock),
            GiveUpMessage(chorus.uows, self.clock, chorus.rule_sets, chorus.ids),
        )
        self.runner = InMemoryProcessRunner(self.process, self.ports, self.store)
        self.enroll = EnrollCustomer(chorus.uows, self.clock, InMemoryEnrollmentCounts(self.store))
        self.sent = 0

    async def settle(self) -> None:
        await self.evaluator.catch_up()
        await self.runner.catch_up()

    async def templates(self, body: str = "Hello {{ customer.first_name }}") -> None:
        publish = PublishTemplate(
            self.chorus.uows, self.chorus.templates.repository, self.clock, JinjaRenderer()
        )
        variants = tuple(
            Variant(channel, "en", subject="Hello" if channel is Channel.EMAIL else None, body=body)
            for channel in (Channel.EMAIL, Channel.SMS)
        )
        await publish("welcome", TemplateDraft(variants, "en"), "test")

    async def subscriber(self, who: IdentityClaim = ANA, **attributes: Any) -> UUID:
        """A customer opted in to marketing by email and SMS."""
        claims = (who, ANA_PHONE) if who == ANA else (who,)
        upserted = await self.chorus.upsert(claims, {"first_name": "Ana"}, attributes)
        consents = [
            ConsentRecord(channel, Purpose.MARKETING, True, "signup form")
            for channel in (Channel.EMAIL, Channel.SMS)
        ]
        await self.chorus.change_consent(upserted.customer_id, consents)
        await self.settle()
        return upserted.customer_id

    async def campaign(self, key: str, document: dict[str, Any]) -> UUID:
        now = self.clock.now()
        made = Campaign.create(key, key.title(), read(document), "test", now)
        made.activate("test", now)
        async with self.chorus.uows() as uow:
            uow.repository(Campaign).add(made)
        await self.settle()
        return made.id

    async def change(self, campaign: UUID, how: str, *args: Any) -> None:
        async with self.chorus.uows() as uow:
            campaigns = uow.repository(Campaign)
            found = (await campaigns.get([campaign]))[campaign]
            getattr(found, how)("test", *args, self.clock.now())
            campaigns.add(found)
        await self.settle()

    async def signal(self, kind: str, who: IdentityClaim = ANA, **properties: Any) -> None:
        await self.recorded(kind, who, **properties)
        await self.settle()

    async def recorded(self, kind: str, who: IdentityClaim = ANA, **properties: Any) -> None:
        """Records a signal, which the process has yet to handle."""
        self.sent += 1
        event = report(
            f"e{self.sent}", who, kind=kind, occurred_at=self.clock.now(), properties=properties
        )
        await self.chorus.ingest([event])

    async def later(self, by: timedelta) -> int:
        """Moves the clock; fires the timers that fell due."""
        self.clock.advance(by)
        fired = await self.process.due(self.ports, 100)
        await self.settle()
        return fired

    def events(self, kind: str) -> list[Any]:
        return [
            r.event
            for r in self.store.log
            if isinstance(r.event, Enrollment.Event) and type(r.event).__name__ == kind
        ]

    def enrollments(self) -> list[Enrollment]:
        found = self.store.load(self.store.started_by(Enrollment)).values()
        return sorted((e for e in found if isinstance(e, Enrollment)), key=lambda e: e.entry)

    def decisions(self) -> list[Customer.MessageDecided]:
        return [r.event for r in self.store.log if isinstance(r.event, Customer.MessageDecided)]

    def messages(self) -> list[Message]:
        found = self.store.load(self.store.started_by(Message)).values()
        return [m for m in found if isinstance(m, Message)]


class FailingOnce:
    """An event log whose first append fails, as a page that dies after its sends."""

    def __init__(self, log: Any) -> None:
        self.log = log
        self.failed = False

    async def append(self, events: Any) -> None:
        if not self.failed:
            self.failed = True
            raise RuntimeError("the page died")
        await self.log.append(events)

    async def append_new(self, events: Any) -> int:
        found: int = await self.log.append_new(events)
        return found


class TestEntry:
    async def test_a_signal_that_passes_the_entry_filters_enrols_its_customer(self) -> None:
        world = Journeys()
        ana = await world.subscriber()
        campaign = await world.campaign("orders", journey(WAIT_THEN_SEND) | {"entry": ORDER_ENTRY})
        await world.signal("order.placed", total=20)
        await world.signal("page.viewed", total=500)
        assert world.enrollments() == []
        await world.signal("order.placed", total=120)
        (enrollment,) = world.enrollments()
        assert (enrollment.campaign_id, enrollment.customer_id) == (campaign, ana)
        assert enrollment.id == enrollment_id(campaign, ana, 1)
        assert enrollment.step == "a-day-later"
        (waiting,) = world.events("Waiting")
        assert waiting.until == world.clock.now() + DAY
        assert world.ports.campaign_timers.timers == {enrollment.id: (campaign, waiting.until)}

    async def test_entering_a_segment_enrols_its_customer(self) -> None:
        world = Journeys()
        define = DefineSegment(world.chorus.uows, world.clock)
        condition = {"type": "attribute", "name": "tier", "op": "eq", "value": "gold"}
        await define("vip", SegmentDraft("VIP", "", decode_condition(condition)), "test")
        entry = {"type": "segment_entered", "segment": "vip"}
        await world.campaign("vips", journey(WAIT_THEN_SEND) | {"entry": entry})
        await world.subscriber(BO, tier="silver")
        assert world.enrollments() == []
        gold = await world.subscriber(ANA, tier="gold")
        (enrollment,) = world.enrollments()
        assert enrollment.customer_id == gold

    async def test_a_journey_entered_once_refuses_a_second_entry_after_the_first_ended(
        self,
    ) -> None:
        world = Journeys()
        await world.subscriber()
        steps = {"bye": {"type": "exit", "reason": "nothing to do"}}
        await world.campaign("once", journey(steps) | {"entry": ORDER_ENTRY})
        await world.signal("order.placed", total=100)
        await world.signal("order.placed", total=100)
        (enrollment,) = world.enrollments()
        assert enrollment.exit_reason == "nothing to do"

    async def test_a_journey_entered_always_takes_the_customer_in_again_once_out(self) -> None:
        world = Journeys()
        await world.subscriber()
        document = journey(WAIT_THEN_SEND) | {
            "entry": ORDER_ENTRY,
            "policies": {"re_entry": "always"},
        }
        await world.campaign("always", document)
        await world.signal("order.placed", total=100)
        await world.signal("order.placed", total=100)  # still in: not a second time
        assert len(world.enrollments()) == 1
        await world.later(DAY)
        await world.signal("order.placed", total=100)
        first, second = world.enrollments()
        assert (first.active, second.active, second.entry) == (False, True, 2)

    async def test_a_capped_journey_takes_no_more_customers_than_its_cap(self) -> None:
        world = Journeys()
        await world.subscriber(ANA)
        await world.subscriber(BO)
        document = journey(WAIT_THEN_SEND) | {
            "entry": ORDER_ENTRY,
            "policies": {"enrollment_cap": 1},
        }
        await world.campaign("capped", document)
        await world.signal("order.placed", ANA, total=100)
        await world.signal("order.placed", BO, total=100)
        assert len(world.enrollments()) == 1


class TestEnrollCustomer:
    async def test_the_api_enrols_a_customer_and_the_process_begins_the_journey(self) -> None:
        world = Journeys()
        ana = await world.subscriber()
        campaign = await world.campaign("api", journey(WAIT_THEN_SEND))
        made = await world.enroll(campaign, ana)
        await world.settle()
        (enrollment,) = world.enrollments()
        assert (enrollment.id, enrollment.step) == (made, "a-day-later")
        assert enrollment.id in world.ports.campaign_timers.timers

    async def test_a_customer_still_in_the_journey_is_refused_with_the_reason(self) -> None:
        world = Journeys()
        ana = await world.subscriber()
        campaign = await world.campaign("api", journey(WAIT_THEN_SEND))
        await world.enroll(campaign, ana)
        with pytest.raises(EnrollmentRefused, match="already in the journey"):
            await world.enroll(campaign, ana)

    async def test_entries_at_once_past_the_cap_are_refused_with_the_reason(self) -> None:
        world = Journeys()
        customers = [await world.subscriber(claim("email", f"c{n}@example.org")) for n in range(5)]
        capped = journey(WAIT_THEN_SEND) | {"policies": {"enrollment_cap": 2}}
        campaign = await world.campaign("capped", capped)
        answers = await asyncio.gather(
            *(world.enroll(campaign, customer) for customer in customers), return_exceptions=True
        )
        refused = [a for a in answers if isinstance(a, EnrollmentRefused)]
        assert len(refused) == 3
        assert {str(a) for a in refused} == {"the enrollment cap of 2 is reached"}
        await world.settle()
        assert len(world.enrollments()) == 2

    async def test_a_campaign_entered_on_a_signal_refuses_the_api(self) -> None:
        world = Journeys()
        ana = await world.subscriber()
        campaign = await world.campaign("orders", journey(WAIT_THEN_SEND) | {"entry": ORDER_ENTRY})
        with pytest.raises(EnrollmentRefused, match="not through the API"):
            await world.enroll(campaign, ana)


class TestWaitThenSend:
    async def test_the_send_is_decided_by_the_rules_when_the_wait_is_over_and_tied_to_its_step(
        self,
    ) -> None:
        world = Journeys()
        await world.templates()
        ana = await world.subscriber()
        campaign = await world.campaign("welcome", journey(WAIT_THEN_SEND))
        await world.enroll(campaign, ana)
        await world.settle()
        assert await world.later(DAY - HOUR) == 0
        assert world.decisions() == []
        assert await world.later(HOUR) == 1
        (decision,) = world.decisions()
        assert isinstance(decision, Customer.MessageAllowed)
        sent = sent_by_origin(decision.origin)
        (enrollment,) = world.enrollments()
        assert sent is not None
        assert (sent.enrollment_id, sent.step) == (enrollment.id, "welcome")
        assert decision.origin.startswith("campaign:welcome:1:welcome:")
        assert decision.request.dedup_key == f"campaign:{enrollment.id}:2:welcome"
        (message,) = world.messages()
        assert (message.channel, message.campaign) == (Channel.EMAIL, "welcome")
        assert enrollment.exit_reason == "journey completed after 'welcome': send requested"
        assert world.ports.campaign_timers.timers == {}

    async def test_a_page_retried_after_its_sends_sends_nothing_twice(self) -> None:
        world = Journeys()
        await world.templates()
        ana = await world.subscriber()
        campaign = await world.campaign("welcome", journey({"welcome": send()}))
        world.ports.events = FailingOnce(world.ports.events)  # type: ignore[assignment]
        position = world.runner.position
        await world.enroll(campaign, ana)
        with pytest.raises(RuntimeError, match="the page died"):
            await world.settle()
        world.runner.position = position  # nothing of the page was committed
        await world.settle()
        assert len(world.decisions()) == 1
        assert len(world.messages()) == 1
        (enrollment,) = world.enrollments()
        assert enrollment.exit_reason == "journey completed after 'welcome': send requested"

    async def test_a_template_that_fails_to_render_suppresses_the_send_with_the_reason(
        self,
    ) -> None:
        world = Journeys()
        await world.templates(body="Hello {{ vars.missing.name }}")
        ana = await world.subscriber()
        steps = {
            "welcome": send(on_not_delivered={"within": "1h", "next": "apology"}),
            "apology": {"type": "exit", "reason": "could not write"},
        }
        campaign = await world.campaign("broken", journey(steps))
        await world.enroll(campaign, ana)
        await world.settle()
        (responded,) = world.events("Responded")
        assert (responded.step, responded.response) == ("welcome", "suppressed")
        assert "not sent" in responded.reason
        (enrollment,) = world.enrollments()
        assert enrollment.exit_reason == "could not write"
        assert world.decisions() == []


class TestWaitForSignal:
    STEPS = {
        "pay": {
            "type": "wait_for_signal",
            "signal": "order.paid",
            "timeout": "1h",
            "on_signal": "paid",
            "on_timeout": "unpaid",
        },
        "paid": {"type": "exit", "reason": "paid"},
        "unpaid": {"type": "exit", "reason": "unpaid"},
    }

    async def test_the_signal_waited_for_takes_its_branch(self) -> None:
        world = Journeys()
        ana = await world.subscriber()
        campaign = await world.campaign("pay", journey(self.STEPS))
        await world.enroll(campaign, ana)
        await world.settle()
        await world.signal("page.viewed")
        assert world.enrollments()[0].active
        await world.signal("order.paid")
        (enrollment,) = world.enrollments()
        assert enrollment.exit_reason == "paid"
        assert world.ports.campaign_timers.timers == {}
        assert await world.later(2 * HOUR) == 0

    async def test_no_signal_within_the_timeout_takes_the_other_branch(self) -> None:
        world = Journeys()
        ana = await world.subscriber()
        campaign = await world.campaign("pay", journey(self.STEPS))
        await world.enroll(campaign, ana)
        await world.settle()
        assert await world.later(2 * HOUR) == 1
        await world.signal("order.paid")
        (enrollment,) = world.enrollments()
        assert enrollment.exit_reason == "unpaid"


class TestGoal:
    async def test_the_goal_converts_and_ends_the_journey_wherever_the_customer_is(self) -> None:
        world = Journeys()
        await world.templates()
        ana = await world.subscriber()
        document = journey(WAIT_THEN_SEND) | {"goal": {"signal": "purchase", "within": "7d"}}
        campaign = await world.campaign("goal", document)
        await world.enroll(campaign, ana)
        await world.settle()
        await world.signal("purchase", amount=10)
        (enrollment,) = world.enrollments()
        assert enrollment.converted_at == world.clock.now()
        assert enrollment.exit_reason == "goal reached: purchase"
        assert await world.later(DAY) == 0
        assert world.decisions() == []


class TestGoalAfterLeaving:
    GOAL = {"goal": {"signal": "purchase", "within": "7d"}}
    HELD_OUT = {
        "offer": {
            "type": "split",
            "arms": [{"name": "mail", "weight": 0, "next": "mail"}],
            "control": {"weight": 1},
        },
        "mail": send(),
    }
    DONE = {"bye": {"type": "exit", "reason": "nothing to do"}}

    async def _left(self, steps: dict[str, Any]) -> tuple[Journeys, Enrollment]:
        world = Journeys()
        ana = await world.subscriber()
        campaign = await world.campaign("goal", journey(steps) | self.GOAL)
        await world.enroll(campaign, ana)
        await world.settle()
        (enrollment,) = world.enrollments()
        assert not enrollment.active
        return world, enrollment

    async def _converted(self, world: Journeys) -> dict[tuple[str | None, str | None], int]:
        """The campaign's stats: conversions over the journey, by variant."""
        storage = world.chorus.storage
        queries = CampaignStatsQueries(InMemoryCampaigns(storage), InMemoryCampaignStats(storage))
        stats = await queries.get("goal")
        return {(v.split, v.arm): v.figures.converted for v in stats.journey}

    async def test_a_control_group_customer_who_buys_within_the_window_converts_and_counts(
        self,
    ) -> None:
        world, left = await self._left(self.HELD_OUT)
        assert left.exit_reason == "held out in the control group of 'offer'"
        await world.later(6 * DAY)
        await world.signal("purchase", amount=10)
        (enrollment,) = world.enrollments()
        assert enrollment.converted_at == world.clock.now()
        counted = await self._converted(world)
        assert counted[(None, None)] == counted[("offer", CONTROL)] == 1
        assert world.decisions() == []

    async def test_a_control_group_customer_who_buys_after_the_window_does_not_convert(
        self,
    ) -> None:
        world, _ = await self._left(self.HELD_OUT)
        await world.later(7 * DAY + HOUR)
        await world.signal("purchase", amount=10)
        (enrollment,) = world.enrollments()
        assert enrollment.converted_at is None
        assert (await self._converted(world))[(None, None)] == 0

    async def test_a_customer_who_left_the_journey_and_buys_within_the_window_converts_once(
        self,
    ) -> None:
        world, left = await self._left(self.DONE)
        assert left.exit_reason == "nothing to do"
        await world.later(DAY)
        await world.signal("purchase", amount=10)
        bought_at = world.clock.now()
        await world.later(HOUR)
        await world.signal("purchase", amount=20)
        (enrollment,) = world.enrollments()
        assert enrollment.converted_at == bought_at
        assert len(world.events("Converted")) == 1
        assert (await self._converted(world))[(None, None)] == 1

    async def test_a_customer_who_left_the_journey_and_buys_after_the_window_does_not_convert(
        self,
    ) -> None:
        world, _ = await self._left(self.DONE)
        await world.later(8 * DAY)
        await world.signal("purchase", amount=10)
        (enrollment,) = world.enrollments()
        assert enrollment.converted_at is None
        assert world.events("Converted") == []


class TestEntryTime:
    async def test_a_customer_entering_on_a_signal_enters_when_it_was_recorded(self) -> None:
        world = Journeys()
        await world.templates()
        await world.subscriber()
        steps = {"an-hour-later": {"type": "wait", "for": "1h", "next": "welcome"}}
        steps["welcome"] = send()
        await world.campaign("late", journey(steps) | {"entry": ORDER_ENTRY})
        recorded_at = world.clock.now()
        await world.recorded("order.placed", total=100)
        world.clock.advance(5 * HOUR)  # the process handles the signal late
        await world.settle()
        (enrollment,) = world.enrollments()
        assert enrollment.entered_at == recorded_at
        (waiting,) = world.events("Waiting")
        assert waiting.until == recorded_at + HOUR
        assert waiting.timestamp == world.clock.now()  # recorded when it was decided
        assert await world.later(timedelta(0)) == 1  # the wait was already over
        assert len(world.decisions()) == 1

    async def test_a_signal_recorded_after_the_entry_reaches_the_enrollment(self) -> None:
        world = Journeys()
        await world.subscriber()
        steps = {
            "pay": {
                "type": "wait_for_signal",
                "signal": "order.paid",
                "timeout": "1d",
                "on_signal": "paid",
                "on_timeout": "unpaid",
            },
            "paid": {"type": "exit", "reason": "paid"},
            "unpaid": {"type": "exit", "reason": "unpaid"},
        }
        await world.campaign("pay", journey(steps) | {"entry": ORDER_ENTRY})
        await world.recorded("order.placed", total=100)
        world.clock.advance(HOUR)
        await world.recorded("order.paid")
        world.clock.advance(5 * HOUR)
        await world.settle()
        (enrollment,) = world.enrollments()
        assert enrollment.exit_reason == "paid"


class TestResponses:
    STEPS = {
        "email": send(on_not_delivered={"within": "10m", "next": "sms"}, next="thanks"),
        "sms": send(channels=["sms"]),
        "thanks": {"type": "exit", "reason": "delivered"},
    }

    async def _failed(self, world: Journeys) -> None:
        (message,) = world.messages()
        async with world.chorus.uows() as uow:
            found = (await uow.repository(Message).get([message.id]))[message.id]
            found.failed((), "mailbox does not exist", world.clock.now())
            uow.repository(Message).add(found)
        await world.settle()

    async def test_a_send_not_delivered_falls_back_to_the_next_channel(self) -> None:
        world = Journeys()
        await world.templates()
        ana = await world.subscriber()
        campaign = await world.campaign("fallback", journey(self.STEPS))
        await world.enroll(campaign, ana)
        await world.settle()
        await self._failed(world)
        email, sms = world.decisions()
        assert [email.channel, sms.channel] == [Channel.EMAIL, Channel.SMS]
        (responded,) = world.events("Responded")
        assert (responded.step, responded.response) == ("email", "failed")
        assert "mailbox does not exist" in responded.reason

    async def test_a_send_not_delivered_in_time_falls_back_when_its_timer_fires(self) -> None:
        world = Journeys()
        await world.templates()
        ana = await world.subscriber()
        campaign = await world.campaign("fallback", journey(self.STEPS))
        await world.enroll(campaign, ana)
        await world.settle()
        assert await world.later(11 * timedelta(minutes=1)) == 1
        assert [d.channel for d in world.decisions()] == [Channel.EMAIL, Channel.SMS]

    async def test_a_send_the_journey_leaves_undelivered_is_withdrawn_before_a_provider_has_it(
        self,
    ) -> None:
        world = Journeys()
        await world.templates()
        ana = await world.subscriber()
        campaign = await world.campaign("fallback", journey(self.STEPS))
        await world.enroll(campaign, ana)
        await world.settle()
        (email,) = world.messages()
        assert email.id in world.chorus.storage.outbox
        assert await world.later(11 * timedelta(minutes=1)) == 1
        withdrawn = next(m for m in world.messages() if m.id == email.id)
        assert withdrawn.status is MessageStatus.SUPERSEDED
        assert "the journey went on to 'sms'" in (withdrawn.statuses[-1].reason or "")
        assert email.id not in world.chorus.storage.outbox
        (sms,) = [m for m in world.messages() if m.id != email.id]
        assert sms.channel is Channel.SMS
        assert sms.id in world.chorus.storage.outbox

    async def test_a_send_the_rules_suppress_is_an_outcome_the_journey_follows(self) -> None:
        world = Journeys()
        await world.templates()
        ana = await world.subscriber()
        opt_out = ConsentRecord(Channel.EMAIL, None, False, "unsubscribe link")
        await world.chorus.change_consent(ana, [opt_out])
        campaign = await world.campaign("fallback", journey(self.STEPS))
        await world.enroll(campaign, ana)
        await world.settle()
        email, sms = world.decisions()
        assert isinstance(email, Customer.MessageSuppressed)
        assert isinstance(sms, Customer.MessageAllowed)
        (responded,) = world.events("Responded")
        assert responded.response == "suppressed"


class TestABranchRightAfterASend:
    """A send's decision is an outcome the very next step sees: suppressed (by the rules, or
    because its template does not render) and deferred."""

    STEPS = {
        "welcome": send(channels=["sms"], next="check"),
        "check": {
            "type": "branch",
            "cases": [
                {"response": {"step": "welcome", "is": ["suppressed"]}, "next": "not-sent"},
                {"response": {"step": "welcome", "is": ["deferred"]}, "next": "later"},
            ],
            "else": "sent",
        },
        "not-sent": {"type": "exit", "reason": "not sent"},
        "later": {"type": "exit", "reason": "sent later"},
        "sent": {"type": "exit", "reason": "sent"},
    }

    async def _run(self, world: Journeys, ana: UUID) -> Enrollment:
        campaign = await world.campaign("asks", journey(self.STEPS))
        await world.enroll(campaign, ana)
        await world.settle()
        (enrollment,) = world.enrollments()
        assert world.ports.campaign_timers.timers == {}
        return enrollment

    async def test_a_send_the_rules_suppress_takes_the_suppressed_case(self) -> None:
        world = Journeys()
        await world.templates()
        ana = await world.subscriber()
        opt_out = ConsentRecord(Channel.SMS, None, False, "STOP")
        await world.chorus.change_consent(ana, [opt_out])
        enrollment = await self._run(world, ana)
        assert enrollment.exit_reason == "not sent"
        (decision,) = world.decisions()
        assert isinstance(decision, Customer.MessageSuppressed)
        (responded,) = world.events("Responded")
        assert (responded.step, responded.response) == ("welcome", "suppressed")
        assert responded.message_id == decision.message_id
        taken = [(e.step, e.reason) for e in world.events("StepTaken")]
        assert taken[1:] == [
            ("check", "send requested: it was suppressed"),
            ("not-sent", "case 1 holds: the send 'welcome' was suppressed"),
        ]

    async def test_a_send_whose_template_does_not_render_takes_the_suppressed_case(
        self,
    ) -> None:
        world = Journeys()
        await world.templates(body="Hello {{ vars.missing.name }}")
        ana = await world.subscriber()
        enrollment = await self._run(world, ana)
        assert enrollment.exit_reason == "not sent"
        assert world.decisions() == []
        (responded,) = world.events("Responded")
        assert responded.response == "suppressed"
        assert responded.reason.startswith("not sent: ")

    async def test_a_send_the_rules_defer_takes_the_deferred_case(self) -> None:
        world = Journeys()
        await world.templates()
        ana = await world.subscriber()
        world.clock.advance(11 * HOUR)  # 23:00 UTC: quiet hours for texts
        enrollment = await self._run(world, ana)
        assert enrollment.exit_reason == "sent later"
        (decision,) = world.decisions()
        assert isinstance(decision, Customer.MessageDeferred)
        (responded,) = world.events("Responded")
        assert responded.response == "deferred"

    async def test_a_send_the_rules_allow_goes_on_at_once_to_the_else(self) -> None:
        world = Journeys()
        await world.templates()
        ana = await world.subscriber()
        enrollment = await self._run(world, ana)
        assert enrollment.exit_reason == "sent"
        (decision,) = world.decisions()
        assert isinstance(decision, Customer.MessageAllowed)
        assert world.events("Responded") == []

    async def test_a_page_retried_after_its_send_hears_the_decision_from_the_log(self) -> None:
        world = Journeys()
        await world.templates()
        ana = await world.subscriber()
        await world.chorus.change_consent(ana, [ConsentRecord(Channel.SMS, None, False, "STOP")])
        campaign = await world.campaign("asks", journey(self.STEPS))
        world.ports.events = FailingOnce(world.ports.events)  # type: ignore[assignment]
        position = world.runner.position
        await world.enroll(campaign, ana)
        with pytest.raises(RuntimeError, match="the page died"):
            await world.settle()
        world.runner.position = position  # nothing of the page was committed
        await world.settle()
        assert len(world.decisions()) == 1
        (enrollment,) = world.enrollments()
        assert enrollment.exit_reason == "not sent"
        assert world.ports.campaign_timers.timers == {}


class TestSendLimit:
    """The send limit counts the sends the rules let go (or will: deferred); one never made
    (its template did not render) or suppressed by the rules takes no room."""

    @staticmethod
    def steps(first: dict[str, Any]) -> dict[str, Any]:
        return {
            "first": first | {"next": "check"},
            "check": {
                "type": "branch",
                "cases": [
                    {"response": {"step": "first", "is": ["suppressed"]}, "next": "pause"},
                ],
                "else": "pause",
            },
            "pause": {"type": "wait", "for": "1h", "next": "s1"},
            "s1": send(next="s2"),
            "s2": send(next="s3"),
            "s3": send(next="done"),
            "done": {"type": "exit", "reason": "done"},
        }

    async def _run(self, world: Journeys, ana: UUID, first: dict[str, Any]) -> Enrollment:
        document = journey(self.steps(first), policies={"send_limit": 2})
        campaign = await world.campaign("limited", document)
        await world.enroll(campaign, ana)
        await world.settle()
        await world.later(2 * HOUR)
        (enrollment,) = world.enrollments()
        (responded,) = world.events("Responded")
        assert (responded.step, responded.response) == ("first", "suppressed")
        taken = {e.step: e.reason for e in world.events("StepTaken")}
        assert (taken["s2"], taken["s3"]) == ("send requested", "send requested")
        assert taken["done"] == "not sent: the send limit of 2 is reached"
        assert enrollment.sends == 2
        (row,) = world.ports.enrollment_index.rows.values()
        assert row.sends == 2
        return enrollment

    async def test_a_send_whose_template_does_not_render_takes_no_room(self) -> None:
        world = Journeys()
        await world.templates()
        publish = PublishTemplate(
            world.chorus.uows, world.chorus.templates.repository, world.clock, JinjaRenderer()
        )
        bad = Variant(Channel.EMAIL, "en", subject="Order {{ vars.order_id }}", body="Hi")
        await publish("ten-off", TemplateDraft((bad,), "en"), "test")
        ana = await world.subscriber()
        await self._run(world, ana, send("ten-off"))
        decided = sorted(d.origin.split(":")[3] for d in world.decisions())
        assert decided == ["s1", "s2"]

    async def test_a_send_the_rules_suppress_takes_no_room(self) -> None:
        world = Journeys()
        await world.templates()
        ana = await world.subscriber()
        await world.chorus.change_consent(ana, [ConsentRecord(Channel.SMS, None, False, "STOP")])
        await self._run(world, ana, send(channels=["sms"]))
        suppressed, *allowed = world.decisions()
        assert isinstance(suppressed, Customer.MessageSuppressed)
        assert [type(d) for d in allowed] == [Customer.MessageAllowed] * 2


class TestPauseResumeArchive:
    async def test_a_paused_campaign_holds_its_timers_until_resumed(self) -> None:
        world = Journeys()
        await world.templates()
        ana = await world.subscriber()
        campaign = await world.campaign("welcome", journey(WAIT_THEN_SEND))
        await world.enroll(campaign, ana)
        await world.settle()
        await world.change(campaign, "pause")
        assert await world.later(2 * DAY) == 0
        assert world.decisions() == []
        await world.change(campaign, "resume")
        assert await world.later(timedelta(0)) == 1
        assert len(world.decisions()) == 1

    async def test_a_goal_reached_while_paused_converts_and_ends_the_journey_at_once(
        self,
    ) -> None:
        world = Journeys()
        await world.templates()
        ana = await world.subscriber()
        document = journey(WAIT_THEN_SEND) | {"goal": {"signal": "purchase", "within": "7d"}}
        campaign = await world.campaign("goal", document)
        await world.enroll(campaign, ana)
        await world.settle()
        await world.change(campaign, "pause")
        await world.signal("page.viewed")
        assert world.enrollments()[0].active  # other signals wait for the resume
        world.clock.advance(HOUR)
        await world.signal("purchase", amount=10)
        (enrollment,) = world.enrollments()
        assert enrollment.converted_at == world.clock.now()
        assert enrollment.exit_reason == "goal reached: purchase"
        assert world.ports.campaign_timers.timers == {}
        storage = world.chorus.storage
        queries = CampaignStatsQueries(InMemoryCampaigns(storage), InMemoryCampaignStats(storage))
        stats = await queries.get("goal")
        assert {(v.split, v.arm): v.figures.converted for v in stats.journey}[(None, None)] == 1
        await world.change(campaign, "resume")
        assert await world.later(2 * DAY) == 0
        assert world.decisions() == []

    async def test_archiving_exits_every_enrollment_with_the_reason(self) -> None:
        world = Journeys()
        await world.templates()
        ana = await world.subscriber(ANA)
        bo = await world.subscriber(BO)
        campaign = await world.campaign("welcome", journey(WAIT_THEN_SEND))
        await world.enroll(campaign, ana)
        await world.enroll(campaign, bo)
        await world.settle()
        await world.change(campaign, "archive", "season over")
        reasons = {e.exit_reason for e in world.enrollments()}
        assert reasons == {"the campaign was archived: season over"}
        assert world.ports.campaign_timers.timers == {}
        assert await world.later(2 * DAY) == 0
        assert world.decisions() == []

    async def test_a_timer_of_an_archived_campaign_exits_its_enrollment_with_the_reason(
        self,
    ) -> None:
        world = Journeys()
        ana = await world.subscriber()
        campaign = await world.campaign("welcome", journey(WAIT_THEN_SEND))
        await world.enroll(campaign, ana)
        await world.settle()
        states = world.ports.campaign_states.campaigns
        archived = replace(
            states[campaign], status=CampaignStatus.ARCHIVED, archived_reason="season over"
        )
        states[campaign] = archived  # as a timer run finds it
        assert await world.later(2 * DAY) == 1
        (enrollment,) = world.enrollments()
        assert enrollment.exit_reason == "the campaign was archived: season over"
        assert world.decisions() == []


class TestOtherSteps:
    async def test_an_update_step_changes_the_customer(self) -> None:
        world = Journeys()
        ana = await world.subscriber()
        steps = {
            "tag": {"type": "update", "attributes": {"journeyed": True}, "next": "bye"},
            "bye": {"type": "exit", "reason": "tagged"},
        }
        campaign = await world.campaign("tag", journey(steps))
        await world.enroll(campaign, ana)
        await world.settle()
        assert (await world.chorus.customer(ana)).attributes["journeyed"] is True
        (update,) = world.events("UpdateRequested")
        assert update.attributes == {"journeyed": True}

    async def test_a_reply_to_a_send_is_a_response_a_branch_reads(self) -> None:
        world = Journeys()
        await world.templates()
        ana = await world.subscriber()
        steps = {
            "welcome": send(next="later"),
            "later": {"type": "wait", "for": "1h", "next": "check"},
            "check": {
                "type": "branch",
                "cases": [{"response": {"step": "welcome", "is": ["replied"]}, "next": "thanks"}],
                "else": "silent",
            },
            "thanks": {"type": "exit", "reason": "replied"},
            "silent": {"type": "exit", "reason": "silent"},
        }
        campaign = await world.campaign("replies", journey(steps))
        await world.enroll(campaign, ana)
        await world.settle()
        await world.signal("message.received", channel="email", text="Thanks!")
        await world.later(HOUR)
        (enrollment,) = world.enrollments()
        assert enrollment.exit_reason == "replied"
        (responded,) = world.events("Responded")
        assert (responded.step, responded.response) == ("welcome", "replied")

    async def test_a_new_version_moves_the_customers_its_migration_names(self) -> None:
        world = Journeys()
        ana = await world.subscriber()
        campaign = await world.campaign("moving", journey(WAIT_THEN_SEND))
        await world.enroll(campaign, ana)
        await world.settle()
        moved = {
            **WAIT_THEN_SEND,
            "welcome": send(next="elsewhere"),
            "elsewhere": {"type": "exit", "reason": "moved"},
        }
        migration = Migration(moves=(StepMove(from_="a-day-later", to="elsewhere"),))
        async with world.chorus.uows() as uow:
            campaigns = uow.repository(Campaign)
            found = (await campaigns.get([campaign]))[campaign]
            found.edit("Moving", read(journey(moved)), "test", world.clock.now(), migration)
            campaigns.add(found)
        await world.settle()
        (enrollment,) = world.enrollments()
        assert (enrollment.campaign_version, enrollment.exit_reason) == (2, "moved")
        assert world.ports.campaign_timers.timers == {}

    async def test_customers_moved_by_a_migration_enter_its_step_and_it_stays_listed(
        self,
    ) -> None:
        world = Journeys()
        await world.templates()
        campaign = await world.campaign("moving", journey(WAIT_THEN_SEND))
        for who in (ANA, BO):
            await world.enroll(campaign, await world.subscriber(who))
        await world.settle()
        moved = {
            "a-day-later": {"type": "wait", "for": "1d", "next": "hold"},
            "hold": {"type": "wait", "for": "2d", "next": "welcome"},
            "welcome": send(),
        }
        migration = Migration(moves=(StepMove(from_="a-day-later", to="hold"),))
        async with world.chorus.uows() as uow:
            campaigns = uow.repository(Campaign)
            found = (await campaigns.get([campaign]))[campaign]
            found.edit("Moving", read(journey(moved)), "test", world.clock.now(), migration)
            campaigns.add(found)
        await world.settle()
        storage = world.chorus.storage
        queries = CampaignStatsQueries(InMemoryCampaigns(storage), InMemoryCampaignStats(storage))

        async def at_steps() -> dict[str, tuple[int, int]]:
            stats = await queries.get("moving")
            return {
                s.step: (v.figures.entered, v.figures.waiting)
                for s in stats.steps
                for v in s.variants
                if v.split is None
            }

        # the step the new version dropped stays listed; the one nobody reached yet shows zeros
        assert await at_steps() == {"a-day-later": (2, 0), "hold": (2, 2), "welcome": (0, 0)}
        await world.change(campaign, "archive", "season over")
        assert await at_steps() == {"a-day-later": (2, 0), "hold": (2, 0), "welcome": (0, 0)}


class ReportsFirst:
    """A send request whose message's provider reports `status` before the request's caller
    goes on (a fast provider: its webhook lands before the caller's next commit). With
    `settle`, the campaign process reads that status in a page of its own first."""

    def __init__(
        self, world: Journeys, request: Any, status: MessageStatus, settle: bool = False
    ) -> None:
        self.world = world
        self.request = request
        self.status = status
        self.settle = settle
        self.reported: list[UUID] = []

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        decided = await self.request(*args, **kwargs)
        world = self.world
        async with world.chorus.uows() as uow:
            messages = uow.repository(Message)
            found = (await messages.get([decided.message_id])).get(decided.message_id)
            if found is not None:
                if self.status is MessageStatus.FAILED:  # its dispatch gave up
                    found.failed((), "no route to the number", world.clock.now())
                else:
                    found.report(self.status, "twilio", world.clock.now())
                messages.add(found)
                self.reported.append(found.id)
        if self.settle:
            await world.settle()
        return decided

    def __getattr__(self, name: str) -> Any:
        return getattr(self.request, name)


class TestStatusesReadBeforeTheirLink:
    """What became of a campaign send does not depend on the order the log tells it in: a
    delivery fallback's status recorded before its `FellBack` names the send it answers for,
    and a send's status recorded before the enrollment's own record of the send, both reach
    the enrollment."""

    STEPS = {
        "email": send(
            fallback={"channels": ["sms"], "after": "10m"},
            on_not_delivered={"within": "1h", "next": "sorry"},
            next="thanks",
        ),
        "thanks": {"type": "exit", "reason": "delivered"},
        "sorry": {"type": "exit", "reason": "not delivered"},
    }

    async def _fallen_back(self, world: Journeys, status: MessageStatus, settle: bool) -> UUID:
        """The email is not delivered in time; its SMS fallback's provider reports `status`
        before `FellBack` is recorded. Returns the fallback message.

        `FallBackDue` commits a fallback's decision and its `FellBack` together now; this
        order is left by an earlier version that committed them apart and died between: the
        fallback went, and its row, tried again, links it."""
        await world.templates()
        ana = await world.subscriber()
        campaign = await world.campaign("fallback-first", journey(self.STEPS))
        await world.enroll(campaign, ana)
        await world.settle()
        (row,) = world.chorus.storage.fallbacks.values()
        world.clock.advance(timedelta(minutes=11))
        first = ReportsFirst(world, world.chorus.request_message, status, settle)
        await first(
            row.customer_id,
            row.plan.request,
            idempotency_key=f"fallback:{row.message_id}",
            origin="fallback",
            delivery=row.plan.delivery,
        )
        assert await world.chorus.fall_back_due() == 1
        await world.settle()
        (sms,) = first.reported
        log = world.store.log
        reported = next(r.position for r in log if r.stream_id == sms and r.version > 1)
        fell_back = next(r.position for r in log if r.topic.endswith("FellBack"))
        assert reported < fell_back  # the race the process must not lose
        return sms

    @pytest.mark.parametrize("settle", [False, True], ids=["one-page", "two-pages"])
    async def test_a_fallback_delivered_before_its_fell_back_is_read_moves_the_journey_on(
        self, settle: bool
    ) -> None:
        world = Journeys()
        sms = await self._fallen_back(world, MessageStatus.DELIVERED, settle)
        (enrollment,) = world.enrollments()
        assert enrollment.exit_reason == "delivered"
        (responded,) = world.events("Responded")
        assert (responded.step, responded.response, responded.message_id) == (
            "email",
            "delivered",
            sms,
        )
        await world.later(HOUR)  # the timeout does not count it undelivered afterwards
        assert [e.exit_reason for e in world.enrollments()] == ["delivered"]
        assert len(world.events("Responded")) == 1

    @pytest.mark.parametrize(
        ("status", "reason"),
        [
            (MessageStatus.BOUNCED, "the provider reported bounced"),
            (MessageStatus.FAILED, "delivery failed: no route to the number"),
        ],
        ids=["bounced", "dispatch-failed"],
    )
    async def test_a_fallback_that_failed_before_its_fell_back_is_read_takes_the_failure(
        self, status: MessageStatus, reason: str
    ) -> None:
        world = Journeys()
        await self._fallen_back(world, status, settle=True)
        (enrollment,) = world.enrollments()
        assert enrollment.exit_reason == "not delivered"
        (responded,) = world.events("Responded")
        assert (responded.step, responded.response, responded.reason) == (
            "email",
            "failed",
            reason,
        )

    async def test_a_page_taken_again_hears_the_early_status_once(self) -> None:
        world = Journeys()
        await self._fallen_back(world, MessageStatus.DELIVERED, settle=False)
        world.runner.position = 0  # the whole log read again, as after a lost position
        await world.runner.catch_up()
        assert len(world.events("Responded")) == 1
        assert [e.exit_reason for e in world.enrollments()] == ["delivered"]

    async def test_a_send_delivered_before_the_enrollment_records_it_moves_the_journey_on(
        self,
    ) -> None:
        world = Journeys()
        await world.templates()
        ana = await world.subscriber()
        steps = {
            "email": send(on_not_delivered={"within": "1h", "next": "sorry"}, next="thanks"),
            "thanks": {"type": "exit", "reason": "delivered"},
            "sorry": {"type": "exit", "reason": "not delivered"},
        }
        campaign = await world.campaign("delivered-first", journey(steps))
        first = ReportsFirst(world, world.process.request_message, MessageStatus.DELIVERED)
        world.process.request_message = first  # type: ignore[assignment]
        await world.enroll(campaign, ana)
        await world.settle()
        (email,) = first.reported
        log = world.store.log
        reported = next(r.position for r in log if r.stream_id == email and "Status" in r.topic)
        recorded = next(r.position for r in log if r.topic.endswith("SendRequested"))
        assert reported < recorded  # the status is in the log before the enrollment's send
        (enrollment,) = world.enrollments()
        assert enrollment.exit_reason == "delivered"
        (responded,) = world.events("Responded")
        assert (responded.step, responded.response, responded.message_id) == (
            "email",
            "delivered",
            email,
        )
