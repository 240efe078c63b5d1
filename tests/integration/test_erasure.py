"""Personal data is sealed at rest, and erasing a customer makes it unreadable everywhere while
the log keeps its shape, its counts and its decisions (invariant 9, ADR 0016)."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import uuid4

import msgspec
import pytest

from adapters.inmemory.providers import InMemoryProviders, RecordingProvider
from adapters.postgres.audit_log import PostgresAuditLog
from adapters.postgres.customer_keys import CUSTOMER_KEYS, SEALED_DOCUMENT_PREFIX
from application.audit.customer_as_of import CustomerAsOf
from application.audit.message_story import ReadMessageStory
from application.customer.change_consent import ChangeConsent
from application.customer.erase_customer import EraseCustomer
from application.customer.signals import AcceptSignals
from application.customer.upsert_customer import UpsertCustomer
from application.delivery.dispatch import DispatchMessages
from application.messages.compose import MessageContent
from application.messages.redecide_due import RedecideDueMessages
from application.messages.request_message import RequestMessage
from application.queries.customers import CustomerQueries
from domain.customer.contact import ConsentRecord
from domain.customer.identities import IdentityClaim, IdentityNormalizer
from domain.message.content import Content
from domain.policy.decision import Outcome, SendRequest
from domain.policy.vocabulary import Channel, Purpose
from domain.shared.errors import NotFound
from domain.shared.personal import ERASED
from domain.signals.document import SignalReader
from domain.signals.intake import RECEIVED_TOPIC, intake_id_for
from entrypoints.ioc import make_container
from entrypoints.pipeline import LANES, every_projection
from entrypoints.settings import Settings
from ports.audit import LogCursor, LogFilter
from ports.clock import Clock
from ports.unit_of_work import UnitsOfWork

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from uuid import UUID

    import asyncpg
    from dishka import AsyncContainer

    from adapters.postgres.projections import ProjectionRunner

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
_normalize = IdentityNormalizer("GB").normalize
ANA_EMAIL = IdentityClaim(_normalize("email", "ana@example.org"))
ANA_PHONE = IdentityClaim(_normalize("phone", "+44 7700 900123"))
BEA_EMAIL = IdentityClaim(_normalize("email", "bea@example.org"))
ANA_SECRETS = (b"ana@example.org", b"+447700900123", b"Lima", b"gold-tier")
MARKETING = ConsentRecord(Channel.EMAIL, Purpose.MARKETING, True, "signup form")
RECEIPT = SendRequest("care", Purpose.TRANSACTIONAL, (Channel.EMAIL,))
RECEIPT_TEXT = MessageContent(inline=Content(subject="Your order", body="It ships today."))
SERVICE_SMS = SendRequest("care", Purpose.SERVICE, (Channel.SMS,))
SMS_SERVICE = ConsentRecord(Channel.SMS, Purpose.SERVICE, True, "signup form")
_BELOW_HORIZON = """
SELECT coalesce(max(transaction_id) < pg_snapshot_xmin(pg_current_snapshot()), true) FROM events
"""


class Shop:
    """Chorus wired as the service wires it, on the test's database, under a manual clock."""

    def __init__(self, container: AsyncContainer, pool: asyncpg.Pool) -> None:
        self.container = container
        self.pool = pool

    async def get(self, kind: type[Any]) -> Any:
        return await self.container.get(kind)

    async def upsert(self, *claims: IdentityClaim, **profile: Any) -> UUID:
        attributes = profile.pop("attributes", {})
        upsert = await self.get(UpsertCustomer)
        return (await upsert(claims, profile, attributes)).customer_id  # type: ignore[no-any-return]

    async def erase(self, customer_id: UUID) -> Any:
        return await (await self.get(EraseCustomer))(customer_id)

    async def runner(self) -> ProjectionRunner:
        runner = await every_projection(
            self.container, lanes=[lane for lane in LANES if lane.name != "outbound"]
        )
        await runner.setup()
        return runner

    async def caught_up(self, runner: ProjectionRunner) -> None:
        while True:
            await self.readable()
            if not await runner.catch_up():
                return

    async def payloads(self) -> list[bytes]:
        return [row[0] for row in await self.pool.fetch("SELECT payload FROM events")]

    async def topics(self) -> Counter[str]:
        return Counter(row[0] for row in await self.pool.fetch("SELECT topic FROM events"))

    async def readable(self) -> None:
        """Until the log's horizon passed its last event: another database's transaction on
        the same server holds every reader back while it runs."""
        deadline = asyncio.get_running_loop().time() + 60
        while await self.pool.fetchval(_BELOW_HORIZON) is False:
            assert asyncio.get_running_loop().time() < deadline, "the log stays unreadable"
            await asyncio.sleep(0.05)

    async def audit_lines(self) -> list[dict[str, Any]]:
        await self.readable()
        log = PostgresAuditLog(self.pool)
        plan = await log.plan(LogFilter(), LogCursor(), 10_000)
        return [msgspec.json.decode(e.payload) for e in await log.read(LogFilter(), plan.places)]


