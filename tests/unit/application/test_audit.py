"""The audit queries on the in-memory log: a customer as of an instant, the raw log, decisions."""

from __future__ import annotations

import io
import os
import pickle
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

import msgspec
import pytest

from adapters.inmemory.audit_log import InMemoryAuditLog
from application.audit.customer_as_of import (
    Checkpoints,
    CustomerAsOf,
    CustomerNotKnownAt,
    _applier,
    _Checkpoint,
    _checkpoint,
    _kept,
    _Pickler,
    _Replay,
    _Unpickler,
    replay_code,
)
from application.audit.decisions import AuditDecisions
from application.audit.event_log import ReadAuditLog
from application.audit.refusals import AuditQueryRefused
from domain.catalog import topic_of
from domain.customer.aggregate import Customer
from domain.customer.contact import ConsentRecord
from domain.customer.identities import Identity, IdentityClaim, Verification
from domain.policy.decision import Outcome, SendRequest
from domain.policy.vocabulary import Channel, Purpose
from domain.segments.aggregate import Membership, membership_id, segment_id
from domain.shared.topics import events_of
from ports.audit import KeptReplay, LogCursor, LogFilter, Unopened
from tests.unit.in_memory_chorus import MONDAY_NOON, InMemoryChorus, claim

if TYPE_CHECKING:
    from datetime import datetime

    from ports.audit import AuditedEvent

ANA = claim("email", "ana@example.org")
ANA_PHONE = claim("phone", "+351912345678")
HOUR = timedelta(hours=1)
CONSENT_CHANGED = topic_of(events_of(Customer)["ConsentChanged"])
MARKETING_EMAIL = ConsentRecord(Channel.EMAIL, Purpose.MARKETING, True, "signup form")
WITHDRAWN = ConsentRecord(Channel.EMAIL, Purpose.MARKETING, False, "unsubscribe link")


def as_of(chorus: InMemoryChorus) -> CustomerAsOf:
    return CustomerAsOf(InMemoryAuditLog(chorus.storage), chorus.clock)


def later(chorus: InMemoryChorus, by: timedelta = HOUR) -> datetime:
    chorus.clock.advance(by)
    return chorus.clock.now()


