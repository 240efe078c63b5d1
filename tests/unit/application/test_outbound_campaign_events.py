"""Campaign events go out on `campaigns.*`: its changes of status and versions about the
campaign, and each entry into a journey about its customer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import uuid4

import msgspec
import msgspec.structs

from application.outbound.payloads import (
    CampaignChangedV1,
    CampaignVersionPublishedV1,
    EnrollmentConvertedV1,
    EnrollmentEnteredV1,
    EnrollmentExitedV1,
    EnrollmentStepTakenV1,
)
from application.processes.outbound_events import OutboundEvents
from domain.campaign.aggregate import Campaign
from domain.campaign.enrollment import Enrollment
from domain.campaign.progress import Conversion, Leave, Move, Progress
from domain.catalog import topic_of
from tests.unit.application.test_outbound_events import CODEC, T0, RecordingPublisher, decode
from tests.unit.domain.campaign.journeys import journey, read, send

if TYPE_CHECKING:
    from uuid import UUID

    from eventsourcing.domain import Aggregate, CanMutateAggregate

    from ports.bus import OutboundMessage

STEPS = {"welcome": send()}


def stored(*aggregates: Aggregate) -> list[CanMutateAggregate[UUID]]:
    return [
        CODEC.decode(*msgspec.structs.astuple(CODEC.encode(e)))
        for a in aggregates
        for e in a.collect_events()
    ]


async def publish(*aggregates: Aggregate) -> list[OutboundMessage]:
    publisher = RecordingPublisher()
    await OutboundEvents(publisher, prefix="chorus").handle(stored(*aggregates), None)
    return publisher.messages


def campaign() -> Campaign:
    return Campaign.create("welcome", "Welcome", read(journey(STEPS)), "ana (marketer)", T0)


class TestCampaignEvents:
    async def test_each_change_of_status_goes_out_about_the_campaign_with_who_acted(self) -> None:
        made = campaign()
        made.activate("ana (marketer)", T0)
        made.pause("ana (marketer)", T0)
        made.resume("ana (marketer)", T0)
        made.archive("bo (admin)", "season over", T0)
        messages = await publish(made)
        assert [m.subject for m in messages] == [
            "chorus.out.campaigns.activated",
            "chorus.out.campaigns.paused",
            "chorus.out.campaigns.resumed",
            "chorus.out.campaigns.archived",
        ]
        archived = decode(messages[-1], CampaignChangedV1)
        assert archived.subject == str(made.id)
        assert archived.type == "chorus.campaign.archived"
        assert archived.data == CampaignChangedV1(
            campaign_id=made.id, by="bo (admin)", reason="season over"
        )
        assert decode(messages[0], CampaignChangedV1).data.reason is None

    async def test_a_live_edit_goes_out_as_the_version_it_published(self) -> None:
        made = campaign()
        made.activate("ana (marketer)", T0)
        made.collect_events()
        changed: dict[str, Any] = journey(STEPS)
        made.edit("Welcome back", read(changed), "ana (marketer)", T0)
        messages = await publish(made)
        assert [m.subject for m in messages] == ["chorus.out.campaigns.version_published"]
        data = decode(messages[0], CampaignVersionPublishedV1).data
        assert (data.version, data.name, data.migrated) == (2, "Welcome back", False)


class TestEnrollmentEvents:
    async def test_an_entry_goes_out_about_its_customer(self) -> None:
        customer = uuid4()
        campaign_id = uuid4()
        entered = Enrollment.enter(campaign_id, 3, customer, 2, "api", T0)
        (message,) = await publish(entered)
        assert message.subject == "chorus.out.campaigns.enrollment_entered"
        envelope = decode(message, EnrollmentEnteredV1)
        assert envelope.subject == str(customer)
        assert envelope.data == EnrollmentEnteredV1(
            enrollment_id=entered.id,
            campaign_id=campaign_id,
            campaign_version=3,
            customer_id=customer,
            entry=2,
            source="api",
        )

    async def test_a_step_a_conversion_and_an_exit_go_out_about_the_customer(self) -> None:
        customer, campaign_id = uuid4(), uuid4()
        enrolled = Enrollment.enter(campaign_id, 1, customer, 1, "api", T0)
        enrolled.collect_events()
        enrolled.record(
            Progress(
                (
                    Move("whatsapp", None, "the journey begins"),
                    Conversion("order.placed", "o-1", T0),
                    Leave("goal reached: order.placed"),
                )
            ),
            T0,
        )
        step, converted, exited = await publish(enrolled)
        assert [m.subject for m in (step, converted, exited)] == [
            "chorus.out.campaigns.step_taken",
            "chorus.out.campaigns.enrollment_converted",
            "chorus.out.campaigns.enrollment_exited",
        ]
        assert {decode(m, Any).subject for m in (step, converted, exited)} == {str(customer)}
        assert decode(step, EnrollmentStepTakenV1).data == EnrollmentStepTakenV1(
            enrollment_id=enrolled.id,
            campaign_id=campaign_id,
            customer_id=customer,
            step="whatsapp",
            came_from=None,
            reason="the journey begins",
            arm=None,
        )
        assert decode(converted, EnrollmentConvertedV1).data.signal_event_id == "o-1"
        assert decode(exited, EnrollmentExitedV1).data == EnrollmentExitedV1(
            enrollment_id=enrolled.id,
            campaign_id=campaign_id,
            customer_id=customer,
            reason="goal reached: order.placed",
            split=None,
            arm=None,
        )

    async def test_an_exit_stored_before_it_named_its_customer_goes_out_about_its_enrollment(
        self,
    ) -> None:
        enrollment = uuid4()
        payload = msgspec.json.encode({"reason": "archived", "split": None, "arm": None})
        old = CODEC.decode(enrollment, 3, topic_of(Enrollment.Exited), 1, T0, payload)
        publisher = RecordingPublisher()
        await OutboundEvents(publisher).handle([old], None)
        (message,) = publisher.messages
        envelope = decode(message, EnrollmentExitedV1)
        assert envelope.subject == str(enrollment)
        assert (envelope.data.campaign_id, envelope.data.customer_id) == (None, None)