@pytest.fixture
async def shop(pool: asyncpg.Pool, database_url: str) -> AsyncIterator[Shop]:
    container = make_container(
        Settings(database_url=database_url, clock="manual", default_region="GB")
    )
    try:
        clock = await container.get(Clock)
        clock.set(T0)  # type: ignore[attr-defined]
        yield Shop(container, pool)
    finally:
        await container.close()


async def ana_with_history(shop: Shop) -> UUID:
    """Ana, with identities, a profile, a consent and two decisions; and Bea beside her."""
    ana = await shop.upsert(
        ANA_EMAIL,
        ANA_PHONE,
        first_name="Ana",
        last_name="Lima",
        time_zone="Europe/Lisbon",
        attributes={"tier": "gold-tier"},
    )
    await shop.upsert(BEA_EMAIL, first_name="Bea")
    await (await shop.get(ChangeConsent))(ana, [MARKETING])
    send = await shop.get(RequestMessage)
    await send(ana, RECEIPT)
    await send(ana, RECEIPT)
    return ana


def holds_secret(value: Any) -> bool:
    text = msgspec.json.encode(value)
    return any(secret in text for secret in ANA_SECRETS)


class TestSealedAtRest:
    async def test_the_events_table_holds_no_identity_name_or_attribute_in_clear(
        self, shop: Shop
    ) -> None:
        await ana_with_history(shop)
        payloads = await shop.payloads()
        assert payloads
        assert not any(secret in p for p in payloads for secret in ANA_SECRETS)
        # Bea's too; what the rules decide by stays readable
        assert not any(b"bea@example.org" in p for p in payloads)
        assert any(b"Europe/Lisbon" in p for p in payloads)

    async def test_every_read_opens_them(self, shop: Shop) -> None:
        ana = await ana_with_history(shop)
        queries = await shop.get(CustomerQueries)
        view = await queries.by_identity(ANA_EMAIL.identity)
        assert view.id == ana
        assert {i.value for i in view.identities} == {"ana@example.org", "+447700900123"}
        assert (view.profile["last_name"], view.attributes) == ("Lima", {"tier": "gold-tier"})
        _, page = await queries.timeline(ana, limit=50, before=None)
        assert any(holds_secret(e.data) for e in page.events)
        assert any(holds_secret(line) for line in await shop.audit_lines())


