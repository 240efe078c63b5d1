"""The audit queries on PostgreSQL: customers as of an instant, the log paged, decisions."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from uuid import UUID, uuid4

import msgspec
import pytest

from adapters.postgres.audit_log import PostgresAuditLog
from adapters.postgres.codec import EventCodec
from adapters.postgres.customer_records import PostgresCustomerRecords
from adapters.postgres.event_store import PostgresEventStore
from adapters.postgres.templates import PostgresTemplates
from adapters.postgres.unit_of_work import PostgresUnitsOfWork
from adapters.system.clock import ManualClock
from adapters.system.ids import RandomIds
from adapters.system.rule_sets import DefaultRuleSets
from adapters.templates.jinja import JinjaRenderer, JinjaTemplates
from application.audit.customer_as_of import (
    Checkpoints,
    CustomerAsOf,
    CustomerNotKnownAt,
    replay_code,
)
from application.audit.decisions import AuditDecisions
from application.audit.event_log import ReadAuditLog
from application.customer.change_consent import ChangeConsent
from application.customer.upsert_customer import UpsertCustomer
from application.messages.request_message import RequestMessage
from domain.catalog import topic_of
from domain.customer.aggregate import Customer
from domain.customer.contact import ConsentRecord
from domain.customer.identities import IdentityClaim, IdentityNormalizer, Verification
from domain.policy.decision import Outcome, SendRequest
from domain.policy.vocabulary import Channel, Purpose
from domain.segments.aggregate import Membership, membership_id, segment_id
from domain.shared.topics import events_of
from ports.audit import AuditedEvent, KeptReplay, LogCursor, LogFilter

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import asyncpg

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
HOUR = timedelta(hours=1)
SECOND = timedelta(seconds=1)
_normalize = IdentityNormalizer("GB").normalize
ANA = IdentityClaim(_normalize("email", "ana@example.org"))
ANA_PHONE = IdentityClaim(_normalize("phone", "+44 7700 900123"))
MARKETING_EMAIL = ConsentRecord(Channel.EMAIL, Purpose.MARKETING, True, "signup form")
WITHDRAWN = ConsentRecord(Channel.EMAIL, Purpose.MARKETING, False, "unsubscribe link")
CONSENT_CHANGED = topic_of(events_of(Customer)["ConsentChanged"])


class Shop:
    """Customers changed on PostgreSQL under a manual clock, and the audit beside them."""

    def __init__(self, pool: asyncpg.Pool, renderer: JinjaRenderer) -> None:
        self.pool = pool
        self.clock = ManualClock(T0)
        ids = RandomIds()
        uows = PostgresUnitsOfWork(pool)
        customers = PostgresCustomerRecords(pool)
        self.upsert = UpsertCustomer(uows, self.clock, ids)
        self.consent = ChangeConsent(uows, self.clock, customers)
        self.send = RequestMessage(
            uows,
            DefaultRuleSets(),
            self.clock,
            ids,
            JinjaTemplates(PostgresTemplates(pool), renderer),
            customers=customers,
        )
        self.log = PostgresAuditLog(pool)
        self.as_of = CustomerAsOf(self.log, self.clock)

    def later(self, by: timedelta = HOUR) -> datetime:
        self.clock.advance(by)
        return self.clock.now()


@pytest.fixture
async def shop(pool: asyncpg.Pool) -> AsyncIterator[Shop]:
    renderer = JinjaRenderer()
    try:
        yield Shop(pool, renderer)
    finally:
        renderer.close()


class TestCustomerAsOf:
    async def test_before_and_after_a_merge(self, shop: Shop) -> None:
        ana = (await shop.upsert((ANA,), {}, {})).customer_id
        shop.later()
        phone = (await shop.upsert((ANA_PHONE,), {"first_name": "Ana"}, {})).customer_id
        await shop.consent(phone, [MARKETING_EMAIL])
        merged_at = shop.later()
        await shop.upsert((ANA, ANA_PHONE), {}, {})

        before = await shop.as_of(ana, merged_at - SECOND)
        assert (before.absorbed, [i.type for i in before.identities]) == ([], ["email"])
        assert before.consents == []
        merged_before = await shop.as_of(phone, merged_at - SECOND)
        assert merged_before.merged_into is None

        survivor = await shop.as_of(ana, merged_at)
        assert [(m.customer_id, m.at) for m in survivor.absorbed] == [(phone, merged_at)]
        assert sorted(i.type for i in survivor.identities) == ["email", "phone"]
        assert survivor.profile["first_name"] == "Ana"
        assert [(c.source, c.granted) for c in survivor.consents] == [("signup form", True)]
        merged = await shop.as_of(phone, merged_at)
        assert merged.merged_into is not None
        assert (merged.merged_into.customer_id, merged.merged_into.at) == (ana, merged_at)
        assert merged.identities == []

    async def test_a_consent_withdrawn(self, shop: Shop) -> None:
        ana = (await shop.upsert((ANA,), {}, {})).customer_id
        granted_at = shop.later()
        await shop.consent(ana, [MARKETING_EMAIL])
        withdrawn_at = shop.later()
        await shop.consent(ana, [WITHDRAWN])
        before = await shop.as_of(ana, withdrawn_at - SECOND)
        after = await shop.as_of(ana, withdrawn_at)
        assert [(c.granted, c.source, c.at) for c in before.consents] == [
            (True, "signup form", granted_at)
        ]
        assert [(c.granted, c.source, c.at) for c in after.consents] == [
            (False, "unsubscribe link", withdrawn_at)
        ]

    async def test_an_identity_verified(self, shop: Shop) -> None:
        ana = (await shop.upsert((ANA,), {}, {})).customer_id
        verified_at = shop.later()
        await shop.upsert((IdentityClaim(ANA.identity, Verification.VERIFIED),), {}, {})
        before = await shop.as_of(ana, verified_at - SECOND)
        after = await shop.as_of(ana, verified_at)
        assert [(i.verification, i.since) for i in before.identities] == [("unverified", T0)]
        assert [(i.verification, i.since) for i in after.identities] == [("verified", verified_at)]

    async def test_decisions_between_changes_are_left_out_and_counted(self, shop: Shop) -> None:
        ana = (await shop.upsert((ANA,), {}, {})).customer_id
        receipt = SendRequest("care", Purpose.TRANSACTIONAL, (Channel.EMAIL,))
        await shop.send(ana, receipt)
        await shop.send(ana, receipt)
        changed_at = shop.later()
        await shop.consent(ana, [MARKETING_EMAIL])
        view = await shop.as_of(ana, changed_at)
        assert (view.version, view.changed_at) == (4, changed_at)
        assert [c.source for c in view.consents] == ["signup form"]

    async def test_a_clock_that_went_back_leaves_no_hole_in_the_stream(self, shop: Shop) -> None:
        ana = (await shop.upsert((ANA,), {}, {})).customer_id
        shop.later()
        await shop.consent(ana, [MARKETING_EMAIL])
        shop.clock.set(T0 - HOUR)  # a later event recorded with an earlier time
        await shop.consent(ana, [WITHDRAWN])
        shop.clock.set(T0 + 2 * HOUR)
        at_start = await shop.as_of(ana, T0)
        assert at_start.consents == []  # the withdrawal is after the grant in the stream

    async def test_segment_memberships_from_the_membership_streams(
        self, shop: Shop, pool: asyncpg.Pool
    ) -> None:
        ana = (await shop.upsert((ANA,), {}, {})).customer_id
        vip = segment_id("vip")
        fields = {"segment_id": vip, "segment_key": "vip", "segment_version": 1, "customer_id": ana}
        entered_at, exited_at = T0 + HOUR, T0 + 2 * HOUR
        stream = membership_id(vip, ana)
        entered = Membership.Entered(  # type: ignore[call-arg]
            originator_id=stream, originator_version=1, timestamp=entered_at, **fields
        )
        exited = Membership.Exited(  # type: ignore[call-arg]
            originator_id=stream,
            originator_version=2,
            timestamp=exited_at,
            reason="condition",
            **fields,
        )
        await PostgresEventStore().append(pool, events=[entered, exited])  # type: ignore[arg-type]
        shop.later(3 * HOUR)
        during = await shop.as_of(ana, entered_at)
        assert [(m.segment_key, m.segment_version, m.entered_at) for m in during.segments] == [
            ("vip", 1, entered_at)
        ]
        assert (await shop.as_of(ana, exited_at)).segments == []

    async def test_from_checkpoints_each_instant_answers_as_a_replay_from_the_start(
        self, shop: Shop
    ) -> None:
        ana = (await shop.upsert((ANA,), {}, {})).customer_id
        receipt = SendRequest("care", Purpose.TRANSACTIONAL, (Channel.EMAIL,))
        instants = [T0]
        for n in range(8):
            instants.append(shop.later(timedelta(minutes=5)))
            await shop.consent(ana, [MARKETING_EMAIL if n % 2 else WITHDRAWN])
            await shop.send(ana, receipt)
            if n == 4:
                await shop.upsert((ANA, ANA_PHONE), {"first_name": "Ana"}, {})
        checkpointed = CustomerAsOf(shop.log, shop.clock, Checkpoints(every=2))
        await checkpointed(ana)
        for instant in [*instants, *reversed(instants)]:
            cold = CustomerAsOf(shop.log, shop.clock, Checkpoints(every=10_000))
            assert await checkpointed(ana, instant) == await cold(ana, instant), instant

    async def test_a_profile_changed_again_and_again_reads_as_it_was_at_each_instant(
        self, shop: Shop
    ) -> None:
        # The names and attributes replaced later are never opened; those shown are, whether
        # the replay starts from the registration or from a checkpoint.
        changes: list[tuple[dict[str, str | None], dict[str, object]]] = [
            ({"first_name": "Ana", "last_name": "Lima"}, {"tier": "bronze", "visits": 1}),
            ({"first_name": "Ana Maria"}, {"tier": "silver"}),
            ({"last_name": None}, {"tier": None, "visits": 2}),
            ({"first_name": "Anabela", "country": "PT"}, {"vip": True}),
        ]
        ana = (await shop.upsert((ANA,), *changes[0])).customer_id
        expected = [(T0, changes[0][0], changes[0][1])]
        profile, attributes = dict(expected[0][1]), dict(expected[0][2])
        for profile_change, attributes_change in changes[1:]:
            at = shop.later(timedelta(minutes=5))
            await shop.upsert((ANA,), profile_change, attributes_change)
            profile.update(profile_change)
            attributes.update(attributes_change)
            attributes = {name: value for name, value in attributes.items() if value is not None}
            expected.append((at, dict(profile), dict(attributes)))
        checkpointed = CustomerAsOf(shop.log, shop.clock, Checkpoints(every=1))
        await checkpointed(ana)
        for at, names, values in [*expected, *reversed(expected)]:
            for as_of in (shop.as_of, checkpointed, CustomerAsOf(shop.log, shop.clock)):
                view = await as_of(ana, at)
                shown = {name: view.profile[name] for name in names}
                assert (shown, view.attributes) == (names, values), at
                shown_values = [*view.profile.values(), *view.attributes.values()]
                assert {type(value) for value in shown_values} <= {str, int, bool, type(None)}

    async def test_a_process_that_never_replayed_a_customer_starts_from_a_kept_replay(
        self, shop: Shop, pool: asyncpg.Pool
    ) -> None:
        ana = (await shop.upsert((ANA,), {"first_name": "Ana"}, {"visits": 0})).customer_id
        receipt = SendRequest("care", Purpose.TRANSACTIONAL, (Channel.EMAIL,))
        instants = [T0]
        for n in range(6):
            instants.append(shop.later(timedelta(minutes=5)))
            await shop.consent(ana, [MARKETING_EMAIL if n % 2 else WITHDRAWN])
            await shop.send(ana, receipt)
            await shop.upsert((ANA,), {"first_name": f"Ana {n}"}, {"visits": n})
        expected = [
            await CustomerAsOf(shop.log, shop.clock, Checkpoints(every=10_000))(ana, at)
            for at in instants
        ]
        assert not await pool.fetchval("SELECT count(*) FROM customer_replays")
        await CustomerAsOf(shop.log, shop.clock, Checkpoints(every=3))(ana)
        kept = await pool.fetch(
            "SELECT version, recorded_at FROM customer_replays WHERE customer_id = $1 "
            "ORDER BY version",
            ana,
        )
        assert len(kept) >= 3  # one every 3 events after the registration, decisions left out

        class Reads(PostgresAuditLog):
            after: list[int]

            async def customer_history(self, *args: object) -> object:  # type: ignore[override]
                self.after.append(args[2])  # type: ignore[arg-type]
                return await super().customer_history(*args)  # type: ignore[arg-type]

        for at, view in zip(instants, expected, strict=True):
            log = Reads(pool)
            log.after = []
            assert await CustomerAsOf(log, shop.clock, Checkpoints(every=3))(ana, at) == view
            usable = [row["version"] for row in kept if row["recorded_at"] <= at]
            assert log.after == [usable[-1] if usable else 0], at

    async def test_a_replay_kept_by_other_code_is_not_read_and_gives_way(
        self, shop: Shop, pool: asyncpg.Pool
    ) -> None:
        ana = (await shop.upsert((ANA,), {}, {})).customer_id
        log = shop.log
        await log.keep_replays(ana, "other code", [KeptReplay(1, T0, b"theirs")])
        assert await log.kept_replay(ana, T0, replay_code()) is None
        assert await log.kept_replay(ana, T0, "other code") == KeptReplay(1, T0, b"theirs")
        await log.keep_replays(ana, "other code", [KeptReplay(1, T0, b"again")])  # stays
        assert await log.kept_replay(ana, T0, "other code") == KeptReplay(1, T0, b"theirs")
        await log.keep_replays(ana, "this code", [KeptReplay(1, T0, b"mine")])
        assert await log.kept_replay(ana, T0, "this code") == KeptReplay(1, T0, b"mine")
        assert await log.kept_replay(ana, T0, "other code") is None
        assert await log.kept_replay(ana, T0 - SECOND, "this code") is None
        stored = await pool.fetchval(
            "SELECT state FROM customer_replays WHERE customer_id = $1", ana
        )
        assert b"mine" not in stored  # sealed with Ana's key

    async def test_before_registration_and_never_are_told_apart(self, shop: Shop) -> None:
        ana = (await shop.upsert((ANA,), {}, {})).customer_id
        with pytest.raises(CustomerNotKnownAt, match="did not exist yet"):
            await shop.as_of(ana, T0 - SECOND)
        with pytest.raises(CustomerNotKnownAt, match="no customer"):
            await shop.as_of(uuid4())


async def settled(pool: asyncpg.Pool) -> None:
    """Waits until every event is below the log's horizon: the server is shared, and another
    database's open transaction holds the horizon back for a while."""
    for _ in range(200):
        if await pool.fetchval(
            "SELECT coalesce(max(transaction_id) < pg_snapshot_xmin(pg_current_snapshot()), "
            "true) FROM events"
        ):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the log's horizon did not pass the last event in 10 s")


