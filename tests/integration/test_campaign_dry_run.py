"""A campaign's dry run on PostgreSQL agrees with what the campaign then really does: the same
signals, recorded once before the campaign goes live (and dry-run) and once after (taken by the
enrollments process, its timers fired as the clock moves), give the same entries, the same steps
and the same decisions."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from adapters.postgres.campaign_enrollments import EnrollmentTimers, PostgresEnrollmentCounts
from adapters.postgres.customer_directory import CustomerDirectory
from adapters.postgres.customer_records import PostgresCustomerRecords
from adapters.postgres.history import PostgresHistory
from adapters.postgres.journey_history import PostgresJourneyHistory
from adapters.postgres.process_ports import ProcessPortsOn
from adapters.postgres.processes import ProcessProjection
from adapters.postgres.projections import ProjectionRunner
from adapters.postgres.segments import SegmentMembers
from adapters.postgres.signal_activity import SignalActivity
from adapters.postgres.templates import PostgresTemplates
from adapters.postgres.unit_of_work import PostgresUnitsOfWork
from adapters.system.clock import ManualClock
from adapters.system.ids import RandomIds
from adapters.system.rule_sets import DefaultRuleSets
from adapters.templates.jinja import JinjaRenderer, JinjaTemplates
from application.campaigns.change_status import ActivateCampaign
from application.campaigns.dry_run import DryRun, DryRunCampaign, DryRunReport
from application.customer.change_consent import ChangeConsent
from application.customer.signals import IngestSignals
from application.customer.update_profile import UpdateProfile
from application.customer.upsert_customer import UpsertCustomer
from application.enrollments.enroll_customer import EnrollCustomer
from application.messages.request_message import RequestMessage
from application.processes.campaign_enrollments import CampaignEnrollments
from application.templates.publish_template import PublishTemplate, TemplateDraft
from domain.campaign.aggregate import Campaign
from domain.campaign.enrollment import enrollment_id
from domain.campaign.journey_reader import decode_journey
from domain.customer.aggregate import Customer
from domain.customer.contact import ConsentRecord
from domain.customer.identities import IdentityClaim, IdentityNormalizer
from domain.policy.decision import Outcome
from domain.policy.vocabulary import Channel, Purpose
from domain.signals.aggregate import SignalReport
from domain.templates.aggregate import Variant

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from uuid import UUID

    import asyncpg

pytestmark = pytest.mark.integration
_BELOW_HORIZON = """
SELECT coalesce(max(transaction_id) < pg_snapshot_xmin(pg_current_snapshot()), true) FROM events
"""
BEFORE = datetime(2026, 12, 1, 9, tzinfo=UTC)
LIVE = BEFORE + timedelta(days=2)
PERIOD = timedelta(hours=3)
TICK = timedelta(minutes=10)
ORDERS = {
    "entry": {
        "type": "signal",
        "signal": "order.placed",
        "where": [{"property": "total", "op": "gte", "value": 50}],
    },
    "start": "an-hour-later",
    "steps": {
        "an-hour-later": {"type": "wait", "for": "1h", "next": "thanks"},
        "thanks": {
            "type": "send",
            "channels": ["email"],
            "template": "welcome",
            "purpose": "marketing",
            "team": "growth",
            "next": "bye",
        },
        "bye": {"type": "exit", "reason": "thanked"},
    },
}
# (minutes into the period, who, signal, properties): Bo's first order is too small and his
# third finds him in already; Cy never opted in; Dan orders too late to be thanked in the period.
SIGNALS: list[tuple[int, str, str, dict[str, Any]]] = [
    (0, "ana", "order.placed", {"total": 120}),
    (10, "bo", "order.placed", {"total": 20}),
    (20, "bo", "order.placed", {"total": 80}),
    (30, "cy", "order.placed", {"total": 90}),
    (40, "bo", "order.placed", {"total": 60}),
    (50, "ana", "page.viewed", {}),
    (150, "dan", "order.placed", {"total": 75}),
]


class Shop:
    """The campaign process on PostgreSQL behind its read models, and the dry run beside it."""

    def __init__(self, pool: asyncpg.Pool, renderer: JinjaRenderer) -> None:
        self.pool = pool
        self.clock = ManualClock(BEFORE - timedelta(hours=1))
        ids = RandomIds()
        self.uows = uows = PostgresUnitsOfWork(pool)
        customers = PostgresCustomerRecords(pool)
        self.published = PostgresTemplates(pool)
        self.renderer = renderer
        request = RequestMessage(
            uows,
            DefaultRuleSets(),
            self.clock,
            ids,
            JinjaTemplates(self.published, renderer),
            customers=customers,
        )
        self.process = CampaignEnrollments(self.clock, request, UpdateProfile(uows, self.clock))
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
        self.enroll = EnrollCustomer(uows, self.clock, PostgresEnrollmentCounts(pool))
        self.ingest = IngestSignals(uows, self.clock, ids)
        self.history = PostgresHistory(pool)
        self.dry_run = DryRunCampaign(
            uows,
            self.history,
            PostgresJourneyHistory(pool),
            JinjaTemplates(self.published, renderer),
            self.published,
        )
        self.customers: dict[str, UUID] = {}
        self.sent = 0

    async def customer(self, name: str, opted_in: bool = True) -> None:
        made = await self.upsert((self.claim(name),), {"first_name": name.title()}, {})
        if opted_in:
            opt_in = ConsentRecord(Channel.EMAIL, Purpose.MARKETING, True, "signup form")
            await self.consent(made.customer_id, [opt_in])
        self.customers[name] = made.customer_id

    def claim(self, name: str) -> IdentityClaim:
        return IdentityClaim(IdentityNormalizer().normalize("email", f"{name}@example.org"))

    async def campaign(self) -> UUID:
        publish = PublishTemplate(self.uows, self.published, self.clock, self.renderer)
        variant = Variant(
            Channel.EMAIL, "en", subject="Thanks", body="Hi {{ customer.first_name }}"
        )
        await publish("welcome", TemplateDraft((variant,), "en"), "test")
        journey = decode_journey(ORDERS, templates={"welcome"}, segments=frozenset())
        made = Campaign.create("orders", "Orders", journey, "test", self.clock.now())
        async with self.uows() as uow:
            uow.repository(Campaign).add(made)
        return made.id

    async def settle(self) -> None:
        """Catches up until nothing is left, waiting whenever the horizon is below the log's
        end: the horizon is the server's, so another database's transaction (another test's)
        holds every reader back while it runs."""
        await self.runner.setup()
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            while await self.pool.fetchval(_BELOW_HORIZON) is False:
                assert asyncio.get_running_loop().time() < deadline, "the log stays unreadable"
                await asyncio.sleep(0.02)
            if not await self.runner.catch_up():
                return

    async def period(self, start: datetime) -> None:
        """Records the signals of the period from `start`, firing the timers as time goes by."""
        self.clock.set(start)
        for minutes in range(0, int(PERIOD / TICK) + 1):
            self.clock.set(start + minutes * TICK)
            await self.timers(100)
            await self.settle()
            for at, who, kind, properties in SIGNALS:
                if at == minutes * 10:
                    self.sent += 1
                    report = SignalReport(
                        f"e{self.sent}", kind, self.clock.now(), (self.claim(who),), properties
                    )
                    await self.ingest([report])
            await self.settle()

    async def steps(self, campaign: UUID) -> Counter[str]:
        taken: Counter[str] = Counter()
        for customer in self.customers.values():
            for event in await self.history.stream(enrollment_id(campaign, customer, 1)):
                if type(event).__name__ == "StepTaken":
                    taken[event.step] += 1  # type: ignore[attr-defined]
        return taken

    async def decisions(self) -> Counter[Outcome]:
        found: Counter[Outcome] = Counter()
        for customer in self.customers.values():
            for event in await self.history.stream(customer):
                if isinstance(event, Customer.MessageDecided) and event.origin.startswith(
                    "campaign:"
                ):
                    found[event.outcome] += 1
        return found


@pytest.fixture
async def renderer() -> AsyncIterator[JinjaRenderer]:
    made = JinjaRenderer()
    yield made
    made.close()


def _decided(played: DryRunReport) -> Counter[Outcome]:
    sends = played.sends.values()
    counted = Counter(
        {
            Outcome.SEND: sum(t.allowed for t in sends),
            Outcome.DEFER: sum(t.deferred for t in sends),
            Outcome.SUPPRESS: sum(t.suppressed for t in sends),
        }
    )
    return +counted


class TestADryRunAgreesWithTheCampaign:
    async def test_entries_steps_and_decisions_are_those_the_campaign_then_makes(
        self, pool: asyncpg.Pool, renderer: JinjaRenderer
    ) -> None:
        shop = Shop(pool, renderer)
        for name in ("ana", "bo", "dan"):
            await shop.customer(name)
        await shop.customer("cy", opted_in=False)
        campaign = await shop.campaign()
        await shop.settle()

        await shop.period(BEFORE)
        assert await pool.fetchval("SELECT count(*) FROM enrollment_index") == 0  # a draft
        played = await shop.dry_run("orders", DryRun(BEFORE, BEFORE + PERIOD))
        events_before = await pool.fetchval("SELECT count(*) FROM events")
        await shop.dry_run("orders", DryRun(BEFORE, BEFORE + PERIOD))
        assert await pool.fetchval("SELECT count(*) FROM events") == events_before

        shop.clock.set(LIVE - timedelta(minutes=1))
        await ActivateCampaign(shop.uows, shop.clock)("orders", "test")
        await shop.settle()
        await shop.period(LIVE)

        entered = await pool.fetchval("SELECT count(*) FROM enrollment_index")
        assert played.entered == entered == 4
        assert played.refused == {"already in the journey": 1}
        reached = Counter({step: t.reached for step, t in played.steps.items() if t.reached})
        assert reached == await shop.steps(campaign)
        assert reached == Counter({"an-hour-later": 4, "thanks": 3, "bye": 3})
        assert _decided(played) == await shop.decisions()
        assert _decided(played) == Counter({Outcome.SEND: 2, Outcome.SUPPRESS: 1})
        assert played.sends["thanks"].suppressed_by["consent.email.marketing"] == 1
        held = await pool.fetchval("SELECT count(*) FROM campaign_timers")
        assert played.held() == held == 1  # Dan, still waiting for his hour
        assert played.exits == {"thanked": 3}


class TestTheHistoryItReads:
    async def test_customers_enter_by_signal_type_first_met_first_up_to_the_limit(
        self, pool: asyncpg.Pool, renderer: JinjaRenderer
    ) -> None:
        shop = Shop(pool, renderer)
        for name in ("ana", "bo", "cy", "dan"):
            await shop.customer(name)
        await shop.period(BEFORE)
        journeys = PostgresJourneyHistory(pool)
        end = BEFORE + PERIOD
        found = await journeys.entering(BEFORE, end, ["order.placed"], [], 10)
        names = {v: k for k, v in shop.customers.items()}
        assert [names[c] for c in found] == ["ana", "bo", "cy", "dan"]
        assert len(await journeys.entering(BEFORE, end, ["order.placed"], [], 2)) == 2
        assert await journeys.entering(BEFORE, end, ["order.paid"], [], 10) == []
        ana = shop.customers["ana"]
        lives = await journeys.lives([ana], end)
        assert [getattr(e, "signal_type", None) for e in lives] == ["order.placed", "page.viewed"]