class TestErasing:
    async def test_every_read_shows_the_marker_and_the_log_keeps_its_shape(
        self, shop: Shop
    ) -> None:
        ana = await ana_with_history(shop)
        runner = await shop.runner()
        await shop.caught_up(runner)
        before = await shop.topics()
        decided = await shop.pool.fetchval("SELECT count(*) FROM decisions")
        before_erasure = (await shop.get(Clock)).now()
        (await shop.get(Clock)).advance(timedelta(hours=1))

        erased = await shop.erase(ana)
        assert (erased.customer_id, erased.erased_ids) == (ana, (ana,))

        after = await shop.topics()
        assert after - before == Counter({"domain.customer.aggregate:Customer.Erased": 1})
        assert before - after == Counter()
        assert await shop.pool.fetchval("SELECT count(*) FROM decisions") == decided

        queries = await shop.get(CustomerQueries)
        view = await queries.by_id(ana)
        assert (view.identities, view.attributes, view.erased_at) == ([], {}, erased.erased_at)
        assert (view.profile["first_name"], view.profile["time_zone"]) == (None, "Europe/Lisbon")
        _, page = await queries.timeline(ana, limit=50, before=None)
        assert not any(holds_secret(e.data) for e in page.events)
        assert any(ERASED in msgspec.json.encode(e.data).decode() for e in page.events)

        lines = await shop.audit_lines()
        assert not any(holds_secret(line) for line in lines)
        assert any(ERASED in msgspec.json.encode(line).decode() for line in lines)

        as_of = await CustomerAsOf(PostgresAuditLog(shop.pool), await shop.get(Clock))(
            ana, before_erasure
        )
        assert sorted((i.type, i.value) for i in as_of.identities) == [
            ("email", ERASED),
            ("phone", ERASED),
        ]
        assert as_of.profile["last_name"] == ERASED
        assert as_of.consents  # the proof stays

        bea = await queries.by_identity(BEA_EMAIL.identity)
        assert [i.value for i in bea.identities] == ["bea@example.org"]

    async def test_identities_find_no_one_and_a_new_customer_takes_them(self, shop: Shop) -> None:
        ana = await ana_with_history(shop)
        await shop.erase(ana)
        queries = await shop.get(CustomerQueries)
        for claim in (ANA_EMAIL, ANA_PHONE):
            with pytest.raises(NotFound):
                await queries.by_identity(claim.identity)
        upsert = await shop.get(UpsertCustomer)
        again = await upsert((ANA_EMAIL,), {"first_name": "Ana"}, {})
        assert again.created
        assert again.customer_id != ana
        found = await queries.by_identity(ANA_EMAIL.identity)
        assert (found.id, found.profile["first_name"]) == (again.customer_id, "Ana")
        assert (await queries.by_id(ana)).identities == []

    async def test_erasing_again_answers_the_same_and_records_nothing(self, shop: Shop) -> None:
        ana = await ana_with_history(shop)
        first = await shop.erase(ana)
        topics = await shop.topics()
        (await shop.get(Clock)).advance(timedelta(hours=1))
        again = await shop.erase(ana)
        assert (again.customer_id, again.erased_ids, again.erased_at) == (
            first.customer_id,
            first.erased_ids,
            first.erased_at,
        )
        assert (first.erased_now, again.erased_now) == (True, False)
        assert await shop.topics() == topics

    async def test_an_unknown_customer_is_not_found(self, shop: Shop) -> None:
        with pytest.raises(NotFound):
            await shop.erase(uuid4())

    async def test_a_process_that_kept_the_key_loses_it_within_its_time(self, shop: Shop) -> None:
        ana = await ana_with_history(shop)
        queries = await shop.get(CustomerQueries)
        await queries.by_id(ana)  # the key is kept
        async with shop.pool.acquire() as conn:  # erased as another process would
            await conn.execute(
                "UPDATE customer_keys SET wrapped = NULL, erased_at = now() WHERE customer_id = $1",
                ana,
            )
        CUSTOMER_KEYS.ttl, kept = 0.2, CUSTOMER_KEYS.ttl
        try:
            await asyncio.sleep(0.25)
            view = await queries.by_id(ana)
        finally:
            CUSTOMER_KEYS.ttl = kept
        assert {i.value for i in view.identities} == {ERASED}