class TestCustomerAsOf:
    async def test_a_withdrawn_consent_shows_granted_before_and_withdrawn_after_with_its_proof(
        self,
    ) -> None:
        chorus = InMemoryChorus()
        ana = (await chorus.upsert((ANA,), {}, {})).customer_id
        granted_at = later(chorus)
        await chorus.change_consent(ana, [MARKETING_EMAIL])
        withdrawn_at = later(chorus)
        await chorus.change_consent(ana, [WITHDRAWN])
        before = await as_of(chorus)(ana, withdrawn_at - timedelta(seconds=1))
        after = await as_of(chorus)(ana, withdrawn_at)
        assert [(c.granted, c.source, c.at) for c in before.consents] == [
            (True, "signup form", granted_at)
        ]
        assert [(c.granted, c.source, c.at) for c in after.consents] == [
            (False, "unsubscribe link", withdrawn_at)
        ]

    async def test_an_identity_shows_unverified_until_it_was_verified(self) -> None:
        chorus = InMemoryChorus()
        ana = (await chorus.upsert((ANA,), {}, {})).customer_id
        verified_at = later(chorus)
        verified = IdentityClaim(ANA.identity, Verification.VERIFIED)
        await chorus.upsert((verified,), {}, {})
        before = await as_of(chorus)(ana, verified_at - timedelta(microseconds=1))
        after = await as_of(chorus)(ana, verified_at)
        assert [(i.value, i.verification, i.since) for i in before.identities] == [
            ("ana@example.org", "unverified", MONDAY_NOON)
        ]
        assert [(i.value, i.verification, i.since) for i in after.identities] == [
            ("ana@example.org", "verified", verified_at)
        ]

    async def test_a_merge_shows_on_both_sides_only_from_its_instant(self) -> None:
        chorus = InMemoryChorus()
        ana = (await chorus.upsert((ANA,), {}, {})).customer_id
        later(chorus)
        phone = (await chorus.upsert((ANA_PHONE,), {"first_name": "Ana"}, {})).customer_id
        merged_at = later(chorus)
        await chorus.upsert((ANA, ANA_PHONE), {}, {})
        just_before = merged_at - timedelta(seconds=1)

        survivor_before = await as_of(chorus)(ana, just_before)
        merged_before = await as_of(chorus)(phone, just_before)
        assert (survivor_before.absorbed, survivor_before.profile["first_name"]) == ([], None)
        assert merged_before.merged_into is None
        assert [i.type for i in merged_before.identities] == ["phone"]

        survivor = await as_of(chorus)(ana, merged_at)
        merged = await as_of(chorus)(phone, merged_at)
        assert [(m.customer_id, m.at) for m in survivor.absorbed] == [(phone, merged_at)]
        assert sorted(i.type for i in survivor.identities) == ["email", "phone"]
        assert survivor.profile["first_name"] == "Ana"
        assert merged.merged_into is not None
        assert (merged.merged_into.customer_id, merged.merged_into.at) == (ana, merged_at)
        assert merged.identities == []

    async def test_suppressions_show_with_their_reason_and_since_when(self) -> None:
        chorus = InMemoryChorus()
        ana = (await chorus.upsert((ANA,), {}, {})).customer_id
        suppressed_at = later(chorus)
        await chorus.change_suppression(ana, Channel.EMAIL, "bounce", active=True)
        lifted_at = later(chorus)
        await chorus.change_suppression(ana, Channel.EMAIL, "support", active=False)
        during = await as_of(chorus)(ana, lifted_at - HOUR / 2)
        assert [(s.channel, s.reason, s.since) for s in during.suppressions] == [
            ("email", "bounce", suppressed_at)
        ]
        assert (await as_of(chorus)(ana, lifted_at)).suppressions == []

    async def test_segment_memberships_come_from_the_membership_facts_up_to_the_instant(
        self,
    ) -> None:
        chorus = InMemoryChorus()
        ana = (await chorus.upsert((ANA,), {}, {})).customer_id
        vip = segment_id("vip")
        stream = membership_id(vip, ana)
        fields = {"segment_id": vip, "segment_key": "vip", "segment_version": 1, "customer_id": ana}
        entered_at = later(chorus)
        entered = Membership.Entered(  # type: ignore[call-arg]
            originator_id=stream, originator_version=1, timestamp=entered_at, **fields
        )
        exited_at = later(chorus)
        exited = Membership.Exited(  # type: ignore[call-arg]
            originator_id=stream,
            originator_version=2,
            timestamp=exited_at,
            reason="condition",
            **fields,
        )
        chorus.storage.events.append([(entered, ana), (exited, ana)])
        member = await as_of(chorus)(ana, entered_at)
        assert [(m.segment_key, m.entered_at) for m in member.segments] == [("vip", entered_at)]
        assert (await as_of(chorus)(ana, exited_at)).segments == []
        assert (await as_of(chorus)(ana, entered_at - timedelta(seconds=1))).segments == []

    async def test_decisions_change_nothing_shown_but_count_in_the_version(self) -> None:
        chorus = InMemoryChorus()
        ana = (await chorus.upsert((ANA,), {}, {})).customer_id
        await chorus.change_consent(ana, [MARKETING_EMAIL])
        later(chorus)
        await chorus.request_message(ana, SendRequest("care", Purpose.SERVICE, (Channel.EMAIL,)))
        view = await as_of(chorus)(ana)
        assert view.version == 3
        assert [c.source for c in view.consents] == ["signup form"]

    async def test_no_instant_means_now(self) -> None:
        chorus = InMemoryChorus()
        ana = (await chorus.upsert((ANA,), {}, {})).customer_id
        later(chorus)
        await chorus.change_consent(ana, [MARKETING_EMAIL])
        view = await as_of(chorus)(ana)
        assert (view.as_of, len(view.consents)) == (chorus.clock.now(), 1)

    async def test_an_instant_in_the_future_is_refused_naming_as_of(self) -> None:
        chorus = InMemoryChorus()
        ana = (await chorus.upsert((ANA,), {}, {})).customer_id
        with pytest.raises(AuditQueryRefused) as refused:
            await as_of(chorus)(ana, chorus.clock.now() + timedelta(seconds=1))
        assert refused.value.parameter == "as_of"

    async def test_before_registration_the_customer_did_not_exist_yet(self) -> None:
        chorus = InMemoryChorus()
        ana = (await chorus.upsert((ANA,), {}, {})).customer_id
        with pytest.raises(CustomerNotKnownAt, match="did not exist yet"):
            await as_of(chorus)(ana, MONDAY_NOON - timedelta(seconds=1))

    async def test_an_unknown_id_or_another_kind_of_stream_is_no_customer(self) -> None:
        chorus = InMemoryChorus()
        ana = (await chorus.upsert((ANA,), {}, {})).customer_id
        decided = await chorus.request_message(
            ana, SendRequest("care", Purpose.TRANSACTIONAL, (Channel.EMAIL,))
        )
        for unknown in (UUID(int=404), decided.message_id):
            with pytest.raises(CustomerNotKnownAt, match="no customer"):
                await as_of(chorus)(unknown)


