"""Which customer events go out on which subject, in which envelope and payload, in what order."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

import msgspec
import msgspec.structs
import pytest

from adapters.postgres.codec import EventCodec
from adapters.postgres.processes import ProcessProjection
from application.outbound.events import CUSTOMER_EVENTS, OUTBOUND_EVENTS, OutboundEvent
from application.outbound.payloads import (
    CloudEvent,
    ConsentChangedV1,
    CustomerRegisteredV1,
    CustomersMergedV1,
    IdentityLinkedV1,
    LinkedIdentityV1,
    ProfileUpdatedV1,
    SegmentEnteredV1,
    SegmentExitedV1,
    SuppressionAddedV1,
    SuppressionLiftedV1,
)
from application.processes.outbound_events import OutboundEvents, in_rounds
from domain.catalog import class_of
from domain.customer.aggregate import Customer
from domain.customer.contact import ConsentRecord
from domain.customer.identities import IdentityClaim, IdentityNormalizer, Verification
from domain.policy.vocabulary import Channel, Purpose
from domain.segments.aggregate import Membership, membership_id, segment_id
from ports.bus import OutboundMessage, PublishFailed

if TYPE_CHECKING:
    from collections.abc import Sequence

    from eventsourcing.domain import CanMutateAggregate

GB = IdentityNormalizer("GB")
T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
CODEC = EventCodec()
DOCS = Path(__file__).parents[3] / "docs" / "events.md"


def claim(text: str, verification: Verification = Verification.UNVERIFIED) -> IdentityClaim:
    return IdentityClaim(GB.parse(text), verification)


def stored(*customers: Customer) -> list[CanMutateAggregate[UUID]]:
    """The customers' pending events as they are read back from the log."""
    return [
        CODEC.decode(*msgspec.structs.astuple(CODEC.encode(e)))
        for c in customers
        for e in c.collect_events()
    ]


class RecordingPublisher:
    def __init__(self, fail: bool = False) -> None:
        self.batches: list[list[OutboundMessage]] = []
        self.fail = fail

    async def publish(self, messages: Sequence[OutboundMessage]) -> None:
        if self.fail:
            raise PublishFailed("no acks")
        self.batches.append(list(messages))

    @property
    def messages(self) -> list[OutboundMessage]:
        return [m for batch in self.batches for m in batch]


def decode(message: OutboundMessage, payload: type[Any]) -> CloudEvent[Any]:
    return msgspec.json.decode(message.payload, type=CloudEvent[payload])  # type: ignore[valid-type]


async def publish(*customers: Customer, prefix: str = "chorus") -> list[OutboundMessage]:
    publisher = RecordingPublisher()
    await OutboundEvents(publisher, prefix=prefix).handle(stored(*customers), None)
    return publisher.messages


def ana() -> Customer:
    return Customer.register(uuid4(), T0, (claim("email:Ana@Example.org"),))


