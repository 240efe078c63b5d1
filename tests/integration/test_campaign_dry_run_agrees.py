"""A dry run over a period the campaign already ran agrees with what it really did there.

The campaign runs on PostgreSQL with the manual clock over three hours: six customers order, the
enrollments process takes them through the journey as the clock moves (timers fired, deferred
sends decided again by the scheduler), with a WhatsApp step whose template is approved, a send
deferred by quiet hours, one suppressed by a cap, one whose template does not render, a
conversion in the journey and one after it, and a split. The same journey is then dry-run over
the same period, its own sends now in the history: the entries, the sends by channel, the
suppressions by reason, the deferrals, the conversions and the exits are those the campaign
made. A second journey holds its WhatsApp send for its delivery: the deferred one is withdrawn
when the journey goes on to email, in the campaign and in its dry run alike."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from adapters.postgres.campaign_enrollments import EnrollmentTimers
from adapters.postgres.customer_directory import CustomerDirectory
from adapters.postgres.customer_records import PostgresCustomerRecords
from adapters.postgres.history import PostgresHistory
from adapters.postgres.journey_history import PostgresJourneyHistory
from adapters.postgres.process_ports import ProcessPortsOn
from adapters.postgres.processes import ProcessProjection
from adapters.postgres.projections import ProjectionRunner
from adapters.postgres.rule_sets import PostgresRuleSets
from adapters.postgres.segments import SegmentMembers
from adapters.postgres.signal_activity import SignalActivity
from adapters.postgres.templates import PostgresTemplates
from adapters.postgres.unit_of_work import PostgresUnitsOfWork
from adapters.system.clock import ManualClock
from adapters.system.ids import RandomIds
from adapters.templates.jinja import JinjaRenderer, JinjaTemplates
from application.campaigns.change_status import ChangeCampaignStatus, StatusChange
from application.campaigns.dry_run import DryRun, DryRunCampaign, DryRunReport
from application.customer.change_consent import ChangeConsent
from application.customer.signals import IngestSignals
from application.customer.update_profile import UpdateProfile
from application.customer.upsert_customer import UpsertCustomer
from application.delivery.give_up import GiveUpMessage
from application.messages.redecide_due import RedecideDueMessages
from application.messages.request_message import RequestMessage
from application.processes.campaign_enrollments import CampaignEnrollments
from application.rules.publish_rules import PublishRules
from application.templates.publish_template import PublishTemplate, TemplateDraft
from domain.campaign.aggregate import Campaign
from domain.campaign.enrollment import Enrollment, enrollment_id
from domain.campaign.journey_reader import decode_journey
from domain.campaign.origin import SendOrigin
from domain.customer.aggregate import Customer
from domain.customer.contact import ConsentRecord
from domain.customer.identities import IdentityClaim, IdentityNormalizer
from domain.policy.decision import Effect, SendRequest
from domain.policy.defaults import default_rule_set
from domain.policy.rules import FrequencyCap, OnExceed
from domain.policy.vocabulary import Channel, Purpose
from domain.signals.aggregate import SignalReport
from domain.templates.aggregate import Variant

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from uuid import UUID

    import asyncpg

pytestmark = pytest.mark.integration

KEY = "follow-ups"
SETUP = datetime(2026, 12, 1, 10, tzinfo=UTC)
START = SETUP + timedelta(hours=1)  # 11:00 UTC: 07:00 in New York, in quiet hours until 08:00
END = START + timedelta(hours=3)
TICK = timedelta(minutes=10)
FOLLOW_UP = {
    "type": "send",
    "template": "follow-up",
    "purpose": "service",
    "team": "orders",
    "next": "offer",
}
JOURNEY = {
    "entry": {"type": "signal", "signal": "order.placed"},
    "start": "an-hour-later",
    "steps": {
        "an-hour-later": {"type": "wait", "for": "1h", "next": "by-channel"},
        "by-channel": {
            "type": "branch",
            "cases": [
                {
                    "condition": {"type": "identity", "identity_type": "whatsapp_id"},
                    "next": "whatsapp",
                }
            ],
            "else": "email",
        },
        "whatsapp": {**FOLLOW_UP, "channels": ["whatsapp"]},
        "email": {**FOLLOW_UP, "channels": ["email"]},
        "offer": {
            "type": "split",
            "arms": [{"name": "coupon", "weight": 1, "next": "coupon"}],
            "control": {"weight": 1},
        },
        "coupon": {
            "type": "send",
            "channels": ["email"],
            "template": "coupon",
            "purpose": "marketing",
            "team": "growth",
        },
    },
    "goal": {"signal": "purchase", "within": "7d"},
}
# The WhatsApp follow-up is an approved template: WhatsApp's 24-hour window lets it out.
FOLLOW_UP_TEMPLATE = TemplateDraft(
    (
        Variant(
            Channel.EMAIL,
            "en",
            subject="How was your order?",
            body="Hi {{ customer.first_name }}, how was your order?",
        ),
        Variant(
            Channel.WHATSAPP,
            "en",
            whatsapp_template="order_follow_up",
            whatsapp_language="en",
            whatsapp_parameters=("{{ customer.first_name }}",),
        ),
    ),
    "en",
)
COUPON_TEMPLATE = TemplateDraft(
    (
        Variant(
            Channel.EMAIL,
            "en",
            subject="Ten off",
            body="Hi {{ customer.first_name | default('there') }}, ten off your next order.",
        ),
    ),
    "en",
)
# The orders team may reach a customer once a day; a send over that is suppressed.
ORDERS_CAP = FrequencyCap(
    "cap.orders.daily", 1, timedelta(days=1), team="orders", on_exceed=OnExceed.SUPPRESS
)
# (minutes into the period, who, signal): Ana's second order finds her in the journey already;
# Fay buys before her follow-up, Bo after his journey ended, within the goal's 7 days.
SIGNALS: list[tuple[int, str, str]] = [
    (0, "ana", "order.placed"),
    (0, "bo", "order.placed"),
    (0, "cy", "order.placed"),
    (0, "dan", "order.placed"),
    (10, "eve", "order.placed"),
    (10, "fay", "order.placed"),
    (30, "fay", "purchase"),
    (40, "ana", "order.placed"),
    (150, "bo", "purchase"),
]
# The WhatsApp follow-up held for its delivery: not delivered within 30 minutes, email instead.
# No provider reports a delivery here, so the dry run is told sends are never heard of.
HELD = {
    **JOURNEY,
    "steps": {
        **JOURNEY["steps"],
        "whatsapp": {
            **JOURNEY["steps"]["whatsapp"],
            "on_not_delivered": {"within": "30m", "next": "email"},
        },
    },
}
_HOLDING = (Effect.SUPPRESSED, Effect.DEFERRED, Effect.BLOCKED_CHANNEL)
_BELOW_HORIZON = """
SELECT coalesce(max(transaction_id) < pg_snapshot_xmin(pg_current_snapshot()), true) FROM events
"""


@dataclass
class Outcome:
    """What a journey did over the period, counted the same way for the campaign and its dry
    run."""

    entered: int = 0
    reached: Counter[str] = field(default_factory=Counter)
    sent_by_channel: Counter[str] = field(default_factory=Counter)
    deferred: int = 0
    redecided: int = 0
    suppressed_by: Counter[str] = field(default_factory=Counter)
    not_sent: Counter[str] = field(default_factory=Counter)
    converted: int = 0
    exits: Counter[str] = field(default_factory=Counter)
    arms: Counter[str] = field(default_factory=Counter)


def of_dry_run(played: DryRunReport) -> Outcome:
    sends = played.sends.values()
    return Outcome(
        entered=played.entered,
        reached=+Counter({step: tally.reached for step, tally in played.steps.items()}),
        sent_by_channel=sum((t.channels for t in sends), Counter()),
        deferred=sum(t.deferred for t in sends),
        redecided=sum(t.redecided for t in sends),
        suppressed_by=sum((t.suppressed_by for t in sends), Counter()),
        not_sent=sum((t.not_sent for t in sends), Counter()),
        converted=played.conversions,
        exits=played.exits,
        arms=sum(played.arms.values(), Counter()),
    )


class Shop:
    """The campaign process on PostgreSQL with the scheduler beside it, and the dry run."""

    def __init__(self, pool: asyncpg.Pool, renderer: JinjaRenderer) -> None:
        self.pool = pool
        self.clock = ManualClock(SETUP)
        ids = RandomIds()
        self.uows = uows = PostgresUnitsOfWork(pool)
        customers = PostgresCustomerRecords(pool)
        self.rule_sets = PostgresRuleSets(pool, self.clock)
        self.published = PostgresTemplates(pool)
        self.renderer = renderer
        templates = JinjaTemplates(self.published, renderer)
        self.request = RequestMessage(
            uows, self.rule_sets, self.clock, ids, templates, customers=customers
        )
        self.redecide = RedecideDueMessages(uows, self.rule_sets, self.clock, ids)
        self.process = CampaignEnrollments(
            self.clock,
            self.request,
            UpdateProfile(uows, self.clock),
            GiveUpMessage(uows, self.clock, self.request.rule_sets, self.request.ids),
        )
        ports = ProcessPortsOn()
        self.runner = ProjectionRunner(
            pool,
            [
                CustomerDirectory(),
                SignalActivity(),
                SegmentMembers(),
                ProcessProjection(self.process, ports),
            ],
        )
        self.timers = EnrollmentTimers(pool, self.process, ports)
        self.upsert = UpsertCustomer(uows, self.clock, ids)
        self.consent = ChangeConsent(uows, self.clock, customers)
        self.ingest = IngestSignals(uows, self.clock, ids)
        self.history = PostgresHistory(pool)
        self.dry_run = DryRunCampaign(
            uows, self.history, PostgresJourneyHistory(pool), templates, self.published
        )
        self.customers: dict[str, UUID] = {}
        self.sent = 0

    def claim(self, name: str) -> IdentityClaim:
        return IdentityClaim(IdentityNormalizer().normalize("email", f"{name}@example.org"))

    async def customer(
        self,
        name: str,
        profile: dict[str, Any],
        consents: tuple[tuple[Channel, Purpose], ...] = (),
        whatsapp: str | None = None,
    ) -> None:
        claims = [self.claim(name)]
        if whatsapp is not None:
            claims.append(IdentityClaim(IdentityNormalizer().normalize("whatsapp_id", whatsapp)))
        made = await self.upsert(tuple(claims), profile, {})
        records = [ConsentRecord(c, p, True, "signup form") for c, p in consents]
        if records:
            await self.consent(made.customer_id, records)
        self.customers[name] = made.customer_id

    async def setup(self, document: dict[str, Any] = JOURNEY) -> UUID:
        await self.runner.setup()
        publish = PublishTemplate(self.uows, self.published, self.clock, self.renderer)
        await publish("follow-up", FOLLOW_UP_TEMPLATE, "test")
        await publish("coupon", COUPON_TEMPLATE, "test")
        rules = default_rule_set()
        await PublishRules(self.uows, self.rule_sets, self.clock)(
            replace(rules, caps=(*rules.caps, ORDERS_CAP)), "test"
        )
        marketing = (Channel.EMAIL, Purpose.MARKETING)
        on_whatsapp = ((Channel.WHATSAPP, Purpose.SERVICE),)
        await self.customer("ana", {"first_name": "Ana"}, (marketing,))
        london = {"first_name": "Bo", "time_zone": "Europe/London"}
        await self.customer("bo", london, on_whatsapp, whatsapp="447700900001")
        new_york = {"first_name": "Cy", "time_zone": "America/New_York"}
        await self.customer("cy", new_york, on_whatsapp, whatsapp="12125550100")
        await self.customer("dan", {"first_name": "Dan"}, (marketing,))
        await self.customer("eve", {})  # no first name: the follow-up cannot be rendered
        await self.customer("fay", {"first_name": "Fay"}, (marketing,))
        # The orders team wrote to Dan this morning: its daily cap leaves no room for more.
        asked = SendRequest("orders", Purpose.SERVICE, (Channel.EMAIL,))
        await self.request(self.customers["dan"], asked, origin="api")
        journey = decode_journey(document, templates={"follow-up", "coupon"}, segments=frozenset())
        made = Campaign.create(KEY, "Follow-ups", journey, "test", self.clock.now())
        async with self.uows() as uow:
            uow.repository(Campaign).add(made)
        self.clock.set(START - TICK)
        await ChangeCampaignStatus(self.uows, self.clock)(KEY, StatusChange.ACTIVATE, "test")
        await self.settle()
        return made.id

    async def settle(self) -> None:
        """Catches up until nothing is left, waiting whenever the horizon is below the log's
        end: the horizon is the server's, so another database's transaction (another test's)
        holds every reader back while it runs."""
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            while await self.pool.fetchval(_BELOW_HORIZON) is False:
                assert asyncio.get_running_loop().time() < deadline, "the log stays unreadable"
                await asyncio.sleep(0.02)
            if not await self.runner.catch_up():
                return

    async def run(self) -> None:
        """The period as the service lives it: at each tick the due timers and the deferred
        sends due, then the signals of that moment, each taken by the process."""
        ticks = int((END - START) / TICK)
        for tick in range(ticks + 1):
            self.clock.set(START + tick * TICK)
            await self.timers(100)
            await self.redecide()
            await self.settle()
            for minutes, who, kind in SIGNALS:
                if minutes == tick * 10:
                    self.sent += 1
                    report = SignalReport(
                        f"s{self.sent}", kind, self.clock.now(), (self.claim(who),), {}
                    )
                    await self.ingest([report])
            await self.settle()

    async def outcome(self, campaign: UUID) -> Outcome:
        """What the campaign really did, read from the enrollments' and customers' streams."""
        found = Outcome()
        found.entered = await self.pool.fetchval(
            "SELECT count(*) FROM enrollment_index WHERE campaign_id = $1", campaign
        )
        for customer in self.customers.values():
            for event in await self.history.stream(enrollment_id(campaign, customer, 1)):
                self.count_step(found, event)
            own: set[UUID] = set()
            for event in await self.history.stream(customer):
                if not isinstance(event, Customer.MessageDecided):
                    continue
                sent = SendOrigin.parse(event.origin)
                if event.message_id in own:
                    found.redecided += 1
                elif sent is None or sent.campaign != KEY:
                    continue
                own.add(event.message_id)
                held_by = [r.rule_id for r in event.fired if r.effect in _HOLDING]
                if isinstance(event, Customer.MessageAllowed):
                    found.sent_by_channel[str(event.channel)] += 1
                elif isinstance(event, Customer.MessageDeferred):
                    found.deferred += 1
                else:
                    found.suppressed_by.update(held_by)
        return found

    @staticmethod
    def count_step(found: Outcome, event: Any) -> None:
        if isinstance(event, Enrollment.StepTaken):
            found.reached[event.step] += 1
            if event.arm is not None:
                found.arms[event.arm] += 1
        elif type(event).__name__ == "Responded" and event.reason.startswith("not sent:"):
            found.not_sent[event.reason] += 1
        elif type(event).__name__ == "Converted":
            found.converted += 1
        elif type(event).__name__ == "Exited":
            found.exits[event.reason] += 1
            if event.arm is not None:
                found.arms[event.arm] += 1


@pytest.fixture
async def renderer() -> AsyncIterator[JinjaRenderer]:
    made = JinjaRenderer()
    yield made
    made.close()


class TestADryRunOfAPeriodTheCampaignRan:
    async def test_it_counts_what_the_campaign_did_there(
        self, pool: asyncpg.Pool, renderer: JinjaRenderer
    ) -> None:
        shop = Shop(pool, renderer)
        campaign = await shop.setup()
        await shop.run()
        real = await shop.outcome(campaign)

        played = await shop.dry_run(KEY, DryRun(START, END))
        assert of_dry_run(played) == real

        # The period holds what the journey is meant to show.
        assert real.entered == 6
        assert played.refused == {"already in the journey": 1}
        assert real.sent_by_channel["whatsapp"] == 2  # Bo at once, Cy after 08:00 in New York
        assert real.deferred == real.redecided == 1
        assert played.sends["whatsapp"].deferred_by == {"quiet.night": 1}
        assert real.suppressed_by["cap.orders.daily"] == 1  # Dan
        [(reason, times)] = real.not_sent.items()  # Eve
        assert (times, "customer.first_name" in reason) == (1, True)
        assert real.converted == 2  # Fay in the journey, Bo after it
        assert real.exits["goal reached: purchase"] == 1
        assert sum(real.arms.values()) == real.reached["offer"] == 5
        assert await pool.fetchval("SELECT count(*) FROM campaign_timers") == 0
        assert played.held() == 0

    async def test_a_dry_run_changes_nothing_it_replays(
        self, pool: asyncpg.Pool, renderer: JinjaRenderer
    ) -> None:
        shop = Shop(pool, renderer)
        await shop.setup()
        await shop.run()
        events = await pool.fetchval("SELECT count(*) FROM events")
        first = await shop.dry_run(KEY, DryRun(START, END))
        again = await shop.dry_run(KEY, DryRun(START, END))
        assert of_dry_run(first) == of_dry_run(again)
        assert await pool.fetchval("SELECT count(*) FROM events") == events

    async def test_a_deferred_send_the_journey_went_on_without_is_withdrawn_in_both(
        self, pool: asyncpg.Pool, renderer: JinjaRenderer
    ) -> None:
        shop = Shop(pool, renderer)
        campaign = await shop.setup(HELD)
        await shop.run()
        real = await shop.outcome(campaign)

        played = await shop.dry_run(KEY, DryRun(START, END, assume_delivered=False))
        assert of_dry_run(played) == real

        # Cy's WhatsApp, deferred to 08:00 in New York, is withdrawn at 30 minutes when he goes
        # on to email: never decided again, it takes no room under the orders team's cap.
        assert real.deferred == real.redecided == 1
        assert real.suppressed_by["withdrawn"] == 1
        assert played.sends["whatsapp"].suppressed_by == {"withdrawn": 1}
        assert real.sent_by_channel["whatsapp"] == 1  # Bo's, never delivered: email follows
        assert real.reached["email"] == 5  # everyone but Fay, who bought first
        assert played.held() == 0