class TestWhatWasStillToBeSent:
    """What was still to go to the customer ends on record in the erasure's commit: nothing
    reaches a provider afterwards, and each message's story says why."""

    async def test_a_queued_message_never_reaches_the_provider(self, shop: Shop) -> None:
        ana = await ana_with_history(shop)
        decided = await (await shop.get(RequestMessage))(ana, RECEIPT, content=RECEIPT_TEXT)
        assert decided.decision is not None
        assert decided.decision.outcome is Outcome.SEND
        await shop.erase(ana)
        provider = RecordingProvider("mail", Channel.EMAIL)
        dispatch = DispatchMessages(
            await shop.get(UnitsOfWork), InMemoryProviders(provider), await shop.get(Clock)
        )
        (await shop.get(Clock)).advance(timedelta(hours=1))
        assert await dispatch.claim(Channel.EMAIL, 100) == []
        assert provider.sent == []
        story = await (await shop.get(ReadMessageStory))(decided.message_id)
        assert story.status == "superseded"
        assert story.statuses[-1].reason == (
            "withdrawn: customer erased, before a provider took it"
        )

    async def test_a_message_deferred_to_quiet_hours_is_never_decided_again(
        self, shop: Shop
    ) -> None:
        ana = await ana_with_history(shop)
        clock = await shop.get(Clock)
        await (await shop.get(ChangeConsent))(ana, [SMS_SERVICE])
        clock.set(datetime(2026, 3, 1, 23, tzinfo=UTC))  # night in Lisbon
        decided = await (await shop.get(RequestMessage))(ana, SERVICE_SMS, content=RECEIPT_TEXT)
        assert decided.decision is not None
        assert decided.decision.outcome is Outcome.DEFER
        await shop.erase(ana)
        clock.advance(timedelta(hours=10))
        assert await (await shop.get(RedecideDueMessages))() == 0
        story = await (await shop.get(ReadMessageStory))(decided.message_id)
        last = story.decisions[-1]
        assert (last.outcome, [(f["rule_id"], f["reason"]) for f in last.fired]) == (
            "suppress",
            [("withdrawn", "customer erased")],
        )
        assert story.status == "suppress"
        assert await shop.pool.fetchval("SELECT count(*) FROM outbox") == 0


class TestMerges:
    async def test_erasing_the_survivor_erases_the_merged_customer_too(self, shop: Shop) -> None:
        by_email = await shop.upsert(ANA_EMAIL, first_name="Ana")
        by_phone = await shop.upsert(ANA_PHONE, last_name="Lima")
        survivor = await shop.upsert(ANA_EMAIL, ANA_PHONE)
        merged = by_phone if survivor == by_email else by_email
        erased = await shop.erase(merged)  # the merged id names the same person
        assert (erased.customer_id, set(erased.erased_ids)) == (survivor, {by_email, by_phone})
        payloads = await shop.payloads()
        assert not any(secret in p for p in payloads for secret in ANA_SECRETS)
        assert not any(holds_secret(line) for line in await shop.audit_lines())
        keys = await shop.pool.fetch("SELECT customer_id, wrapped FROM customer_keys")
        assert {row[0]: row[1] for row in keys} == {by_email: None, by_phone: None}


class TestRebuilding:
    async def test_every_read_model_rebuilt_after_an_erasure_equals_the_live_one(
        self, shop: Shop
    ) -> None:
        ana = await ana_with_history(shop)
        runner = await shop.runner()
        await shop.caught_up(runner)
        await shop.erase(ana)
        await shop.caught_up(runner)
        directory = await shop.pool.fetchrow(
            "SELECT * FROM customer_directory WHERE customer_id = $1", ana
        )
        assert directory is not None
        assert (directory["identities"], directory["first_name"]) == ([], None)
        assert not holds_secret(dict(directory))
        for name, projection in runner.projections.items():
            if not projection.tables:
                continue
            live = {t: await table(shop.pool, t) for t in projection.tables}
            await runner.rebuild(name)
            assert {t: await table(shop.pool, t) for t in projection.tables} == live, name
            assert not holds_secret([list(rows) for rows in live.values()]), name


async def table(pool: asyncpg.Pool, name: str) -> list[str]:
    rows = await pool.fetch(f"SELECT * FROM {name}")  # our own table names
    return sorted(str(tuple(row)) for row in rows)


def signal_document(event_id: str, email: str, **properties: Any) -> bytes:
    return msgspec.json.encode(
        {
            "id": event_id,
            "type": "order.placed",
            "occurred_at": "2026-03-01T11:00:00Z",
            "identities": [{"type": "email", "value": email}],
            "properties": properties,
            "profile": {"first_name": "Ana", "last_name": "Lima"},
        }
    )


