"""The in-memory unit of work keeps the promises of the port, as PostgreSQL's does."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from adapters.inmemory.customer_records import InMemoryCustomerRecords
from adapters.inmemory.storage import InMemoryStorage
from adapters.inmemory.unit_of_work import InMemoryUnitsOfWork
from domain.customer.aggregate import Customer
from domain.customer.identities import Identity, IdentityClaim
from domain.message.aggregate import Message
from domain.message.content import Content
from domain.policy.decision import SendRequest
from domain.policy.vocabulary import Channel, Purpose
from domain.signals.aggregate import Signal, SignalReport
from ports.unit_of_work import ConcurrencyConflict, EarlierRequest, Leased

AT = datetime(2026, 12, 5, 9, tzinfo=UTC)
ANA = Identity("email", "ana@example.org")
BEA = Identity("email", "bea@example.org")
ANA_ID, BEA_ID, MESSAGE_ID, DECISION_ID = (UUID(int=n) for n in (1, 2, 3, 4))


def register(customer_id: UUID, *identities: Identity) -> Customer:
    return Customer.register(customer_id, AT, tuple(IdentityClaim(i) for i in identities))


def request(priority: int = 0) -> SendRequest:
    return SendRequest("growth", Purpose.MARKETING, (Channel.EMAIL,), priority=priority)


async def committed(uows: InMemoryUnitsOfWork, *customers: Customer) -> None:
    async with uows() as uow:
        uow.repository(Customer).add(*customers)


class FailedOnPurpose(Exception):
    pass


class TestRepositories:
    async def test_an_added_aggregate_is_read_back_as_committed_in_a_copy_of_its_own(
        self,
    ) -> None:
        uows = InMemoryUnitsOfWork()
        ana = register(ANA_ID, ANA)
        await committed(uows, ana)
        async with uows() as uow:
            loaded = (await uow.repository(Customer).get([ANA_ID]))[ANA_ID]
        assert loaded is not ana
        assert (loaded.id, loaded.version, loaded.identities) == (ANA_ID, 1, ana.identities)

    async def test_nothing_is_written_when_the_block_raises(self) -> None:
        uows = InMemoryUnitsOfWork()

        async def failing() -> None:
            async with uows() as uow:
                uow.repository(Customer).add(register(ANA_ID, ANA))
                await uow.identities.claim({ANA: ANA_ID})
                raise FailedOnPurpose

        with pytest.raises(FailedOnPurpose):
            await failing()
        assert uows.storage.events.log == []
        assert uows.storage.identities == {}

    async def test_a_save_from_a_stale_copy_conflicts_and_writes_nothing(self) -> None:
        storage = InMemoryStorage()
        here, elsewhere = InMemoryUnitsOfWork(storage), InMemoryUnitsOfWork(storage)
        await committed(here, register(ANA_ID, ANA), register(BEA_ID, BEA))

        async def overtaken() -> None:
            async with here() as uow:
                customers = await uow.repository(Customer).get([ANA_ID, BEA_ID])
                async with elsewhere() as other:
                    racing = (await other.repository(Customer).get([ANA_ID]))[ANA_ID]
                    racing.update_profile(AT, {"first_name": "Ana"}, {})
                    other.repository(Customer).add(racing)
                for customer in customers.values():
                    customer.update_profile(AT, {"last_name": "Lima"}, {})
                uow.repository(Customer).add(*customers.values())
                await uow.identities.claim({Identity("phone", "+351912345678"): BEA_ID})

        with pytest.raises(ConcurrencyConflict):
            await overtaken()
        assert storage.events.version_of(ANA_ID) == 2
        assert storage.events.version_of(BEA_ID) == 1
        assert storage.identities == {}

    async def test_a_repository_hands_out_only_aggregates_of_its_type(self) -> None:
        uows = InMemoryUnitsOfWork()
        await committed(uows, register(ANA_ID, ANA))
        async with uows() as uow:
            assert await uow.repository(Message).get([ANA_ID]) == {}
            with pytest.raises(TypeError):
                uow.repository(Message).add(register(BEA_ID, BEA))  # type: ignore[arg-type]

    async def test_streams_come_oldest_first_in_the_order_they_were_committed(self) -> None:
        uows = InMemoryUnitsOfWork()
        await committed(uows, register(BEA_ID, BEA))
        await committed(uows, register(ANA_ID, ANA))
        async with uows() as uow:
            customers = uow.repository(Customer)
            assert await customers.oldest_first([ANA_ID, BEA_ID, MESSAGE_ID]) == [BEA_ID, ANA_ID]
            assert await customers.existing([ANA_ID, MESSAGE_ID]) == {ANA_ID}

    async def test_a_loose_creation_event_is_recorded_once(self) -> None:
        uows = InMemoryUnitsOfWork()
        report = SignalReport("e-1", "page.viewed", AT, (IdentityClaim(ANA),))
        async with uows() as uow:
            uow.repository(Signal).record(Signal.recorded(report, ANA_ID, AT))
        with pytest.raises(ConcurrencyConflict):
            async with uows() as uow:
                uow.repository(Signal).record(Signal.recorded(report, ANA_ID, AT))
        async with uows() as uow:
            signal = (await uow.repository(Signal).get([report.signal_id]))[report.signal_id]
        assert (signal.customer_id, signal.event_id) == (ANA_ID, "e-1")
        assert uows.storage.events.log[0].subject_id == ANA_ID

    async def test_commands_on_one_customer_in_one_process_wait_their_turn(self) -> None:
        uows = InMemoryUnitsOfWork()
        await committed(uows, register(ANA_ID, ANA))

        async def rename(name: str, hold: asyncio.Event | None) -> None:
            async with uows() as uow:
                ana = (await uow.repository(Customer).get([ANA_ID]))[ANA_ID]
                if hold is not None:
                    await hold.wait()
                ana.update_profile(AT, {"first_name": name}, {})
                uow.repository(Customer).add(ana)

        hold = asyncio.Event()
        first = asyncio.create_task(rename("Ana", hold))
        await asyncio.sleep(0)
        second = asyncio.create_task(rename("Anita", None))
        await asyncio.sleep(0)
        hold.set()
        await asyncio.gather(first, second)  # the second read after the first committed
        customer = await InMemoryCustomerRecords(uows.storage).get(ANA_ID)
        assert customer is not None
        assert (customer.version, customer.profile.first_name) == (3, "Anita")


class TestIdentityIndex:
    async def test_claimed_identities_resolve_for_others_once_committed(self) -> None:
        storage = InMemoryStorage()
        uows = InMemoryUnitsOfWork(storage)
        async with uows() as uow:
            await uow.identities.claim({ANA: ANA_ID})
            assert await uow.identities.resolve([ANA, BEA]) == {ANA: ANA_ID}
            async with InMemoryUnitsOfWork(storage)() as other:
                assert await other.identities.resolve([ANA]) == {}
        async with uows() as uow:
            assert await uow.identities.resolve([ANA]) == {ANA: ANA_ID}

    async def test_an_identity_claimed_first_elsewhere_conflicts(self) -> None:
        storage = InMemoryStorage()

        async def overtaken() -> None:
            async with InMemoryUnitsOfWork(storage)() as uow:
                await uow.identities.claim({ANA: ANA_ID})
                async with InMemoryUnitsOfWork(storage)() as other:
                    await other.identities.claim({ANA: BEA_ID})

        with pytest.raises(ConcurrencyConflict):
            await overtaken()
        assert storage.identities == {ANA: BEA_ID}

    async def test_a_merge_moves_identities_and_earlier_merges_to_the_survivor(self) -> None:
        uows = InMemoryUnitsOfWork()
        carla_id = UUID(int=9)
        async with uows() as uow:
            await uow.identities.claim({ANA: ANA_ID, BEA: BEA_ID})
            await uow.identities.record_merge(ANA_ID, BEA_ID)
        async with uows() as uow:
            await uow.identities.record_merge(BEA_ID, carla_id)
        assert uows.storage.identities == {ANA: carla_id, BEA: carla_id}
        assert uows.storage.merges == {ANA_ID: carla_id, BEA_ID: carla_id}

    async def test_a_customer_merged_twice_conflicts(self) -> None:
        uows = InMemoryUnitsOfWork()
        async with uows() as uow:
            await uow.identities.record_merge(ANA_ID, BEA_ID)
        with pytest.raises(ConcurrencyConflict):
            async with uows() as uow:
                await uow.identities.record_merge(ANA_ID, UUID(int=9))


class TestRequestKeysAndDecisions:
    async def test_a_key_names_what_its_request_made_once_committed(self) -> None:
        uows = InMemoryUnitsOfWork()
        earlier = EarlierRequest(MESSAGE_ID, ANA_ID, DECISION_ID, b"what was asked")
        async with uows() as uow:
            uow.requests.add("k-1", earlier)
            assert await uow.requests.earlier("k-1") is None
        async with uows() as uow:
            assert await uow.requests.earlier("k-1") == earlier
            assert await uow.requests.earlier("k-2") is None

    async def test_a_racing_twin_with_the_same_key_fails_its_commit(self) -> None:
        storage = InMemoryStorage()

        async def overtaken() -> None:
            async with InMemoryUnitsOfWork(storage)() as uow:
                uow.requests.add("k-1", EarlierRequest(MESSAGE_ID, ANA_ID, DECISION_ID))
                async with InMemoryUnitsOfWork(storage)() as twin:
                    twin.requests.add("k-1", EarlierRequest(UUID(int=7), ANA_ID, UUID(int=8)))

        with pytest.raises(ConcurrencyConflict):
            await overtaken()
        assert storage.requests["k-1"].message_id == UUID(int=7)

    async def test_an_indexed_decision_is_found_on_its_customers_stream(self) -> None:
        uows = InMemoryUnitsOfWork()
        ana = register(ANA_ID, ANA)
        await committed(uows, ana)
        async with uows() as uow:
            ana = (await uow.repository(Customer).get([ANA_ID]))[ANA_ID]
            ana.update_profile(AT, {"first_name": "Ana"}, {})
            uow.decisions.add(DECISION_ID, MESSAGE_ID, ANA_ID, ana.version)
            uow.repository(Customer).add(ana)
        found = await InMemoryCustomerRecords(uows.storage).decision(DECISION_ID)
        assert found is not None
        assert (found.stream_id, found.version, found.type) == (ANA_ID, 2, "ProfileUpdated")


class TestDeferrals:
    async def test_due_messages_are_claimed_most_urgent_first(self) -> None:
        uows = InMemoryUnitsOfWork()
        async with uows() as uow:
            uow.deferrals.defer(UUID(int=11), ANA_ID, AT, request(), "api")
            uow.deferrals.defer(UUID(int=12), ANA_ID, AT - timedelta(hours=1), request(), "api")
            uow.deferrals.defer(UUID(int=13), ANA_ID, AT, request(priority=5), "api")
            uow.deferrals.defer(UUID(int=14), ANA_ID, AT + timedelta(hours=1), request(), "api")
        async with uows() as uow:
            due = await uow.deferrals.claim_due(AT, 10)
        assert [d.message_id for d in due] == [UUID(int=13), UUID(int=12), UUID(int=11)]

    async def test_claimed_messages_are_skipped_by_others_until_the_unit_ends(self) -> None:
        uows = InMemoryUnitsOfWork()
        async with uows() as uow:
            uow.deferrals.defer(MESSAGE_ID, ANA_ID, AT, request(), "api")
        async with uows() as uow:
            assert len(await uow.deferrals.claim_due(AT, 10)) == 1
            async with uows() as other:
                assert await other.deferrals.claim_due(AT, 10) == []
        async with uows() as uow:
            assert len(await uow.deferrals.claim_due(AT, 10)) == 1

    async def test_a_message_deferred_again_keeps_its_request_and_moves_its_due_time(
        self,
    ) -> None:
        uows = InMemoryUnitsOfWork()
        later = AT + timedelta(hours=8)
        async with uows() as uow:
            uow.deferrals.defer(MESSAGE_ID, ANA_ID, AT, request(), "api")
        async with uows() as uow:
            uow.deferrals.defer(MESSAGE_ID, ANA_ID, later, request(priority=9), "scheduler")
        async with uows() as uow:
            assert await uow.deferrals.claim_due(AT, 10) == []
            (due,) = await uow.deferrals.claim_due(later, 10)
        assert (due.origin, due.request.priority) == ("api", 0)

    async def test_a_forgotten_message_is_no_longer_due_once_committed(self) -> None:
        uows = InMemoryUnitsOfWork()
        async with uows() as uow:
            uow.deferrals.defer(MESSAGE_ID, ANA_ID, AT, request(), "api")

        async def failing() -> None:
            async with uows() as uow:
                await uow.deferrals.forget(MESSAGE_ID)
                raise FailedOnPurpose

        with pytest.raises(FailedOnPurpose):
            await failing()
        async with uows() as uow:
            await uow.deferrals.forget(MESSAGE_ID)
        async with uows() as uow:
            assert await uow.deferrals.claim_due(AT, 10) == []


class TestOutbox:
    async def test_a_message_put_in_the_outbox_is_saved_and_leased_to_one_dispatcher(
        self,
    ) -> None:
        uows = InMemoryUnitsOfWork()
        async with uows() as uow:
            uow.outbox.put(_message())
        async with uows() as uow:
            (leased,) = await uow.outbox.claim(Channel.EMAIL, 10, 30, AT)
            saved = await uow.repository(Message).get([MESSAGE_ID])
        assert leased == Leased(MESSAGE_ID, 0)
        assert saved[MESSAGE_ID].recipient == "ana@example.org"
        assert uows.storage.events.log[0].subject_id == ANA_ID
        async with uows() as uow:
            assert await uow.outbox.claim(Channel.EMAIL, 10, 30, AT) == []  # leased
            later = AT + timedelta(seconds=31)
            assert len(await uow.outbox.claim(Channel.EMAIL, 10, 30, later)) == 1

    async def test_a_round_retried_later_is_due_again_after_its_delay_one_round_more(
        self,
    ) -> None:
        uows = InMemoryUnitsOfWork()
        async with uows() as uow:
            uow.outbox.put(_message())
        async with uows() as uow:
            await uow.outbox.claim(Channel.EMAIL, 10, 30, AT)
            uow.outbox.retry_later(MESSAGE_ID, 60, AT)
        async with uows() as uow:
            assert await uow.outbox.claim(Channel.EMAIL, 10, 30, AT + timedelta(seconds=59)) == []
            due = await uow.outbox.claim(Channel.EMAIL, 10, 30, AT + timedelta(seconds=60))
        assert due == [Leased(MESSAGE_ID, 1)]

    async def test_a_message_sent_off_leaves_the_outbox_only_if_its_unit_commits(
        self,
    ) -> None:
        uows = InMemoryUnitsOfWork()
        async with uows() as uow:
            uow.outbox.put(_message())

        async def failing() -> None:
            async with uows() as uow:
                uow.outbox.sent_off(MESSAGE_ID)
                raise FailedOnPurpose

        with pytest.raises(FailedOnPurpose):
            await failing()
        assert MESSAGE_ID in uows.storage.outbox
        async with uows() as uow:
            uow.outbox.sent_off(MESSAGE_ID)
        assert MESSAGE_ID not in uows.storage.outbox


def _message() -> Message:
    return Message(
        id=MESSAGE_ID,
        timestamp=AT,
        customer_id=ANA_ID,
        decision_id=DECISION_ID,
        channel=Channel.EMAIL,
        purpose=Purpose.MARKETING,
        team="growth",
        recipient="ana@example.org",
        content=Content(subject="Hi", body="Hello"),
        campaign=None,
        template=None,
        template_version=None,
        correlation_id=None,
    )
