"""The campaign stats projection leaves the same rows whatever the size of the pages it reads
the log in: the live tables equal a rebuild of them one event a page, a few a page, and all at
once, with costs reported before and after the enrollments heard of their messages."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest

from adapters.postgres.log_table_rebuilds import LOG_TABLES, PostgresLogTableRebuilds
from adapters.postgres.read_model_rebuilds import PostgresReadModelRebuilds
from domain.message.aggregate import Message, MessageStatus
from tests.integration.test_campaign_stats import CUSTOMERS, Stats

if TYPE_CHECKING:
    from uuid import UUID

    import asyncpg

    from adapters.templates.jinja import JinjaRenderer

pytestmark = pytest.mark.integration

PAGE_SIZES = (1, 2, 3, 7, 10_000)


async def report(world: Stats, message_ids: list[UUID], status: MessageStatus, cost: str) -> None:
    async with world.uows() as uow:
        messages = uow.repository(Message)
        found = await messages.get(message_ids)
        for message in found.values():
            message.report(status, "fake", world.clock.now(), cost=Decimal(cost), currency="EUR")
        messages.add(*found.values())


class TestCampaignStatsPages:
    async def test_the_live_tables_equal_their_rebuild_in_pages_of_any_size(
        self, pool: asyncpg.Pool, renderer: JinjaRenderer
    ) -> None:
        world = Stats(pool, renderer)
        emails = [f"p{i}@example.org" for i in range(CUSTOMERS)]
        customers = [await world.customer(email) for email in emails]
        campaign = await world.campaign()
        await world.settle()
        for customer in customers:
            await world.enroll(campaign, customer)
        await world.settle()
        allowed = await pool.fetch("SELECT message_id FROM enrollment_messages ORDER BY 1")
        delivered = [row["message_id"] for row in allowed]
        # Each message's cost comes in twice: the last stands. The first report is read by
        # the projection before the enrollment records it heard of the delivery.
        await report(world, delivered, MessageStatus.DELIVERED, "0.0008")
        await world.settle()
        await report(world, delivered, MessageStatus.READ, "0.0011")
        world.clock.advance(timedelta(hours=1))
        for email in emails:
            await world.purchase(email)  # and leave the wait: the gauge goes back to 0
        await world.settle()

        gauges = await pool.fetch(
            "SELECT value FROM campaign_stats WHERE figure = 'waiting' AND step = 'a-week'"
        )
        assert gauges
        assert all(row["value"] == 0 for row in gauges)

        costs = await pool.fetch("SELECT DISTINCT cost FROM campaign_stats_messages")
        assert [row["cost"] for row in costs] == [Decimal("0.0011")]
        for page_size in PAGE_SIZES:
            rebuilds = PostgresReadModelRebuilds(world.runner, page_size=page_size)
            compared = await rebuilds.compare("campaign_stats", 5)
            assert compared.events > 0
            for table in compared.tables:
                assert table.equal, (page_size, table.table, table.samples)

    async def test_the_tables_written_with_a_campaigns_events_equal_their_rebuild(
        self, pool: asyncpg.Pool, renderer: JinjaRenderer
    ) -> None:
        world = Stats(pool, renderer)
        customers = [await world.customer(f"t{i}@example.org") for i in range(3)]
        campaign = await world.campaign()
        await world.settle()
        for customer in customers:
            await world.enroll(campaign, customer)
        await world.settle()
        allowed = await pool.fetch("SELECT message_id FROM enrollment_messages ORDER BY 1")
        await report(world, [row["message_id"] for row in allowed], MessageStatus.DELIVERED, "1")
        rebuilds = PostgresLogTableRebuilds(pool)
        compared = {kind.name: await rebuilds.compare(kind.name, 5) for kind in LOG_TABLES}
        rows = {t.table: t.rows for c in compared.values() for t in c.tables}
        assert rows["messages"] == len(allowed) > 0
        assert rows["campaigns"] == 2  # the world's own, and the A/B test
        assert rows["templates"] > 0
        for comparison in compared.values():
            for table in comparison.tables:
                assert table.equal, (table.table, table.samples)