class TestCheckpointedReplays:
    async def test_from_a_checkpoint_every_instant_answers_as_a_replay_from_the_start(
        self,
    ) -> None:
        chorus = InMemoryChorus()
        ana = (await chorus.upsert((ANA,), {}, {})).customer_id
        instants = [chorus.clock.now()]
        for n in range(12):
            instants.append(later(chorus, timedelta(minutes=7)))
            record = MARKETING_EMAIL if n % 2 else WITHDRAWN
            await chorus.change_consent(ana, [record])
            if n % 3 == 0:
                await chorus.change_suppression(ana, Channel.SMS, f"bounce {n}", active=True)
            if n == 5:
                await chorus.upsert((ANA, ANA_PHONE), {"first_name": "Ana"}, {})
        log = InMemoryAuditLog(chorus.storage)
        checkpointed = CustomerAsOf(log, chorus.clock, Checkpoints(every=2))
        await checkpointed(ana)  # checkpoints all along the stream
        for instant in [*instants, *reversed(instants)]:
            cold = CustomerAsOf(log, chorus.clock, Checkpoints(every=10_000))
            assert await checkpointed(ana, instant) == await cold(ana, instant), instant

    async def test_a_checkpoint_past_an_event_recorded_after_the_instant_is_not_used(
        self,
    ) -> None:
        chorus = InMemoryChorus()
        ana = (await chorus.upsert((ANA,), {}, {})).customer_id
        later(chorus)
        await chorus.change_consent(ana, [MARKETING_EMAIL])
        chorus.clock.set(MONDAY_NOON + 10 * HOUR)
        await chorus.change_consent(ana, [WITHDRAWN])  # recorded late
        chorus.clock.set(MONDAY_NOON + 2 * HOUR)  # and the clock went back
        await chorus.change_suppression(ana, Channel.SMS, "bounce", active=True)
        await chorus.change_suppression(ana, Channel.SMS, "support", active=False)
        chorus.clock.set(MONDAY_NOON + 11 * HOUR)
        as_of_ana = CustomerAsOf(
            InMemoryAuditLog(chorus.storage), chorus.clock, Checkpoints(every=1)
        )
        await as_of_ana(ana)
        at_three = await as_of_ana(ana, MONDAY_NOON + 3 * HOUR)
        assert [c.granted for c in at_three.consents] == [True]
        assert at_three.suppressions == []  # the stream stopped at the late withdrawal


async def read_all(log: ReadAuditLog, where: LogFilter, limit: int) -> list[list[AuditedEvent]]:
    pages: list[list[AuditedEvent]] = []
    after = LogCursor()
    while True:
        plan = await log.plan(where, after, limit)
        pages.append([event async for event in log.events(where, plan)])
        if plan.at_end:
            return pages
        after = plan.next


async def busy_log() -> tuple[InMemoryChorus, UUID, UUID]:
    chorus = InMemoryChorus()
    ana = (await chorus.upsert((ANA,), {}, {})).customer_id
    bea = (await chorus.upsert((claim("email", "bea@example.org"),), {}, {})).customer_id
    for _ in range(3):
        later(chorus)
        await chorus.change_consent(ana, [MARKETING_EMAIL])
        await chorus.change_consent(bea, [MARKETING_EMAIL])
        later(chorus)
        await chorus.change_consent(ana, [WITHDRAWN])
    return chorus, ana, bea