class TestCustomerEvents:
    async def test_a_registration_goes_out_as_a_versioned_cloudevent(self) -> None:
        customer = ana()
        (message,) = await publish(customer)
        assert message.subject == "chorus.out.customers.registered"
        assert message.message_id == f"{customer.id}:1"
        assert message.headers["Content-Type"].startswith("application/cloudevents+json")
        envelope = decode(message, CustomerRegisteredV1)
        assert envelope == CloudEvent(
            id=f"{customer.id}:1",
            source="chorus",
            type="chorus.customer.registered",
            subject=str(customer.id),
            time=T0,
            dataschema="urn:chorus:events:customers.registered:v1",
            version=1,
            data=CustomerRegisteredV1(
                customer_id=customer.id,
                identities=[
                    LinkedIdentityV1(identity="email:ana@example.org", verification="unverified")
                ],
            ),
        )
        assert envelope.specversion == "1.0"
        assert envelope.datacontenttype == "application/json"

    async def test_the_wire_form_is_plain_json_with_utc_times(self) -> None:
        customer = ana()
        (message,) = await publish(customer)
        wire = msgspec.json.decode(message.payload)
        assert wire["time"] == "2026-03-01T12:00:00Z"
        assert wire["data"] == {
            "customer_id": str(customer.id),
            "identities": [{"identity": "email:ana@example.org", "verification": "unverified"}],
        }

    async def test_the_prefix_is_the_first_token_of_every_subject(self) -> None:
        (message,) = await publish(ana(), prefix="staging")
        assert message.subject == "staging.out.customers.registered"
        assert decode(message, CustomerRegisteredV1).type == "chorus.customer.registered"

    async def test_a_linked_identity_carries_its_verification(self) -> None:
        customer = ana()
        customer.link(claim("account_id:42", Verification.AUTHENTICATED), T0)
        _, linked = await publish(customer)
        assert linked.subject == "chorus.out.customers.identity_linked"
        assert linked.message_id == f"{customer.id}:2"
        assert decode(linked, IdentityLinkedV1).data == IdentityLinkedV1(
            customer_id=customer.id, identity="account_id:42", verification="authenticated"
        )

    async def test_a_profile_update_carries_only_the_changes_and_removed_attributes_as_null(
        self,
    ) -> None:
        customer = ana()
        customer.update_profile(T0, {"first_name": "Ana"}, {"tier": "gold", "visits": 3})
        customer.update_profile(T0, {}, {"tier": None})
        _, first, second = await publish(customer)
        assert first.subject == second.subject == "chorus.out.customers.profile_updated"
        assert decode(first, ProfileUpdatedV1).data == ProfileUpdatedV1(
            customer_id=customer.id,
            profile={"first_name": "Ana"},
            attributes={"tier": "gold", "visits": 3},
        )
        assert decode(second, ProfileUpdatedV1).data.attributes == {"tier": None}

    async def test_a_consent_change_names_channel_purpose_and_source(self) -> None:
        customer = ana()
        customer.change_consent(ConsentRecord(Channel.SMS, Purpose.MARKETING, True, "form"), T0)
        customer.change_consent(ConsentRecord(Channel.SMS, None, False, "STOP"), T0)
        _, grant, stop = await publish(customer)
        assert grant.subject == "chorus.out.customers.consent_changed"
        assert decode(grant, ConsentChangedV1).data == ConsentChangedV1(
            customer_id=customer.id, channel="sms", purpose="marketing", granted=True, source="form"
        )
        assert decode(stop, ConsentChangedV1).data == ConsentChangedV1(
            customer_id=customer.id, channel="sms", purpose=None, granted=False, source="STOP"
        )

    async def test_suppressions_added_and_lifted_go_out_on_their_own_subjects(self) -> None:
        customer = ana()
        customer.suppress(None, "complaint", T0)
        customer.lift_suppression(None, "operator", T0)
        _, added, lifted = await publish(customer)
        assert added.subject == "chorus.out.customers.suppression_added"
        assert decode(added, SuppressionAddedV1).data == SuppressionAddedV1(
            customer_id=customer.id, channel=None, reason="complaint"
        )
        assert lifted.subject == "chorus.out.customers.suppression_lifted"
        assert decode(lifted, SuppressionLiftedV1).data == SuppressionLiftedV1(
            customer_id=customer.id, channel=None, source="operator"
        )

    async def test_a_merge_goes_out_once_with_both_ids_and_what_moved(self) -> None:
        survivor = ana()
        merged = Customer.register(
            uuid4(), T0, (claim("phone:020 7946 0958", Verification.VERIFIED),)
        )
        merged.update_profile(T0, {"time_zone": "Europe/London"}, {"vip": True})
        merged.change_consent(ConsentRecord(Channel.SMS, Purpose.MARKETING, True, "form"), T0)
        survivor.absorb(merged, T0, "identity:email:ana@example.org")
        messages = await publish(merged, survivor)
        merges = [m for m in messages if m.subject == "chorus.out.customers.merged"]
        (merge,) = merges
        envelope = decode(merge, CustomersMergedV1)
        assert envelope.subject == str(survivor.id)
        assert envelope.id == f"{survivor.id}:2"
        assert envelope.data == CustomersMergedV1(
            survivor_id=survivor.id,
            merged_id=merged.id,
            reason="identity:email:ana@example.org",
            identities=[LinkedIdentityV1(identity="phone:+442079460958", verification="verified")],
            profile={"time_zone": "Europe/London"},
            attributes={"vip": True},
        )
        assert len(messages) == 5  # 2 registrations, profile, consent, merge

    async def test_inbound_messages_decisions_and_inherited_consents_stay_inside(self) -> None:
        published = {entry.topic.rpartition(".")[2] for entry in CUSTOMER_EVENTS}
        assert published == {
            "Registered",
            "IdentityLinked",
            "ProfileUpdated",
            "ConsentChanged",
            "SuppressionAdded",
            "SuppressionLifted",
            "Absorbed",
            "Erased",
        }
        projection = OutboundEvents(RecordingPublisher())
        customer = ana()
        customer.note_inbound(Channel.SMS, T0, T0)
        events = stored(customer)
        assert [type(e) in projection.handles for e in events] == [True, False]

    async def test_the_same_event_gives_the_same_bytes_and_id(self) -> None:
        customer = ana()
        events = stored(customer)
        publishers = [RecordingPublisher(), RecordingPublisher()]
        for publisher in publishers:
            await OutboundEvents(publisher).handle(events, None)
        assert publishers[0].messages == publishers[1].messages

    async def test_a_failed_publish_fails_the_page(self) -> None:
        with pytest.raises(PublishFailed):
            await OutboundEvents(RecordingPublisher(fail=True)).handle(stored(ana()), None)


