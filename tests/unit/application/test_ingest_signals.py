"""Signals onto their customers: exactly once, registering and merging customers as they say."""

from __future__ import annotations

from datetime import timedelta

from domain.customer.identities import Verification
from domain.policy.vocabulary import Channel, Purpose
from domain.signals.aggregate import signal_id_for
from domain.signals.document import ReceivedSignal
from domain.signals.intake import intake_id_for
from ports.intake import Attribution
from tests.unit.in_memory_chorus import InMemoryChorus, claim, received, report

ANA = claim("email", "ana@example.org")
ANA_PHONE = claim("phone", "+351912345678")
BEA = claim("email", "bea@example.org")


class TestIngestSignals:
    async def test_a_signal_from_an_unknown_identity_registers_its_customer(self) -> None:
        chorus = InMemoryChorus()
        (outcome,) = await chorus.ingest([report("e-1", ANA)])
        assert outcome.status == "recorded"
        assert outcome.customer_id is not None
        assert await chorus.owner("email", "ana@example.org") == outcome.customer_id
        customer = await chorus.customer(outcome.customer_id)
        assert customer.identities == {ANA.identity: Verification.UNVERIFIED}
        assert chorus.count("Signal.Recorded") == 1

    async def test_a_second_signal_with_the_same_id_changes_nothing(self) -> None:
        chorus = InMemoryChorus()
        await chorus.ingest([report("e-1", ANA)])
        log = list(chorus.storage.events.log)
        (again,) = await chorus.ingest([report("e-1", BEA)])
        assert (again.status, again.customer_id) == ("duplicate", None)
        assert chorus.storage.events.log == log
        assert await chorus.owner("email", "bea@example.org") is None

    async def test_the_same_id_twice_in_one_batch_is_recorded_once(self) -> None:
        chorus = InMemoryChorus()
        first, second = await chorus.ingest([report("e-1", ANA), report("e-1", ANA)])
        assert (first.status, second.status) == ("recorded", "duplicate")
        assert chorus.count("Signal.Recorded") == 1

    async def test_a_signal_from_a_known_identity_goes_on_its_customer(self) -> None:
        chorus = InMemoryChorus()
        (first,) = await chorus.ingest([report("e-1", ANA)])
        (second,) = await chorus.ingest([report("e-2", ANA)])
        assert first.customer_id is not None
        assert second.customer_id == first.customer_id
        assert chorus.count("Customer.Registered") == 1
        timeline = await chorus.customers.timeline(first.customer_id, limit=10, before=None)
        assert [e.stream_id for e in timeline.events if e.type == "Recorded"] == [
            signal_id_for("e-2"),
            signal_id_for("e-1"),
        ]

    async def test_a_signal_linking_two_known_customers_merges_them_into_the_oldest(
        self,
    ) -> None:
        chorus = InMemoryChorus()
        (older,) = await chorus.ingest([report("e-1", ANA)])
        chorus.clock.advance(timedelta(minutes=1))
        (newer,) = await chorus.ingest([report("e-2", ANA_PHONE)])
        (linked,) = await chorus.ingest([report("e-3", ANA_PHONE, ANA)])
        assert older.customer_id is not None
        assert newer.customer_id is not None
        assert linked.customer_id == older.customer_id
        survivor = await chorus.customer(older.customer_id)
        assert set(survivor.identities) == {ANA.identity, ANA_PHONE.identity}
        assert survivor.absorbed == (newer.customer_id,)
        assert (await chorus.customer(newer.customer_id)).merged_into == older.customer_id
        assert await chorus.owner("phone", "+351912345678") == older.customer_id
        assert await chorus.customers.survivor(newer.customer_id) == older.customer_id

    async def test_the_oldest_is_the_first_in_the_log_whatever_the_clock_said(self) -> None:
        chorus = InMemoryChorus()
        (older,) = await chorus.ingest([report("e-1", ANA)])
        chorus.clock.advance(-timedelta(days=1))  # the manual clock went back
        (newer,) = await chorus.ingest([report("e-2", BEA)])
        (linked,) = await chorus.ingest([report("e-3", BEA, ANA)])
        assert linked.customer_id == older.customer_id != newer.customer_id

    async def test_a_consent_signal_changes_its_customers_consent(self) -> None:
        chorus = InMemoryChorus()
        withdrawn = report(
            "e-1",
            ANA,
            kind="consent.withdrawn",
            properties={"channel": "email", "purpose": "marketing"},
        )
        (outcome,) = await chorus.ingest([withdrawn])
        assert outcome.customer_id is not None
        customer = await chorus.customer(outcome.customer_id)
        assert not customer.consents[(Channel.EMAIL, Purpose.MARKETING)].granted

    async def test_profile_facts_a_signal_carries_reach_its_customer(self) -> None:
        chorus = InMemoryChorus()
        await chorus.ingest([report("e-1", ANA)])
        (outcome,) = await chorus.ingest(
            [report("e-2", ANA, profile={"first_name": "Ana"}, attributes={"tier": "gold"})]
        )
        assert outcome.customer_id is not None
        customer = await chorus.customer(outcome.customer_id)
        assert (customer.profile.first_name, customer.attributes) == ("Ana", {"tier": "gold"})


class TestAttribution:
    async def test_received_signals_are_attributed_from_the_log_once_each(self) -> None:
        chorus = InMemoryChorus()
        assert await chorus.accept([received("e-1", "ana@example.org")]) == [True]
        assert await chorus.accept([received("e-1", "ana@example.org")]) == [False]
        assert await chorus.accept.attributed(["e-1"], within=0) == {}
        await chorus.attribute_received()
        await chorus.attribute_received()  # a page applied again after a crash
        owner = await chorus.owner("email", "ana@example.org")
        assert owner is not None
        assert await chorus.accept.attributed(["e-1"], within=0) == {"e-1": Attribution(owner)}
        assert chorus.count("Signal.Recorded") == 1

    async def test_a_signal_that_no_longer_parses_is_refused_with_the_reason(self) -> None:
        chorus = InMemoryChorus()
        await chorus.intake.receive([received("e-1", "ana@example.org")], chorus.clock.now())
        await chorus.intake.receive([ReceivedSignal("e-2", b"{}")], chorus.clock.now())
        await chorus.attribute_received()
        found = await chorus.accept.attributed(["e-1", "e-2"], within=0)
        assert found["e-1"].customer_id is not None
        assert found["e-2"].refused is not None
        assert await chorus.intake.refused([intake_id_for("e-1"), intake_id_for("e-2")]) == {
            intake_id_for("e-2")
        }

    async def test_an_opt_out_reaches_its_customer_before_the_answer(self) -> None:
        chorus = InMemoryChorus()
        opt_out = report("e-1", ANA, kind="consent.withdrawn", properties={"channel": "sms"})
        signal = received("e-1", "ana@example.org", kind="consent.withdrawn")
        await chorus.accept([ReceivedSignal(signal.event_id, signal.payload, opt_out)])
        owner = await chorus.owner("email", "ana@example.org")
        assert owner is not None
        assert Channel.SMS in (await chorus.customer(owner)).opted_out
