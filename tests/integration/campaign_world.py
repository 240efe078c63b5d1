"""The campaign process on PostgreSQL behind the read models it reads, as the campaign
integration tests build it: `CampaignWorld` wires it once, and each test module's world adds
what it tests (a dying process, the stats projection, schedules, the dry run)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from adapters.postgres.campaign_enrollments import EnrollmentTimers, PostgresEnrollmentCounts
from adapters.postgres.customer_directory import CustomerDirectory
from adapters.postgres.customer_records import PostgresCustomerRecords
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
from adapters.templates.jinja import JinjaTemplates
from application.customer.change_consent import ChangeConsent
from application.customer.signals import IngestSignals
from application.customer.update_profile import UpdateProfile
from application.customer.upsert_customer import UpsertCustomer
from application.delivery.give_up import GiveUpMessage
from application.enrollments.enroll_customer import EnrollCustomer
from application.messages.request_message import RequestMessage
from application.processes.campaign_enrollments import CampaignEnrollments
from application.templates.publish_template import PublishTemplate, TemplateDraft
from domain.customer.contact import ConsentRecord
from domain.customer.identities import IdentityClaim, IdentityNormalizer
from domain.policy.vocabulary import Channel, Purpose
from domain.templates.aggregate import Variant
from tests.integration.readable_log import reading_every_commit

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime
    from uuid import UUID

    import asyncpg

    from adapters.templates.jinja import JinjaRenderer

__all__ = ["BEHIND", "CampaignWorld", "email_claim"]

P = TypeVar("P", bound=CampaignEnrollments)

BEHIND = """
SELECT count(*) FROM projection_positions p,
    (SELECT transaction_id, position FROM events
     ORDER BY transaction_id DESC, position DESC LIMIT 1) e
WHERE (p.transaction_id, p.position) < (e.transaction_id, e.position)
"""
"""How many projections have not read the last event yet."""


def email_claim(email: str) -> IdentityClaim:
    return IdentityClaim(IdentityNormalizer().normalize("email", email))


class CampaignWorld(Generic[P]):
    """The enrollments process (`process`, of the class given) with the read models it reads in
    one runner (and `projections` after them), its timers, and the use cases that feed it."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        renderer: JinjaRenderer,
        now: datetime,
        process: type[P],
        projections: Sequence[Any] = (),
    ) -> None:
        self.pool = pool
        self.clock = ManualClock(now)
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
        give_up = GiveUpMessage(uows, self.clock, request.rule_sets, request.ids)
        self.process: P = process(self.clock, request, UpdateProfile(uows, self.clock), give_up)
        self.ports = ProcessPortsOn()
        runner = ProjectionRunner(
            pool,
            [
                CustomerDirectory(),
                SignalActivity(),
                SegmentMembers(),
                ProcessProjection(self.process, self.ports),
                *projections,
            ],
        )
        self.runner = reading_every_commit(runner, pool)
        self.timers = EnrollmentTimers(pool, self.process, self.ports)
        self.upsert = UpsertCustomer(uows, self.clock, ids)
        self.consent = ChangeConsent(uows, self.clock, customers)
        self.enroll = EnrollCustomer(uows, self.clock, PostgresEnrollmentCounts())
        self.ingest = IngestSignals(uows, self.clock, ids)
        self.sent = 0

    async def opted_in(
        self, claim: IdentityClaim, profile: dict[str, Any], opted_in: bool = True
    ) -> UUID:
        """A customer, opted in to marketing email unless told otherwise."""
        made = await self.upsert((claim,), profile, {})
        if opted_in:
            opt_in = ConsentRecord(Channel.EMAIL, Purpose.MARKETING, True, "signup form")
            await self.consent(made.customer_id, [opt_in])
        return made.customer_id

    async def email_template(self, key: str, subject: str) -> None:
        publish = PublishTemplate(self.uows, self.published, self.clock, self.renderer)
        variant = Variant(Channel.EMAIL, "en", subject=subject, body="Hi {{ customer.first_name }}")
        await publish(key, TemplateDraft((variant,), "en"), "test")

    async def settle(self) -> None:
        await self.runner.setup()
        await self.runner.catch_up()

    async def settle_fully(self) -> None:
        """Catches up to the last event: the log is read below the oldest transaction running
        on the server, which another database's work may hold back for a while."""
        await self.runner.setup()
        while True:
            await self.runner.catch_up()
            if await self.pool.fetchval(BEHIND) == 0:
                return
            await asyncio.sleep(0.05)