async def received(shop: Shop, *documents: bytes) -> None:
    reader = await shop.get(SignalReader)
    checked = [reader.check(n, raw) for n, raw in enumerate(documents)]
    accept = await shop.get(AcceptSignals)
    await accept(
        [
            reader.received(n, c, raw)
            for n, (c, raw) in enumerate(zip(checked, documents, strict=True))
        ]
    )  # type: ignore[arg-type]


class TestReceivedSignals:
    async def test_a_received_signal_is_sealed_before_attribution_and_erased_with_its_customer(
        self, shop: Shop
    ) -> None:
        await received(shop, signal_document("o-1", "ana@example.org", note="gold-tier"))
        payloads = await shop.payloads()
        assert len(payloads) == 1
        assert not any(secret in payloads[0] for secret in ANA_SECRETS)
        runner = await shop.runner()
        await shop.caught_up(runner)  # attribution: Ana is registered from it
        queries = await shop.get(CustomerQueries)
        ana = await queries.by_identity(ANA_EMAIL.identity)
        assert ana.profile["last_name"] == "Lima"
        assert any(holds_secret(line) for line in await shop.audit_lines())
        assert not any(secret in p for p in await shop.payloads() for secret in ANA_SECRETS)

        await shop.erase(ana.id)
        await shop.caught_up(runner)
        lines = await shop.audit_lines()
        assert not any(holds_secret(line) for line in lines)
        (document,) = [line for line in lines if "identities" in line and "id" in line]
        # sealed whole at intake: its id stays, what it said about the person is gone
        assert document == {
            "id": "o-1",
            "identities": ERASED,
            "properties": ERASED,
            "profile": ERASED,
            "attributes": ERASED,
        }
        activity = await shop.pool.fetch("SELECT properties FROM customer_signals")
        assert [msgspec.json.decode(row[0]) for row in activity] == [{"note": ERASED}]

        await received(shop, signal_document("o-2", "ana@example.org", note="silver"))
        await shop.caught_up(runner)
        again = await queries.by_identity(ANA_EMAIL.identity)
        assert again.id != ana.id
        assert (again.profile["first_name"], [i.value for i in again.identities]) == (
            "Ana",
            ["ana@example.org"],
        )
        assert not any(b"silver" in p for p in await shop.payloads())

    async def test_it_is_stored_as_bytes_and_one_stored_as_json_before_reads_the_same(
        self, shop: Shop
    ) -> None:
        await received(shop, signal_document("o-1", "ana@example.org", note="gold-tier"))
        (stored,) = await shop.payloads()
        assert stored.startswith(SEALED_DOCUMENT_PREFIX)
        # Written by the intake of before: the document's base64 inside JSON.
        before = signal_document("o-2", "ana@example.org", note="gold-tier")
        key_id = (await CUSTOMER_KEYS.for_identities(shop.pool, [ANA_EMAIL.identity]))[
            ANA_EMAIL.identity
        ]
        key = CUSTOMER_KEYS.key_of(key_id)
        assert key is not None
        sealed = key.seal_json(before).encode("ascii")
        await shop.pool.execute(
            "INSERT INTO events (stream_id, version, topic, occurred_at, payload)"
            " VALUES ($1, 1, $2, $3, $4)",
            intake_id_for("o-2"),
            RECEIVED_TOPIC,
            T0,
            b'{"$k":"' + key.id_text + b'","$d":"' + sealed + b'","id":"o-2"}',
        )
        runner = await shop.runner()
        await shop.caught_up(runner)
        queries = await shop.get(CustomerQueries)
        ana = await queries.by_identity(ANA_EMAIL.identity)
        activity = await shop.pool.fetch("SELECT properties FROM customer_signals")
        assert len(activity) == 2

        await shop.erase(ana.id)
        await shop.caught_up(runner)
        documents = [
            line for line in await shop.audit_lines() if {"identities", "id"} <= line.keys()
        ]
        assert sorted(d["id"] for d in documents) == ["o-1", "o-2"]
        assert all(d["identities"] == ERASED for d in documents)
        assert not any(holds_secret(d) for d in documents)
