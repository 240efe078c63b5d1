"""Erasing a customer, as the use case does it over any unit of work (here, in memory)."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

import pytest

from application.approvals.settle_approval import ApprovalAlreadySettled
from application.customer.erase_customer import EraseCustomer
from application.customer.pending_sends import ERASED
from domain.customer.aggregate import CustomerWasErased
from domain.message.aggregate import MessageStatus
from domain.policy.decision import Outcome
from domain.policy.rules import FrequencyCap
from domain.policy.vocabulary import Channel
from domain.shared.errors import NotFound
from ports.approvals import ApprovalStatus
from tests.unit.application.test_approvals import World as ApprovalWorld
from tests.unit.application.test_consent_and_sends import HELLO, MARKETING_EMAIL, subscriber
from tests.unit.application.test_delivery import Delivery
from tests.unit.in_memory_chorus import InMemoryChorus, claim

DAY = timedelta(days=1)


def erase(chorus: InMemoryChorus) -> EraseCustomer:
    return EraseCustomer(chorus.uows, chorus.clock, chorus.customers, chorus.rule_sets, chorus.ids)


class TestEraseCustomer:
    async def test_their_identities_find_no_one_and_a_new_signal_makes_a_new_customer(
        self,
    ) -> None:
        chorus = InMemoryChorus()
        ana = (await chorus.upsert((claim("email", "ana@example.org"),), {}, {})).customer_id
        erased = await erase(chorus)(ana)
        assert (erased.customer_id, erased.erased_ids, erased.erased_now) == (ana, (ana,), True)
        assert await chorus.customers.find(claim("email", "ana@example.org").identity) is None
        again = await chorus.upsert((claim("email", "ana@example.org"),), {}, {})
        assert again.created
        assert again.customer_id != ana

    async def test_a_second_erasure_answers_the_first_and_records_nothing(self) -> None:
        chorus = InMemoryChorus()
        ana = (await chorus.upsert((claim("email", "ana@example.org"),), {}, {})).customer_id
        first = await erase(chorus)(ana)
        version = (await chorus.customer(ana)).version
        chorus.clock.advance(DAY)
        again = await erase(chorus)(ana)
        assert (again.erased_ids, again.erased_at, again.erased_now) == (
            first.erased_ids,
            first.erased_at,
            False,
        )
        assert (await chorus.customer(ana)).version == version

    async def test_an_unknown_customer_is_not_found(self) -> None:
        with pytest.raises(NotFound):
            await erase(InMemoryChorus())(uuid4())

    async def test_a_merged_id_erases_its_survivor_and_everyone_merged_into_it(self) -> None:
        chorus = InMemoryChorus()
        by_email = (await chorus.upsert((claim("email", "ana@example.org"),), {}, {})).customer_id
        by_phone = (await chorus.upsert((claim("phone", "+447700900123"),), {}, {})).customer_id
        both = (claim("email", "ana@example.org"), claim("phone", "+447700900123"))
        survivor = (await chorus.upsert(both, {}, {})).customer_id
        merged = by_phone if survivor == by_email else by_email
        erased = await erase(chorus)(merged)
        assert (erased.customer_id, set(erased.erased_ids)) == (survivor, {by_email, by_phone})

    async def test_nothing_more_is_sent_to_them_not_even_what_was_deferred(self) -> None:
        chorus = InMemoryChorus()
        await chorus.publish(caps=(FrequencyCap("cap.daily", 1, DAY),))
        ana = await subscriber(chorus, Channel.EMAIL)
        await chorus.request_message(ana, MARKETING_EMAIL, content=HELLO)
        deferred = await chorus.request_message(ana, MARKETING_EMAIL, content=HELLO)
        assert deferred.decision is not None
        assert deferred.decision.outcome is Outcome.DEFER
        await erase(chorus)(ana)
        chorus.clock.advance(DAY)
        assert await chorus.redecide_due() == 0  # ended with the erasure
        customer = await chorus.customer(ana)
        assert customer.decisions[deferred.message_id] != deferred.decision_id
        with pytest.raises(CustomerWasErased):
            await chorus.request_message(ana, MARKETING_EMAIL)


class TestWhatWasStillToBeSent:
    """Erasing a customer ends on record what was still to go to them, in the same commit."""

    async def test_a_deferred_message_is_suppressed_citing_the_erasure(self) -> None:
        chorus = InMemoryChorus()
        await chorus.publish(caps=(FrequencyCap("cap.daily", 1, DAY),))
        ana = await subscriber(chorus, Channel.EMAIL)
        await chorus.request_message(ana, MARKETING_EMAIL, content=HELLO)
        deferred = await chorus.request_message(ana, MARKETING_EMAIL, content=HELLO)
        erased = await erase(chorus)(ana)
        customer = await chorus.customer(ana)
        (ended,) = [
            e.data
            for e in chorus.storage.events.log
            if e.topic.endswith(":Customer.MessageSuppressed")
            and e.data["message_id"] == str(deferred.message_id)
        ]
        fired = ended["fired"]
        assert [(f["rule_id"], f["reason"]) for f in fired] == [("withdrawn", ERASED)]
        assert customer.erased_at == erased.erased_at  # recorded before the erasure, same commit

    async def test_a_held_message_has_its_approval_withdrawn_by_the_erasing_key(self) -> None:
        world = ApprovalWorld()
        decided = await world.held()
        chorus = world.chorus
        customer_id = decided.customer_id
        await erase(chorus)(customer_id, "lea (admin key k1)")
        record = chorus.storage.approvals[decided.decision_id]
        assert (record.status, record.settled_by, record.note) == (
            ApprovalStatus.WITHDRAWN,
            "lea (admin key k1)",
            ERASED,
        )
        assert chorus.count("Customer.ApprovalSettled") == 1
        chorus.clock.advance(timedelta(days=2))
        assert await chorus.redecide_due() == 0  # it never expires, it ended
        with pytest.raises(ApprovalAlreadySettled):
            await world.settle.approve(decided.decision_id, "lea (admin key k1)")

    async def test_a_queued_message_is_withdrawn_and_no_provider_ever_sees_it(self) -> None:
        delivery = Delivery()
        ana, message_id = await delivery.queue()
        await erase(delivery.chorus)(ana)
        message = await delivery.chorus.delivery.get(message_id)
        assert message is not None
        assert message.status is MessageStatus.SUPERSEDED
        assert message.statuses[-1].reason == (
            "withdrawn: customer erased, before a provider took it"
        )
        delivery.chorus.clock.advance(DAY)
        assert await delivery.round() == []
        assert delivery.first.sent == delivery.second.sent == []

    async def test_a_message_a_dispatcher_holds_is_withdrawn_when_its_round_fails(self) -> None:
        delivery = Delivery()
        ana, message_id = await delivery.queue()
        (held,) = await delivery.dispatch.claim(Channel.EMAIL, 10)
        await erase(delivery.chorus)(ana)
        delivery.first.fail_next("503")
        delivery.second.fail_next("503")
        await delivery.dispatch.settle([(held.message, await delivery.dispatch.send(held))])
        message = await delivery.chorus.delivery.get(message_id)
        assert message is not None
        assert message.status is MessageStatus.SUPERSEDED

    async def test_a_message_a_provider_took_keeps_its_history(self) -> None:
        delivery = Delivery()
        ana, message_id = await delivery.queue()
        await delivery.round()
        await erase(delivery.chorus)(ana)
        message = await delivery.chorus.delivery.get(message_id)
        assert message is not None
        assert (message.status, message.provider) == (MessageStatus.SENT, "mail-a")
        assert delivery.chorus.count("Message.GivenUp") == 0
