"""Every inbound message's classification is recorded on its customer as well as on its
conversation: once per message, without its text, on the in-memory adapters."""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import uuid4

from adapters.assistant.keywords import KeywordClassifier
from application.conversations.classified_on_customer import record_on_customer
from application.conversations.receive_inbound import Inbound
from domain.customer.aggregate import Customer
from domain.customer.keywords import INBOUND_SIGNAL
from domain.policy.vocabulary import Channel
from tests.unit.application.conversation_world import SUPPORT_ONLY, ConversationWorld, customer
from tests.unit.in_memory_chorus import claim, report

if TYPE_CHECKING:
    from uuid import UUID


async def world() -> ConversationWorld:
    found = ConversationWorld()
    await found.agent("ana", {})
    await found.team("support", "ana")
    await found.routing(SUPPORT_ONLY)
    await found.settle()
    return found


def classified(found: ConversationWorld, customer_id: UUID) -> list[Customer.Event]:
    return [
        r.event
        for r in found.store.log
        if type(r.event).__name__ == "MessageClassified" and r.event.originator_id == customer_id
    ]


class TestRecordingOnTheCustomer:
    async def test_a_classified_message_is_an_event_on_its_customer(self) -> None:
        found = await world()
        await found.inbound(customer(1), "email", "This is unacceptable, I want a refund")
        customer_id = await found.customer_of(customer(1))
        (event,) = classified(found, customer_id)
        message = (await found.conversation(customer(1))).messages[0]
        data = vars(event)
        assert data["message_id"] == message.message_id
        assert data["channel"] is Channel.EMAIL
        assert data["intent"] == "refund"
        assert data["sentiment"] == "negative"
        assert data["score"] < 0
        assert data["urgency"] in {"high", "critical"}
        assert 0 < data["confidence"] <= 1
        assert data["received_at"] == message.at
        assert data["unknown_reason"] is None

    async def test_the_text_is_never_on_the_customer(self) -> None:
        found = await world()
        await found.inbound(customer(1), "sms", "my parcel never came, awful")
        (event,) = classified(found, await found.customer_of(customer(1)))
        assert "parcel" not in repr(vars(event))

    async def test_a_message_no_intent_fits_is_recorded_as_unknown_with_its_reason(self) -> None:
        found = await world()
        await found.inbound(customer(1), "chat", "   ")
        events = classified(found, await found.customer_of(customer(1)))
        assert [vars(e)["intent"] for e in events] == ["unknown"]
        assert vars(events[0])["unknown_reason"] == "empty"

    async def test_each_message_is_recorded_once_even_when_delivered_and_read_again(
        self,
    ) -> None:
        found = await world()
        await found.inbound(customer(1), "email", "refund please", event_id="smtp:a1")
        await found.inbound(customer(1), "email", "refund please", event_id="smtp:a1")
        await found.inbound(customer(1), "email", "where is the parcel?")
        found.runner.position = 0  # the whole log read again, as after a crash
        await found.settle()
        events = classified(found, await found.customer_of(customer(1)))
        assert [vars(e)["intent"] for e in events] == ["refund", "delivery"]

    async def test_a_merged_customers_message_is_recorded_on_the_survivor(self) -> None:
        found = await world()
        email, phone = claim("email", "rui@example.org"), claim("phone", "+351912345678")
        await found.inbound(phone, "sms", "refund please")
        before = await found.customer_of(phone)
        await found.chorus.ingest([report("crm:1", email, kind="customer.updated")])
        email_owner = await found.customer_of(email)
        async with found.uows() as uow:
            customers = uow.repository(Customer)
            both = await customers.get([email_owner, before])
            both[email_owner].absorb(both[before], found.clock.now(), "test")
            customers.add(both[email_owner])
            customers.add(both[before])
        # A message attributed to the absorbed customer just before the merge.
        inbound = Inbound(
            uuid4(),
            before,
            Channel.SMS,
            "refund",
            found.clock.now(),
        )
        async with found.uows() as uow:
            assert await record_on_customer(
                uow, inbound, KeywordClassifier().classify("refund"), found.clock.now()
            )
        assert len(classified(found, email_owner)) == 1
        assert len(classified(found, before)) == 1  # the one from before the merge

    async def test_two_messages_of_one_customer_in_one_batch_are_both_recorded(self) -> None:
        found = await world()
        who = customer(1)
        signals = [
            report(
                f"twilio:batch-{n}",
                who,
                kind=INBOUND_SIGNAL,
                occurred_at=found.clock.now(),
                properties={"channel": channel, "text": text},
            )
            for n, (channel, text) in enumerate(
                [("email", "I want a refund"), ("whatsapp", "where is my parcel?")]
            )
        ]
        await found.chorus.ingest(signals)  # read in one page, threaded in one batch
        await found.settle()
        events = classified(found, await found.customer_of(who))
        assert [vars(e)["channel"] for e in events] == [Channel.EMAIL, Channel.WHATSAPP]
