"""A campaign's dry run plays its journey over the recorded history of a period, on the
in-memory log: who would have entered, where they would have gone, and what the rules in force
then would have decided on each send, with nothing sent or recorded."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from adapters.inmemory.history import InMemoryHistory
from adapters.inmemory.journey_history import InMemoryJourneyHistory
from adapters.inmemory.processes import InMemoryProcessPorts, InMemoryProcessRunner
from adapters.templates.jinja import JinjaRenderer
from application.campaigns.dry_run import DryRun, DryRunCampaign, DryRunReport
from application.processes.segment_evaluator import SegmentEvaluator
from application.segments.define_segment import DefineSegment, SegmentDraft
from application.templates.publish_template import PublishTemplate, TemplateDraft
from domain.campaign.aggregate import Campaign
from domain.customer.contact import ConsentRecord
from domain.policy.decision import SendRequest
from domain.policy.rules import ApprovalRule, FrequencyCap, OnExceed
from domain.policy.vocabulary import Channel, Purpose
from domain.segments.conditions import decode_condition
from domain.shared.errors import InvalidValue, NotFound
from domain.templates.aggregate import Variant
from tests.unit.domain.campaign.journeys import journey, read, send
from tests.unit.in_memory_chorus import MONDAY_NOON, InMemoryChorus, claim, report

if TYPE_CHECKING:
    from datetime import datetime

    from domain.customer.identities import IdentityClaim

ANA = claim("email", "ana@example.org")
BO = claim("email", "bo@example.org")
CY = claim("email", "cy@example.org")
CY_WHATSAPP = claim("whatsapp_id", "447700900123")
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
ORDERS = {
    "type": "signal",
    "signal": "order.placed",
    "where": [{"property": "total", "op": "gte", "value": 50}],
}
WAIT_THEN_SEND = {
    "a-day-later": {"type": "wait", "for": "1d", "next": "welcome"},
    "welcome": send(),
}


class History:
    """Chorus in memory, a campaign stored as a draft, and signals recorded as time goes by."""

    def __init__(self) -> None:
        self.chorus = InMemoryChorus()
        self.clock = self.chorus.clock
        self.dry_run = DryRunCampaign(
            self.chorus.uows,
            InMemoryHistory(self.chorus.storage),
            InMemoryJourneyHistory(self.chorus.storage.events),
            self.chorus.templates,
            self.chorus.templates.repository,
        )
        self.sent = 0

    async def template(self, key: str = "welcome", *variants: Variant) -> None:
        publish = PublishTemplate(
            self.chorus.uows, self.chorus.templates.repository, self.clock, JinjaRenderer()
        )
        email = Variant(Channel.EMAIL, "en", subject="Hello", body="Hi {{ customer.first_name }}")
        await publish(key, TemplateDraft(variants or (email,), "en"), "test")

    async def subscriber(
        self, who: IdentityClaim, opted_in: bool = True, **attributes: Any
    ) -> None:
        made = await self.chorus.upsert((who,), {"first_name": "Ana"}, attributes)
        if opted_in:
            consent = ConsentRecord(Channel.EMAIL, Purpose.MARKETING, True, "signup form")
            await self.chorus.change_consent(made.customer_id, [consent])

    async def campaign(self, document: dict[str, Any], key: str = "orders") -> None:
        made = Campaign.create(key, key.title(), read(document), "test", self.clock.now())
        async with self.chorus.uows() as uow:
            uow.repository(Campaign).add(made)

    async def signal(self, kind: str, who: IdentityClaim, **properties: Any) -> None:
        self.sent += 1
        event = report(
            f"e{self.sent}", who, kind=kind, occurred_at=self.clock.now(), properties=properties
        )
        await self.chorus.ingest([event])

    def later(self, by: timedelta) -> None:
        self.clock.advance(by)

    async def play(
        self, since: datetime = MONDAY_NOON, until: datetime | None = None, **more: Any
    ) -> DryRunReport:
        end = until or self.clock.now() + 3 * DAY
        return await self.dry_run("orders", DryRun(since, end, **more))


@pytest.fixture
async def history() -> History:
    made = History()
    await made.template()
    for who in (ANA, BO):
        await made.subscriber(who)
    return made


def orders(steps: dict[str, Any], **more: Any) -> dict[str, Any]:
    return journey(steps, entry=ORDERS, **more)


class TestWhoWouldHaveEntered:
    async def test_each_signal_passing_the_entry_filters_enters_once(
        self, history: History
    ) -> None:
        await history.campaign(orders(WAIT_THEN_SEND))
        history.later(HOUR)
        await history.signal("order.placed", ANA, total=20)
        await history.signal("order.placed", ANA, total=120)
        await history.signal("order.placed", BO, total=80)
        await history.signal("order.placed", BO, total=90)
        played = await history.play()
        assert (played.customers, played.entered) == (2, 2)
        assert played.entered_by == {"signal order.placed": 2}
        assert played.refused == {"already in the journey": 1}

    async def test_signals_outside_the_period_let_nobody_in(self, history: History) -> None:
        await history.campaign(orders(WAIT_THEN_SEND))
        await history.signal("order.placed", ANA, total=120)
        history.later(DAY)
        played = await history.play(since=history.clock.now())
        assert (played.customers, played.entered) == (0, 0)

    async def test_the_sample_limit_bounds_the_customers_played_and_says_so(
        self, history: History
    ) -> None:
        await history.campaign(orders(WAIT_THEN_SEND))
        await history.signal("order.placed", ANA, total=120)
        await history.signal("order.placed", BO, total=120)
        played = await history.play(max_customers=1)
        assert (played.customers, played.entered, played.sample_full) == (1, 1, True)

    async def test_an_api_entry_is_not_replayed_and_the_answer_says_why(
        self, history: History
    ) -> None:
        await history.campaign(journey(WAIT_THEN_SEND))
        await history.signal("order.placed", ANA, total=120)
        played = await history.play()
        assert (played.replayed, played.entered) == (False, 0)
        assert played.not_replayed is not None
        assert "API" in played.not_replayed


class TestSegmentEntries:
    async def test_entering_the_segment_enrols_and_a_branch_sees_the_customer_as_then(
        self, history: History
    ) -> None:
        store = history.chorus.storage.events
        evaluator = SegmentEvaluator(history.clock)
        segments = InMemoryProcessRunner(evaluator, InMemoryProcessPorts(store), store)
        gold = {"type": "attribute", "name": "tier", "op": "eq", "value": "gold"}
        define = DefineSegment(history.chorus.uows, history.clock)
        await define("vip", SegmentDraft("VIP", "", decode_condition(gold)), "test")
        steps = {
            "which": {
                "type": "branch",
                "cases": [{"condition": gold, "next": "gold"}],
                "else": "other",
            },
            "gold": {"type": "exit", "reason": "gold"},
            "other": {"type": "exit", "reason": "other"},
        }
        await history.campaign(journey(steps, entry={"type": "segment_entered", "segment": "vip"}))
        await segments.catch_up()
        history.later(HOUR)
        await history.subscriber(CY, tier="silver")
        await history.subscriber(claim("email", "dee@example.org"), tier="gold")
        await segments.catch_up()
        played = await history.play()
        assert (played.entered, played.entered_by) == (1, {"entering segment vip": 1})
        assert played.exits == {"gold": 1}


class TestWhereTheyWouldHaveGone:
    async def test_a_wait_ends_in_simulated_time_and_the_send_is_decided(
        self, history: History
    ) -> None:
        await history.campaign(orders(WAIT_THEN_SEND))
        await history.signal("order.placed", ANA, total=120)
        history.later(12 * HOUR)
        await history.signal("order.placed", BO, total=120)
        played = await history.play(until=MONDAY_NOON + 30 * HOUR)
        assert played.steps["a-day-later"].reached == 2
        assert played.steps["welcome"].reached == 1
        assert played.steps["a-day-later"].held == 1  # Bo's day is not over at the end
        assert played.exits == {"journey completed after 'welcome': send requested": 1}
        welcome = played.sends["welcome"]
        assert (welcome.requested, welcome.allowed) == (1, 1)
        assert welcome.channels == {"email": 1}

    async def test_a_recorded_signal_ends_a_wait_for_it_and_the_other_times_out(
        self, history: History
    ) -> None:
        steps = {
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
        await history.campaign(orders(steps))
        await history.signal("order.placed", ANA, total=120)
        await history.signal("order.placed", BO, total=120)
        history.later(30 * timedelta(minutes=1))
        await history.signal("order.paid", ANA)
        played = await history.play()
        assert played.exits == {"paid": 1, "unpaid": 1}
        assert (played.steps["paid"].reached, played.steps["unpaid"].reached) == (1, 1)

    async def test_a_goal_signal_in_the_period_converts_and_ends_the_journey(
        self, history: History
    ) -> None:
        goal = {"signal": "order.paid", "within": "7d"}
        await history.campaign(orders(WAIT_THEN_SEND, goal=goal))
        await history.signal("order.placed", ANA, total=120)
        history.later(HOUR)
        await history.signal("order.paid", ANA)
        played = await history.play()
        assert played.conversions == 1
        assert played.exits == {"goal reached: order.paid": 1}
        assert "welcome" not in played.sends

    async def test_a_goal_after_the_journey_ended_converts_within_its_window(
        self, history: History
    ) -> None:
        goal = {"signal": "order.paid", "within": "7d"}
        await history.campaign(orders({"welcome": send()}, goal=goal))
        await history.signal("order.placed", ANA, total=120)
        await history.signal("order.placed", BO, total=120)
        history.later(2 * DAY)
        await history.signal("order.paid", ANA)
        history.later(6 * DAY)
        await history.signal("order.paid", BO)  # 8 days after entering: too late
        played = await history.play()
        assert played.exits == {"journey completed after 'welcome': send requested": 2}
        assert played.conversions == 1

    async def test_a_split_counts_its_arms_and_its_control_group(self, history: History) -> None:
        await history.subscriber(CY)
        steps = {
            "ab": {
                "type": "split",
                "arms": [{"name": "a", "weight": 50, "next": "welcome"}],
                "control": {"weight": 50},
            },
            "welcome": send(),
        }
        await history.campaign(orders(steps))
        for who in (ANA, BO, CY):
            await history.signal("order.placed", who, total=120)
        played = await history.play()
        assert sum(played.arms["ab"].values()) == 3
        assert played.steps["welcome"].reached == played.arms["ab"].get("a", 0)


class TestWhatTheRulesWouldHaveDecided:
    async def test_a_customer_without_consent_is_suppressed_by_the_consent_rule(
        self, history: History
    ) -> None:
        await history.subscriber(CY, opted_in=False)
        await history.campaign(orders({"welcome": send()}))
        await history.signal("order.placed", ANA, total=120)
        await history.signal("order.placed", CY, total=120)
        played = await history.play()
        welcome = played.sends["welcome"]
        assert (welcome.requested, welcome.allowed, welcome.suppressed) == (2, 1, 1)
        assert welcome.suppressed_by["consent.email.marketing"] == 1

    async def test_a_send_held_for_approval_counts_as_held_not_suppressed(
        self, history: History
    ) -> None:
        await history.subscriber(CY, tier="vip")
        vip = ApprovalRule("approval.vip", first_message_to=frozenset({"vip"}))
        await history.chorus.publish(approvals=(vip,))
        await history.campaign(orders({"welcome": send()}))
        await history.signal("order.placed", ANA, total=120)
        await history.signal("order.placed", CY, total=120)
        played = await history.play()
        welcome = played.sends["welcome"]
        assert (welcome.requested, welcome.allowed, welcome.held, welcome.suppressed) == (
            2,
            1,
            1,
            0,
        )
        assert welcome.held_by == {"approval.vip": 1}
        assert any("approval" in assumed for assumed in played.assumptions)

    async def test_a_branch_right_after_a_send_sees_the_rules_suppress_it_as_the_process_does(
        self, history: History
    ) -> None:
        await history.subscriber(CY, opted_in=False)
        steps = {
            "welcome": send(next="check"),
            "check": {
                "type": "branch",
                "cases": [{"response": {"step": "welcome", "is": ["suppressed"]}, "next": "sms"}],
                "else": "bye",
            },
            "sms": {"type": "exit", "reason": "not sent"},
            "bye": {"type": "exit", "reason": "sent"},
        }
        await history.campaign(orders(steps))
        await history.signal("order.placed", ANA, total=120)
        await history.signal("order.placed", CY, total=120)
        played = await history.play()
        assert played.exits == {"sent": 1, "not sent": 1}

    async def test_each_send_is_decided_by_the_rule_set_in_force_at_its_moment(
        self, history: History
    ) -> None:
        await history.campaign(orders({"welcome": send()}))
        await history.signal("order.placed", ANA, total=120)
        history.later(HOUR)
        nothing = FrequencyCap(id="cap.none", limit=0, window=DAY)
        await history.chorus.publish(caps=(nothing,))
        history.later(HOUR)
        await history.signal("order.placed", BO, total=120)
        played = await history.play()
        welcome = played.sends["welcome"]
        assert (welcome.allowed, welcome.requested - welcome.allowed) == (1, 1)
        assert {**welcome.suppressed_by, **welcome.deferred_by} == {"cap.none": 1}

    async def test_the_sends_it_allowed_count_against_later_caps_and_a_deferral_ends(
        self, history: History
    ) -> None:
        steps = {
            "first": send(next="wait"),
            "wait": {"type": "wait", "for": "1h", "next": "second"},
            "second": send(),
        }
        await history.chorus.publish(
            caps=(FrequencyCap(id="cap.one", limit=1, window=DAY),), dedup=None
        )
        await history.campaign(orders(steps))
        await history.signal("order.placed", ANA, total=120)
        within_the_cap = await history.play(until=MONDAY_NOON + 12 * HOUR)
        assert within_the_cap.sends["first"].allowed == 1
        second = within_the_cap.sends["second"]
        assert (second.requested, second.allowed, second.deferred) == (1, 0, 1)
        assert second.deferred_by == {"cap.one": 1}
        assert second.redecided == 0
        past_the_cap = (await history.play()).sends["second"]
        assert (past_the_cap.deferred, past_the_cap.redecided, past_the_cap.allowed) == (1, 1, 1)


class TestWhatItWouldHaveSaid:
    async def test_an_approved_whatsapp_template_is_allowed_outside_the_24_hour_window(
        self, history: History
    ) -> None:
        approved = Variant(
            Channel.WHATSAPP, "en", whatsapp_template="follow_up", whatsapp_parameters=("x",)
        )
        await history.template("ten-off", approved)
        free_text = Variant(Channel.WHATSAPP, "en", body="Hi {{ customer.first_name }}")
        await history.template("free-shipping", free_text)
        made = await history.chorus.upsert((CY, CY_WHATSAPP), {"first_name": "Cy"}, {})
        consent = ConsentRecord(Channel.WHATSAPP, Purpose.MARKETING, True, "signup form")
        await history.chorus.change_consent(made.customer_id, [consent])
        steps = {
            "approved": send("ten-off", channels=["whatsapp"], next="free-text"),
            "free-text": send("free-shipping", channels=["whatsapp"]),
        }
        await history.campaign(orders(steps))
        await history.signal("order.placed", CY, total=120)
        played = await history.play()
        assert played.sends["approved"].channels == {"whatsapp": 1}
        refused = played.sends["free-text"]
        assert (refused.allowed, refused.suppressed) == (0, 1)
        assert refused.suppressed_by["session_window.whatsapp"] == 1

    async def test_a_template_that_fails_to_render_suppresses_that_send_with_the_reason(
        self, history: History
    ) -> None:
        email = Variant(Channel.EMAIL, "en", subject="Hi", body="{{ customer.plan }} plan")
        await history.template("order-follow-up", email)
        steps = {"plan": send("order-follow-up", next="welcome"), "welcome": send()}
        await history.campaign(orders(steps))
        await history.signal("order.placed", ANA, total=120)
        played = await history.play()
        plan = played.sends["plan"]
        assert (plan.requested, plan.allowed, plan.suppressed) == (1, 0, 1)
        [(reason, times)] = plan.not_sent.items()
        assert times == 1
        assert reason.startswith("not sent:")
        assert "customer.plan" in reason
        assert played.sends["welcome"].allowed == 1  # the journey goes on

    async def test_a_send_that_was_not_made_takes_no_room_under_the_send_limit(
        self, history: History
    ) -> None:
        bad = Variant(Channel.EMAIL, "en", subject="Order {{ vars.order_id }}", body="Hi")
        await history.template("ten-off", bad)
        steps = {
            "bad-render": send("ten-off", next="check"),
            "check": {
                "type": "branch",
                "cases": [
                    {"response": {"step": "bad-render", "is": ["suppressed"]}, "next": "pause"}
                ],
                "else": "pause",
            },
            "pause": {"type": "wait", "for": "1h", "next": "s1"},
            "s1": send(next="s2"),
            "s2": send(next="s3"),
            "s3": send(next="done"),
            "done": {"type": "exit", "reason": "done"},
        }
        await history.chorus.publish(dedup=None)
        await history.campaign(orders(steps, policies={"send_limit": 2}))
        await history.signal("order.placed", ANA, total=120)
        played = await history.play()
        assert played.sends["bad-render"].suppressed == 1
        assert (played.sends["s1"].allowed, played.sends["s2"].allowed) == (1, 1)
        assert "s3" not in played.sends
        assert played.steps["s3"].reached == 1

    async def test_the_version_in_force_at_the_send_is_rendered(self, history: History) -> None:
        await history.campaign(orders({"welcome": send()}))
        await history.signal("order.placed", ANA, total=120)
        history.later(HOUR)
        broken = Variant(Channel.EMAIL, "en", subject="Hi", body="{{ vars.missing }}")
        await history.template("welcome", broken)
        played = await history.play()
        assert played.sends["welcome"].allowed == 1

    async def test_without_assuming_delivery_a_send_waiting_for_it_falls_through(
        self, history: History
    ) -> None:
        steps = {
            "welcome": send(on_not_delivered={"within": "1h", "next": "sorry"}, next="thanks"),
            "thanks": {"type": "exit", "reason": "delivered"},
            "sorry": {"type": "exit", "reason": "not delivered"},
        }
        await history.campaign(orders(steps))
        await history.signal("order.placed", ANA, total=120)
        assert (await history.play()).exits == {"delivered": 1}
        assert (await history.play(assume_delivered=False)).exits == {"not delivered": 1}


class TestASendTheJourneyWentOnWithout:
    async def test_a_deferred_send_is_withdrawn_and_takes_no_room_under_a_cap(
        self, history: History
    ) -> None:
        """Ana had her one send of the day: the first step's send is deferred a day, and an
        hour later the journey goes on to the second without it. The first is withdrawn, as
        the campaign withdraws it: the second, deferred too, goes out when the day is over."""
        await history.chorus.publish(
            caps=(FrequencyCap(id="cap.one", limit=1, window=DAY),), dedup=None
        )
        ana = await history.chorus.owner("email", "ana@example.org")
        assert ana is not None
        asked = SendRequest("growth", Purpose.MARKETING, (Channel.EMAIL,))
        await history.chorus.request_message(ana, asked, origin="api")
        steps = {
            "first": send(on_not_delivered={"within": "1h", "next": "second"}),
            "second": send(),
        }
        await history.campaign(orders(steps))
        history.later(HOUR)
        await history.signal("order.placed", ANA, total=120)
        played = await history.play(assume_delivered=False)
        first, second = played.sends["first"], played.sends["second"]
        assert (first.deferred, first.redecided, first.allowed) == (1, 1, 0)
        assert first.suppressed_by == {"withdrawn": 1}
        assert (second.deferred, second.redecided, second.allowed) == (1, 1, 1)
        assert second.deferred_by == {"cap.one": 1}


class TestTheHistoryItReplays:
    @pytest.mark.parametrize(
        ("origin", "allowed"),
        [
            ("api", 0),
            ("campaign:other:1:welcome:6f1c2b0e-8d7a-4c1e-9b3a-2f4d5e6a7b80", 0),
            ("campaign:orders:1:welcome:0b9e8d7c-6a5f-4e3d-8c2b-1a0f9e8d7c6b", 1),
        ],
        ids=["an-api-send", "another-campaigns-send", "its-own-send"],
    )
    async def test_sends_of_others_count_against_its_caps_and_its_own_do_not(
        self, history: History, origin: str, allowed: int
    ) -> None:
        once_a_day = FrequencyCap(id="cap.once", limit=1, window=DAY, on_exceed=OnExceed.SUPPRESS)
        await history.chorus.publish(caps=(once_a_day,))
        await history.campaign(orders({"welcome": send()}))
        ana = await history.chorus.owner("email", "ana@example.org")
        assert ana is not None
        asked = SendRequest("growth", Purpose.MARKETING, (Channel.EMAIL,))
        await history.chorus.request_message(ana, asked, origin=origin)
        history.later(HOUR)
        await history.signal("order.placed", ANA, total=120)
        welcome = (await history.play()).sends["welcome"]
        assert welcome.allowed == allowed
        assert welcome.suppressed_by == ({} if allowed else {"cap.once": 1})


class TestADryRunChangesNothing:
    async def test_nothing_is_recorded(self, history: History) -> None:
        await history.campaign(orders(WAIT_THEN_SEND))
        await history.signal("order.placed", ANA, total=120)
        before = len(history.chorus.storage.events.log)
        played = await history.play()
        assert played.sends["welcome"].allowed == 1
        assert len(history.chorus.storage.events.log) == before

    async def test_a_journey_tried_instead_plays_in_place_of_the_stored_one(
        self, history: History
    ) -> None:
        await history.campaign(orders(WAIT_THEN_SEND))
        await history.signal("order.placed", ANA, total=120)
        tried = read(orders({"bye": {"type": "exit", "reason": "tried"}}))
        played = await history.play(journey=tried)
        assert (played.tried, played.exits) == (True, {"tried": 1})
        assert set(played.steps) == {"bye"}


class TestBounds:
    async def test_an_unknown_campaign_is_not_found(self, history: History) -> None:
        with pytest.raises(NotFound):
            await history.dry_run("nope", DryRun(MONDAY_NOON, MONDAY_NOON + DAY))

    @pytest.mark.parametrize(
        ("until", "more", "field"),
        [
            (MONDAY_NOON - HOUR, {}, "to"),
            (MONDAY_NOON + 100 * DAY, {}, "to"),
            (MONDAY_NOON + DAY, {"max_customers": 0}, "sample_limit"),
        ],
    )
    def test_a_period_or_sample_out_of_bounds_names_its_field(
        self, until: datetime, more: dict[str, Any], field: str
    ) -> None:
        with pytest.raises(InvalidValue) as refused:
            DryRun(MONDAY_NOON, until, **more)
        assert refused.value.field == field
