"""The enrollments projection on PostgreSQL: each entry's step, reason and status, folded across
pages, paged by campaign with cursors and listed by customer; rebuildable like the others."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from adapters.postgres.enrollments import EnrollmentListing, PostgresEnrollments
from adapters.postgres.projections import ProjectionRunner
from adapters.templates.jinja import JinjaRenderer
from ports.enrollments import EnrollmentStatus
from tests.integration.readable_log import reading_every_commit
from tests.integration.test_campaign_timers import Journeys

if TYPE_CHECKING:
    import asyncpg


class TestEnrollmentListing:
    async def test_entries_are_listed_with_their_step_and_paged_newest_first(
        self, pool: asyncpg.Pool, renderer: JinjaRenderer
    ) -> None:
        world = Journeys(pool, renderer)
        ana = await world.customer("ana@example.org")
        bo = await world.customer("bo@example.org")
        campaign = await world.campaign()
        await world.settle()
        await world.enroll(campaign, ana)
        await world.enroll(campaign, bo)
        await world.settle()
        listing = reading_every_commit(ProjectionRunner(pool, [EnrollmentListing()]), pool)
        await listing.setup()
        await listing.catch_up()
        read = PostgresEnrollments(pool)
        first = await read.page(campaign, limit=1)
        assert [view.customer_id for view in first.items] == [bo]
        rest = await read.page(campaign, limit=1, after=first.next_cursor)
        assert [view.customer_id for view in rest.items] == [ana]
        assert rest.next_cursor is None
        (ana_in,) = await read.of_customer(ana)
        assert (ana_in.status, ana_in.step, ana_in.waiting_for) == (
            "active",
            "an-hour-later",
            "time",
        )
        assert ana_in.reason

        world.process.dying = False
        world.clock.advance(timedelta(hours=1))
        await world.timers(100)
        await world.settle()
        await listing.catch_up()
        (ana_in,) = await read.of_customer(ana)
        assert (ana_in.status, ana_in.step, ana_in.waiting_until) == ("exited", "welcome", None)
        assert ana_in.exit_reason
        exited = await read.page(campaign, status=EnrollmentStatus.EXITED, step="welcome")
        assert len(exited.items) == 2
        assert (await read.page(campaign, status=EnrollmentStatus.ACTIVE)).items == []