class TestReadAuditLog:
    async def test_paging_to_the_end_reads_the_whole_log_in_order_once(self) -> None:
        chorus, _, _ = await busy_log()
        pages = await read_all(
            ReadAuditLog(InMemoryAuditLog(chorus.storage), chunk=2), LogFilter(), 3
        )
        read = [event for page in pages for event in page]
        log = chorus.storage.events.log
        assert [e.position for e in read] == [e.position for e in log]
        assert all(len(page) <= 3 for page in pages)
        assert [msgspec.json.decode(e.payload) for e in read] == [dict(e.data) for e in log]

    async def test_filters_by_stream_type_and_period(self) -> None:
        chorus, ana, bea = await busy_log()
        log = ReadAuditLog(InMemoryAuditLog(chorus.storage))
        start = MONDAY_NOON + 2 * HOUR
        where = LogFilter(
            streams=(ana,), topics=(CONSENT_CHANGED,), since=start, until=start + 2 * HOUR
        )
        read = [e for page in await read_all(log, where, 100) for e in page]
        assert read
        assert {e.stream_id for e in read} == {ana}
        assert {e.topic for e in read} == {CONSENT_CHANGED}
        assert all(start <= e.recorded_at < start + 2 * HOUR for e in read)
        expected = [
            e.position
            for e in chorus.storage.events.log
            if e.stream_id == ana
            and e.type == "ConsentChanged"
            and start <= e.recorded_at < start + 2 * HOUR
        ]
        assert [e.position for e in read] == expected
        assert bea not in {e.stream_id for e in read}

    async def test_a_rare_filter_gives_short_pages_that_still_lead_to_the_end(self) -> None:
        chorus, ana, bea = await busy_log()
        log = ReadAuditLog(InMemoryAuditLog(chorus.storage, scan_budget=4))
        registered = topic_of(events_of(Customer)["Registered"])
        pages = await read_all(log, LogFilter(topics=(registered,)), 100)
        assert len(pages) > 1
        assert [e.stream_id for page in pages for e in page] == [ana, bea]

    async def test_a_page_size_out_of_bounds_and_a_period_ending_before_it_starts_are_refused(
        self,
    ) -> None:
        log = ReadAuditLog(InMemoryAuditLog(InMemoryChorus().storage))
        for limit in (0, 10_001):
            with pytest.raises(AuditQueryRefused) as refused:
                await log.plan(LogFilter(), LogCursor(), limit)
            assert refused.value.parameter == "limit"
        backwards = LogFilter(since=MONDAY_NOON, until=MONDAY_NOON - HOUR)
        with pytest.raises(AuditQueryRefused) as refused:
            await log.plan(backwards, LogCursor(), 10)
        assert refused.value.parameter == "until"


class TestAuditDecisions:
    async def test_suppressed_and_deferred_decisions_are_listed_with_their_reasons(
        self,
    ) -> None:
        chorus = InMemoryChorus()
        ana = (await chorus.upsert((ANA,), {}, {})).customer_id
        marketing = SendRequest("growth", Purpose.MARKETING, (Channel.EMAIL,))
        receipt = SendRequest("care", Purpose.TRANSACTIONAL, (Channel.EMAIL,))
        await chorus.request_message(ana, marketing)  # no consent: suppressed
        await chorus.request_message(ana, receipt)
        audit = AuditDecisions(InMemoryAuditLog(chorus.storage))
        every = await audit(
            customer=ana, since=None, until=None, outcomes=(), after=LogCursor(), limit=10
        )
        assert [d.outcome for d in every.decisions] == ["suppress", "send"]
        assert every.decisions[0].fired
        assert every.decisions[0].rule_set_version >= 1
        suppressed = await audit(
            customer=None,
            since=None,
            until=None,
            outcomes=(Outcome.SUPPRESS,),
            after=LogCursor(),
            limit=10,
        )
        assert [d.decision_id for d in suppressed.decisions] == [every.decisions[0].decision_id]

    async def test_a_survivor_lists_the_decisions_of_the_customers_merged_into_it(self) -> None:
        chorus = InMemoryChorus()
        ana = (await chorus.upsert((ANA,), {}, {})).customer_id
        phone = (await chorus.upsert((ANA_PHONE,), {}, {})).customer_id
        receipt = SendRequest("care", Purpose.TRANSACTIONAL, (Channel.SMS,))
        await chorus.request_message(phone, receipt)
        await chorus.upsert((ANA, ANA_PHONE), {}, {})
        audit = AuditDecisions(InMemoryAuditLog(chorus.storage))
        page = await audit(
            customer=ana, since=None, until=None, outcomes=(), after=LogCursor(), limit=10
        )
        assert [d.customer_id for d in page.decisions] == [phone]
        assert page.at_end