async def read_pages(log: ReadAuditLog, where: LogFilter, limit: int) -> list[list[AuditedEvent]]:
    pages: list[list[AuditedEvent]] = []
    after = LogCursor()
    while True:
        plan = await log.plan(where, after, limit)
        pages.append([event async for event in log.events(where, plan)])
        if plan.at_end:
            return pages
        after = plan.next


async def busy(shop: Shop) -> tuple[UUID, UUID]:
    ana = (await shop.upsert((ANA,), {}, {})).customer_id
    bea = await shop.upsert((IdentityClaim(_normalize("email", "bea@example.org")),), {}, {})
    for _ in range(4):
        shop.later()
        await shop.consent(ana, [MARKETING_EMAIL])
        await shop.consent(bea.customer_id, [MARKETING_EMAIL])
        shop.later()
        await shop.consent(ana, [WITHDRAWN])
    return ana, bea.customer_id


class TestTheEventLog:
    async def test_paged_to_the_end_it_equals_the_log(self, shop: Shop, pool: asyncpg.Pool) -> None:
        await busy(shop)
        await settled(pool)
        pages = await read_pages(ReadAuditLog(shop.log, chunk=2), LogFilter(), 3)
        read = [event for page in pages for event in page]
        rows = await pool.fetch(
            "SELECT position, stream_id, version, topic, occurred_at, payload FROM events "
            "ORDER BY transaction_id, position"
        )
        assert [(e.position, e.stream_id, e.version, e.topic, e.recorded_at) for e in read] == [
            tuple(row[:5]) for row in rows
        ]
        # The stored JSON, its personal values opened (sealed at rest: docs/erasure.md).
        codec = EventCodec()
        await codec.keys.load_for(pool, (row["payload"] for row in rows))
        assert [msgspec.json.decode(e.payload) for e in read] == [
            codec.to_plain(row["topic"], row["payload"]) for row in rows
        ]
        assert all(len(page) <= 3 for page in pages)

    async def test_filters_by_stream_type_and_period(self, shop: Shop, pool: asyncpg.Pool) -> None:
        ana, bea = await busy(shop)
        await settled(pool)
        since, until = T0 + 2 * HOUR, T0 + 5 * HOUR
        where = LogFilter(streams=(ana,), topics=(CONSENT_CHANGED,), since=since, until=until)
        read = [e for page in await read_pages(ReadAuditLog(shop.log), where, 2) for e in page]
        expected = await pool.fetch(
            "SELECT position FROM events WHERE stream_id = $1 AND topic = $2 "
            "AND occurred_at >= $3 AND occurred_at < $4 ORDER BY transaction_id, position",
            ana,
            CONSENT_CHANGED,
            since,
            until,
        )
        assert read
        assert [e.position for e in read] == [row[0] for row in expected]
        by_type = LogFilter(topics=(CONSENT_CHANGED,), since=T0 + HOUR)
        typed = [e for page in await read_pages(ReadAuditLog(shop.log), by_type, 100) for e in page]
        assert {e.stream_id for e in typed} == {ana, bea}
        assert all(e.topic == CONSENT_CHANGED and e.recorded_at >= T0 + HOUR for e in typed)

    async def test_an_open_transaction_holds_back_what_committed_after_it(
        self, shop: Shop, pool: asyncpg.Pool
    ) -> None:
        store = PostgresEventStore()
        slow = Customer.register(uuid4(), T0, (ANA,))
        fast = Customer.register(uuid4(), T0, (ANA_PHONE,))
        log = ReadAuditLog(shop.log)
        async with pool.acquire() as conn, conn.transaction():
            await store.append(conn, [slow])
            await store.append(pool, [fast])  # type: ignore[arg-type]
            held = await log.plan(LogFilter(), LogCursor(), 10)
            assert held.places == []
        await settled(pool)
        plan = await log.plan(LogFilter(), held.next, 10)
        assert [e.stream_id async for e in log.events(LogFilter(), plan)] == [slow.id, fast.id]


