"""Enrollments as the read side lists them: folded from their events, by campaign with cursors
and filters, and by customer with each journey's step and why; entries made through the API,
idempotent with a key."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from adapters.inmemory.campaigns import InMemoryCampaigns
from adapters.inmemory.enrollments import InMemoryEnrollments
from application.enrollments.enroll_customer import EnrollmentRefused
from application.queries.enrollments import EnrollmentQueries
from domain.shared.errors import NotFound
from ports.enrollments import ENROLLMENT_TOPICS, EnrollmentStatus, InvalidEnrollmentCursor
from tests.unit.application.test_campaign_enrollments import (
    ANA,
    BO,
    DAY,
    WAIT_THEN_SEND,
    Journeys,
)
from tests.unit.domain.campaign.journeys import journey
from tests.unit.in_memory_chorus import claim

if TYPE_CHECKING:
    from uuid import UUID

CY = claim("email", "cy@example.org")


class Listed:
    """Journeys, with the enrollments folded from the log as the projection folds them."""

    def __init__(self) -> None:
        self.world = Journeys()

    def queries(self) -> EnrollmentQueries:
        listing = InMemoryEnrollments()
        listing.apply(self.world.store.read(ENROLLMENT_TOPICS))
        return EnrollmentQueries(listing, InMemoryCampaigns(self.world.chorus.storage))

    async def three_enrolled(self) -> tuple[UUID, list[UUID]]:
        await self.world.templates()
        customers = [await self.world.subscriber(who) for who in (ANA, BO, CY)]
        campaign = await self.world.campaign("api", journey(WAIT_THEN_SEND))
        for customer in customers:
            await self.world.enroll(campaign, customer)
        await self.world.settle()
        return campaign, customers


class TestCampaignEnrollments:
    async def test_an_entry_shows_its_step_the_reason_and_what_it_waits_for(self) -> None:
        listed = Listed()
        campaign, (ana, *_) = await listed.three_enrolled()
        found = await listed.queries().of_campaign("api")
        assert found.campaign.campaign_id == campaign
        first = found.page.items[-1]
        assert (first.customer_id, first.status, first.step) == (ana, "active", "a-day-later")
        assert first.reason
        assert first.waiting_for == "time"
        assert first.waiting_until == listed.world.clock.now() + DAY
        assert first.source == "api"

    async def test_pages_follow_the_cursor_newest_entry_first_without_overlap(self) -> None:
        listed = Listed()
        _, customers = await listed.three_enrolled()
        queries = listed.queries()
        first = await queries.of_campaign("api", limit=2)
        assert first.page.next_cursor is not None
        rest = await queries.of_campaign("api", limit=2, after=first.page.next_cursor)
        assert rest.page.next_cursor is None
        seen = [view.customer_id for view in first.page.items + rest.page.items]
        assert seen == customers[::-1]

    async def test_a_cursor_not_handed_out_is_refused(self) -> None:
        listed = Listed()
        await listed.three_enrolled()
        with pytest.raises(InvalidEnrollmentCursor):
            await listed.queries().of_campaign("api", after="not-a-cursor")

    async def test_status_and_step_filter_the_page(self) -> None:
        listed = Listed()
        campaign, _ = await listed.three_enrolled()
        await listed.world.later(DAY)
        await listed.world.change(campaign, "archive", "season over")
        queries = listed.queries()
        exited = await queries.of_campaign("api", status=EnrollmentStatus.EXITED)
        assert len(exited.page.items) == 3
        assert {view.exit_reason for view in exited.page.items} != {None}
        assert (await queries.of_campaign("api", status=EnrollmentStatus.ACTIVE)).page.items == []
        at_welcome = await queries.of_campaign("api", step="welcome")
        assert len(at_welcome.page.items) == 3

    async def test_an_unknown_campaign_is_not_found(self) -> None:
        with pytest.raises(NotFound):
            await Listed().queries().of_campaign("nope")


class TestHowAnEnrollmentEnds:
    async def test_a_goal_reached_lists_it_converted_with_why_it_left(self) -> None:
        listed = Listed()
        await listed.world.templates()
        ana = await listed.world.subscriber()
        goal = {"signal": "purchase", "within": "7d"}
        campaign = await listed.world.campaign("api", journey(WAIT_THEN_SEND, goal=goal))
        await listed.world.enroll(campaign, ana)
        await listed.world.settle()
        await listed.world.signal("purchase")
        (view,) = await listed.queries().enrollments.of_customer(ana)
        assert view.status is EnrollmentStatus.CONVERTED
        assert view.converted_at is not None
        assert view.exit_reason == "goal reached: purchase"
        assert (view.waiting_for, view.waiting_until) == (None, None)
        converted = await listed.queries().of_campaign("api", status=EnrollmentStatus.CONVERTED)
        assert [v.enrollment_id for v in converted.page.items] == [view.enrollment_id]


class TestCustomerCampaigns:
    async def test_a_customer_sees_each_journey_by_key_with_its_step(self) -> None:
        listed = Listed()
        _, (ana, *_) = await listed.three_enrolled()
        (journey_in,) = await listed.queries().of_customer(ana)
        assert journey_in.campaign is not None
        assert journey_in.campaign.key == "api"
        assert journey_in.enrollment.step == "a-day-later"


class TestIdempotentEntry:
    async def test_the_same_key_again_answers_the_entry_it_made(self) -> None:
        world = Journeys()
        ana = await world.subscriber()
        campaign = await world.campaign("api", journey(WAIT_THEN_SEND))
        made = await world.enroll.enter(campaign, ana, "request-1")
        again = await world.enroll.enter(campaign, ana, "request-1")
        assert (made.created, again.created) == (True, False)
        assert again.enrollment_id == made.enrollment_id
        assert len(world.enrollments()) == 1
        assert world.enrollments()[0].source == "api:request-1"

    async def test_another_key_while_in_the_journey_is_refused_with_the_reason(self) -> None:
        world = Journeys()
        ana = await world.subscriber()
        campaign = await world.campaign("api", journey(WAIT_THEN_SEND))
        await world.enroll.enter(campaign, ana, "request-1")
        with pytest.raises(EnrollmentRefused, match="already in the journey"):
            await world.enroll.enter(campaign, ana, "request-2")