class TestReplayingAnEvent:
    def test_it_changes_the_customer_as_its_own_apply_does(self) -> None:
        customer = Customer.register(
            uuid4(), MONDAY_NOON, (IdentityClaim(Identity("email", "ana@example.org")),)
        )
        customer.update_profile(MONDAY_NOON, {"first_name": "Ana"}, {"tier": "gold"})
        customer.update_profile(MONDAY_NOON, {}, {"tier": None, "visits": 2})
        customer.link(
            IdentityClaim(Identity("phone", "+447700900123"), Verification.VERIFIED), MONDAY_NOON
        )
        customer.change_consent(
            ConsentRecord(Channel.EMAIL, Purpose.MARKETING, True, "signup form"), MONDAY_NOON
        )
        customer.suppress(Channel.SMS, "bounce", MONDAY_NOON)
        customer.lift_suppression(Channel.SMS, "support", MONDAY_NOON)
        events = customer.collect_events()
        by_apply, by_applier = events[0].mutate(None), events[0].mutate(None)
        for event in events[1:]:
            event.apply(by_apply)
            _applier(type(event))(by_applier, event)  # type: ignore[arg-type]
        assert vars(by_applier) == vars(by_apply)
        # `mutate` moves the version on; applying an event alone leaves it to the replay.
        assert vars(by_apply) == vars(customer) | {"_pending_events": [], "_version": 1}


class _Sealed(Unopened):
    def opened(self) -> str:
        return "gold"


class TestKeptReplays:
    def test_values_left_sealed_are_opened_before_a_replay_is_kept(self) -> None:
        customer = Customer.register(
            uuid4(), MONDAY_NOON, (IdentityClaim(Identity("email", "ana@example.org")),)
        )
        customer.update_profile(MONDAY_NOON, {"first_name": "Ana"}, {"visits": 2})
        customer.attributes["tier"] = _Sealed()
        customer.profile = replace(customer.profile, last_name=_Sealed())
        with pytest.raises(TypeError, match="opened before"):
            _Pickler(io.BytesIO()).dump(customer)
        replay = _Replay({}, {}, [])
        kept = _kept(_Checkpoint(2, MONDAY_NOON, customer, replay, erased=False))
        back = _checkpoint(kept)
        assert back is not None
        assert type(back.customer.attributes["tier"]) is str
        assert back.customer.attributes == {"visits": 2, "tier": "gold"}
        assert back.customer.profile.last_name == "gold"
        assert (back.version, back.recorded_at, back.erased) == (2, MONDAY_NOON, False)
        assert isinstance(customer.attributes["tier"], Unopened)  # the one kept in memory

    def test_only_the_replays_own_kinds_of_values_are_read_back(self) -> None:
        with pytest.raises(pickle.UnpicklingError, match="not part of a kept replay"):
            _Unpickler(io.BytesIO(pickle.dumps(os.system))).load()
        for state in (pickle.dumps(os.system), b"not a pickle", pickle.dumps((1, 2))):
            assert _checkpoint(KeptReplay(1, MONDAY_NOON, state)) is None

    async def test_a_process_that_never_replayed_the_customer_starts_from_one(self) -> None:
        chorus = InMemoryChorus()
        ana = (await chorus.upsert((ANA,), {}, {})).customer_id
        log = InMemoryAuditLog(chorus.storage)
        for n in range(5):
            later(chorus)
            await chorus.upsert((ANA,), {}, {"visits": n})
        await CustomerAsOf(log, chorus.clock, Checkpoints(every=2))(ana)
        assert sorted(log.replays[ana]) == [3, 5]
        seen: list[int] = []
        customer_history = log.customer_history

        async def history(customer_id: UUID, at: datetime, after: int = 0) -> Any:
            seen.append(after)
            return await customer_history(customer_id, at, after)

        log.customer_history = history  # type: ignore[method-assign]
        view = await CustomerAsOf(log, chorus.clock, Checkpoints(every=2))(ana)
        assert seen == [5]
        assert view.attributes == {"visits": 4}

    async def test_one_that_does_not_read_back_is_replayed_from_the_registration(self) -> None:
        chorus = InMemoryChorus()
        ana = (await chorus.upsert((ANA,), {}, {"visits": 1})).customer_id
        later(chorus)
        await chorus.upsert((ANA,), {}, {"visits": 2})
        log = InMemoryAuditLog(chorus.storage)
        await log.keep_replays(ana, replay_code(), [KeptReplay(2, MONDAY_NOON, b"garbled")])
        view = await CustomerAsOf(log, chorus.clock)(ana)
        assert view.attributes == {"visits": 2}
        assert view == await CustomerAsOf(InMemoryAuditLog(chorus.storage), chorus.clock)(ana)