class TestAuditDecisions:
    async def test_every_outcome_with_its_reasons_and_the_filters(
        self, shop: Shop, pool: asyncpg.Pool
    ) -> None:
        ana = (await shop.upsert((ANA,), {}, {})).customer_id
        await shop.send(ana, SendRequest("growth", Purpose.MARKETING, (Channel.EMAIL,)))
        sent_at = shop.later()
        await shop.send(ana, SendRequest("care", Purpose.TRANSACTIONAL, (Channel.EMAIL,)))
        await settled(pool)
        audit = AuditDecisions(shop.log)
        page = await audit(
            customer=ana, since=None, until=None, outcomes=(), after=LogCursor(), limit=10
        )
        assert [d.outcome for d in page.decisions] == ["suppress", "send"]
        assert page.decisions[0].fired
        assert page.decisions[0].rule_set_version >= 1
        assert msgspec.to_builtins(page.decisions[1].request)["team"] == "care"
        later_ones = await audit(
            customer=None, since=sent_at, until=None, outcomes=(), after=LogCursor(), limit=10
        )
        assert [d.outcome for d in later_ones.decisions] == ["send"]
        suppressed = await audit(
            customer=None,
            since=None,
            until=None,
            outcomes=(Outcome.SUPPRESS,),
            after=LogCursor(),
            limit=1,
        )
        assert [d.outcome for d in suppressed.decisions] == ["suppress"]
        assert not suppressed.at_end