class TestSegmentEvents:
    async def test_an_entry_and_an_exit_go_out_about_their_customer_with_the_segment(
        self,
    ) -> None:
        customer, segment = uuid4(), segment_id("buyers")
        fields = {
            "originator_id": membership_id(segment, customer),
            "timestamp": T0,
            "segment_id": segment,
            "segment_key": "buyers",
            "segment_version": 2,
            "customer_id": customer,
        }
        entered = Membership.Entered(originator_version=1, **fields)  # type: ignore[call-arg]
        exited = Membership.Exited(originator_version=2, reason="condition", **fields)  # type: ignore[call-arg]
        publisher = RecordingPublisher()
        events = [
            CODEC.decode(*msgspec.structs.astuple(CODEC.encode(e))) for e in (entered, exited)
        ]
        await OutboundEvents(publisher).handle(events, None)
        first, second = publisher.messages
        assert (first.subject, second.subject) == (
            "chorus.out.segments.entered",
            "chorus.out.segments.exited",
        )
        assert decode(first, SegmentEnteredV1).subject == str(customer)
        assert decode(second, SegmentExitedV1).data == SegmentExitedV1(
            customer_id=customer,
            segment="buyers",
            segment_id=segment,
            segment_version=2,
            reason="condition",
        )
        assert second.message_id == f"{membership_id(segment, customer)}:2"


class TestOrder:
    async def test_a_customers_next_event_waits_for_the_previous_ones_ack(self) -> None:
        first, second = ana(), Customer.register(uuid4(), T0, (claim("email:bo@example.org"),))
        first.update_profile(T0, {"first_name": "Ana"}, {})
        first.suppress(Channel.EMAIL, "bounce", T0)
        publisher = RecordingPublisher()
        await OutboundEvents(publisher).handle(stored(first, second), None)
        assert [[m.message_id for m in batch] for batch in publisher.batches] == [
            [f"{first.id}:1", f"{second.id}:1"],
            [f"{first.id}:2"],
            [f"{first.id}:3"],
        ]

    async def test_a_merge_waits_for_both_customers_earlier_events(self) -> None:
        survivor = ana()
        merged = Customer.register(uuid4(), T0, (claim("email:bo@example.org"),))
        merged.update_profile(T0, {"first_name": "Bo"}, {})
        merged.suppress(None, "manual", T0)
        survivor.absorb(merged, T0, "manual")
        survivor.update_profile(T0, {"last_name": "Lima"}, {})
        publisher = RecordingPublisher()
        await OutboundEvents(publisher).handle(stored(merged, survivor), None)
        rounds = [[m.subject.rpartition(".")[2] for m in batch] for batch in publisher.batches]
        assert rounds == [
            ["registered", "registered"],
            ["profile_updated"],
            ["suppression_added"],
            ["merged"],
            ["profile_updated"],
        ]

    def test_rounds_keep_log_order_within_each_customer(self) -> None:
        a, b, c = uuid4(), uuid4(), uuid4()

        def m(n: int) -> OutboundMessage:
            return OutboundMessage("s", b"", str(n))

        log: list[tuple[tuple[UUID, ...], OutboundMessage]] = [
            ((a,), m(1)),
            ((b,), m(2)),
            ((a,), m(3)),
            ((c,), m(4)),
            ((b, c), m(5)),
            ((c,), m(6)),
            ((a,), m(7)),
        ]
        assert [[x.message_id for x in r] for r in in_rounds(log)] == [
            ["1", "2", "4"],
            ["3", "5"],
            ["6", "7"],
        ]


class TestCatalogue:
    def test_a_topic_mapped_twice_is_refused(self) -> None:
        with pytest.raises(ValueError, match="mapped twice"):
            OutboundEvents(RecordingPublisher(), events=CUSTOMER_EVENTS + CUSTOMER_EVENTS[:1])

    def test_a_new_entry_is_all_it_takes_to_publish_another_topic(self) -> None:
        extra = OutboundEvent(
            "domain.customer.aggregate:Customer.InboundReceived",
            "customers.wrote",
            "chorus.customer.wrote",
            1,
            lambda e: IdentityLinkedV1(customer_id=e.originator_id, identity="", verification=""),
        )
        projection = OutboundEvents(RecordingPublisher(), events=(*OUTBOUND_EVENTS, extra))
        assert class_of(extra.topic) in projection.handles

    def test_subjects_and_types_are_unique(self) -> None:
        assert len({e.subject for e in OUTBOUND_EVENTS}) == len(OUTBOUND_EVENTS)
        assert len({e.type for e in OUTBOUND_EVENTS}) == len(OUTBOUND_EVENTS)

    def test_every_subject_is_documented_with_its_version(self) -> None:
        docs = DOCS.read_text()
        for entry in OUTBOUND_EVENTS:
            heading = rf"^## `<prefix>\.out\.{re.escape(entry.subject)}` v{entry.version}\b"
            assert re.search(heading, docs, re.MULTILINE), entry.subject
            assert entry.type in docs

    def test_it_owns_no_tables_so_it_is_never_rebuilt(self) -> None:
        process = OutboundEvents(RecordingPublisher())
        assert ProcessProjection(process, lambda conn: None).tables == ()
