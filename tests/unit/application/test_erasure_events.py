"""An erasure goes out to internal services, who must forget the customer too."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import msgspec

from adapters.postgres.codec import EventCodec
from application.outbound.payloads import CloudEvent, CustomerErasedV1
from application.processes.outbound_events import OutboundEvents
from domain.customer.aggregate import Customer
from domain.customer.identities import Identity, IdentityClaim
from tests.unit.application.test_outbound_events import RecordingPublisher

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def customer(email: str) -> Customer:
    return Customer.register(uuid4(), T0, (IdentityClaim(Identity("email", email)),))


class TestTheErasureEvent:
    async def test_it_names_the_customer_and_everyone_merged_into_them_and_nothing_else(
        self,
    ) -> None:
        survivor, merged = customer("ana@example.org"), customer("a.lima@example.org")
        survivor.absorb(merged, T0, "same person")
        survivor.collect_events()
        survivor.erase(T0)
        codec = EventCodec()
        events = [
            codec.decode(*msgspec.structs.astuple(codec.encode(e)))
            for e in survivor.collect_events()
        ]
        publisher = RecordingPublisher()
        await OutboundEvents(publisher).handle(events, None)
        (message,) = publisher.messages
        assert message.subject == "chorus.out.customers.erased"
        envelope = msgspec.json.decode(message.payload, type=CloudEvent[CustomerErasedV1])
        assert envelope.type == "chorus.customer.erased"
        assert envelope.data == CustomerErasedV1(
            customer_id=survivor.id, erased_ids=[survivor.id, merged.id]
        )
        assert b"example.org" not in message.payload
