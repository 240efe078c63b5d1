"""Personal data is sealed at rest, and erasing a customer makes it unreadable everywhere while
the log keeps its shape, its counts and its decisions (invariant 9, ADR 0016)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import uuid4

import asyncpg
import msgspec
import pytest

from adapters.inmemory.providers import InMemoryProviders, RecordingProvider
from adapters.postgres.audit_log import PostgresAuditLog
from adapters.postgres.codec import EventCodec
from adapters.postgres.customer_keys import CUSTOMER_KEYS, SEALED_DOCUMENT_PREFIX, sealed_by
from adapters.postgres.legacy_sealing import LegacySealing, SealedBatch, SealingCursor
from application.audit.customer_as_of import Checkpoints, CustomerAsOf, replay_code
from application.audit.message_story import ReadMessageStory
from application.customer.change_consent import ChangeConsent
from application.customer.change_suppression import ChangeSuppression
from application.customer.erase_customer import EraseCustomer
from application.customer.signals import AcceptSignals, IngestSignals
from application.customer.upsert_customer import UpsertCustomer
from application.delivery.dispatch import DispatchMessages
from application.delivery.webhooks import HandleWebhook
from application.messages.compose import MessageContent
from application.messages.redecide_due import RedecideDueMessages
from application.messages.request_message import RequestMessage
from application.queries.customers import CustomerQueries
from domain.conversation.aggregate import Conversation
from domain.conversation.vocabulary import Priority, Sentiment
from domain.customer.aggregate import ClassifiedMessage, Customer
from domain.customer.classified import CLASSIFIED_SIGNAL
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
from ports.delivery import DeliveryStore
from ports.unit_of_work import UnitsOfWork

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from uuid import UUID

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
        # erased after that instant, and said so: what reads `[erased]` was erased since
        assert (as_of.erased_at, as_of.personal_data_erased) == (None, True)
        since = await CustomerAsOf(PostgresAuditLog(shop.pool), await shop.get(Clock))(ana)
        assert (since.erased_at, since.personal_data_erased) == (erased.erased_at, True)

        bea = await queries.by_identity(BEA_EMAIL.identity)
        assert [i.value for i in bea.identities] == ["bea@example.org"]

    async def test_the_replays_kept_of_a_customer_are_shredded_with_them(self, shop: Shop) -> None:
        ana = await ana_with_history(shop)
        clock = await shop.get(Clock)
        log = PostgresAuditLog(shop.pool)
        await CustomerAsOf(log, clock, Checkpoints(every=1))(ana)
        kept = await shop.pool.fetch(
            "SELECT state FROM customer_replays WHERE customer_id = $1", ana
        )
        assert kept
        assert not any(secret in row[0] for row in kept for secret in ANA_SECRETS)
        assert await log.kept_replay(ana, clock.now(), replay_code()) is not None
        before_erasure = clock.now()
        clock.advance(timedelta(hours=1))

        await shop.erase(ana)

        assert await log.kept_replay(ana, clock.now(), replay_code()) is None
        for as_of in (CustomerAsOf(log, clock), CustomerAsOf(PostgresAuditLog(shop.pool), clock)):
            view = await as_of(ana, before_erasure)
            assert view.profile["first_name"] == ERASED
            assert view.attributes == {"tier": ERASED}
            assert {i.value for i in view.identities} == {ERASED}

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
        assert story.status == "suppressed"
        assert await shop.pool.fetchval("SELECT count(*) FROM outbox") == 0


BOUNCE = "550 5.2.2 <ana@example.org>: mailbox of Ana Lima is full"


async def bounced_receipt(shop: Shop, ana: UUID) -> UUID:
    """A receipt to Ana, sent, then bounced by its provider with a notice that names her
    address (taken out at the edge) and her name (sealed with what else is hers)."""
    decided = await (await shop.get(RequestMessage))(ana, RECEIPT, content=RECEIPT_TEXT)
    provider = RecordingProvider("mail", Channel.EMAIL)
    providers = InMemoryProviders(provider)
    uows, clock = await shop.get(UnitsOfWork), await shop.get(Clock)
    dispatch = DispatchMessages(uows, providers, clock)
    claimed = await dispatch.claim(Channel.EMAIL, 10)
    await dispatch.settle([(c.message, await dispatch.send(c)) for c in claimed])
    webhook = HandleWebhook(
        providers,
        uows,
        await shop.get(DeliveryStore),
        await shop.get(ChangeSuppression),
        await shop.get(IngestSignals),
        await shop.get(IdentityNormalizer),
        clock,
    )
    bounced = {"id": "mail-1", "status": "bounced", "reason": BOUNCE}
    body = msgspec.json.encode({"statuses": [bounced]})
    handled = await webhook("mail", {"X-Signature": "secret"}, body, "/hook")
    assert handled.statuses == 1
    return decided.message_id


class TestWhatProvidersSaid:
    """A provider's reason for a status, and the suppression Chorus writes from it, are free
    text that names the person: the address is taken out before anything is recorded, and
    what is left is sealed with the rest of what is theirs."""

    async def test_a_bounce_reason_is_unreadable_once_the_customer_is_erased(
        self, shop: Shop
    ) -> None:
        ana = await ana_with_history(shop)
        message_id = await bounced_receipt(shop, ana)
        kept = "550 5.2.2 <…>: mailbox of Ana Lima is full"
        payloads = await shop.payloads()
        assert not any(secret in p for p in payloads for secret in ANA_SECRETS)
        queries, story = await shop.get(CustomerQueries), await shop.get(ReadMessageStory)
        view = await queries.by_id(ana)
        assert view.suppressions == {"email": f"hard bounce reported by mail: {kept}"}
        assert (await story(message_id)).statuses[-1].reason == kept

        await shop.erase(ana)

        view = await queries.by_id(ana)
        assert view.suppressions == {"email": ERASED}  # the channel stays suppressed
        told = await story(message_id)
        assert (told.status, told.statuses[-1].status, told.statuses[-1].reason) == (
            "bounced",
            "bounced",
            ERASED,
        )
        lines = await shop.audit_lines()
        assert [line for line in lines if holds_secret(line)] == []
        said = [line for line in lines if line.get("status") == "bounced" and "reason" in line]
        assert [line["reason"] for line in said] == [ERASED]
        (suppressed,) = [line for line in lines if line.keys() == {"channel", "reason"}]
        assert suppressed["reason"] == ERASED

    async def test_reasons_stored_in_clear_before_are_sealed_by_seal_existing(
        self, shop: Shop
    ) -> None:
        ana = await ana_with_history(shop)
        message_id = await bounced_receipt(shop, ana)
        await as_stored_before_sealing(shop.pool)
        assert any(b"Ana Lima" in p for p in await shop.payloads())
        story = await shop.get(ReadMessageStory)
        assert (await story(message_id)).statuses[-1].reason == (
            "550 5.2.2 <…>: mailbox of Ana Lima is full"
        )  # read as stored

        await seal_existing(LegacySealing(shop.pool, IdentityNormalizer("GB")), 50)
        assert not any(b"Lima" in p for p in await shop.payloads())
        await shop.erase(ana)

        assert (await story(message_id)).statuses[-1].reason == ERASED
        view = await (await shop.get(CustomerQueries)).by_id(ana)
        assert view.suppressions == {"email": ERASED}
        assert [line for line in await shop.audit_lines() if holds_secret(line)] == []


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

    async def test_a_merged_customer_and_a_classified_message_are_scrubbed_as_rebuilt(
        self, shop: Shop
    ) -> None:
        by_email = await shop.upsert(ANA_EMAIL)
        await shop.upsert(ANA_PHONE, last_name="Lima", attributes={"tier": "gold-tier"})
        survivor = await shop.upsert(ANA_EMAIL, ANA_PHONE)
        async with (await shop.get(UnitsOfWork))() as uow:
            customers = uow.repository(Customer)
            customer = (await customers.get([survivor]))[survivor]
            customer.note_classified(
                ClassifiedMessage(
                    uuid4(), Channel.EMAIL, T0, "refund", 0.9, "negative", -0.7, "high"
                ),
                T0,
            )
            customers.add(customer)
        runner = await shop.runner()
        await shop.caught_up(runner)
        erased = await shop.erase(by_email)
        assert len(erased.erased_ids) == 2
        await shop.caught_up(runner)
        directory = await shop.pool.fetch("SELECT * FROM customer_directory")
        assert [(r["identities"], r["last_name"], r["attributes"]) for r in directory] == [
            ([], None, "{}")
        ] * 2
        (classified,) = await shop.pool.fetch(
            "SELECT properties FROM customer_signals WHERE signal_type = $1", CLASSIFIED_SIGNAL
        )
        assert msgspec.json.decode(classified["properties"])["intent"] == ERASED
        (stored,) = await shop.pool.fetch(
            "SELECT payload FROM events WHERE topic LIKE '%.MessageClassified'"
        )
        assert b"refund" not in stored[0]  # sealed
        assert b"negative" not in stored[0]
        (line,) = [e for e in await shop.audit_lines() if e.get("intent") is not None]
        assert (line["intent"], line["sentiment"], line["score"]) == (ERASED, ERASED, ERASED)
        for name, projection in runner.projections.items():
            if not projection.tables:
                continue
            live = {t: await table(shop.pool, t) for t in projection.tables}
            assert not holds_secret([list(rows) for rows in live.values()]), name
            await runner.rebuild(name)
            assert {t: await table(shop.pool, t) for t in projection.tables} == live, name

    async def test_a_classified_conversation_reads_erased_in_the_inbox_as_rebuilt(
        self, shop: Shop
    ) -> None:
        ana = await shop.upsert(ANA_EMAIL)
        conversation_id = await classified_conversation(shop, ana)
        runner = await shop.runner()
        await shop.caught_up(runner)
        inbox = "SELECT intent, sentiment FROM inbox WHERE conversation_id = $1"
        assert tuple(await shop.pool.fetchrow(inbox, conversation_id)) == ("refund", "negative")
        (stored,) = await shop.pool.fetch(
            "SELECT payload FROM events WHERE topic LIKE '%Conversation.Classified'"
        )
        assert b"refund" not in stored[0]  # sealed
        assert b"negative" not in stored[0]

        await shop.erase(ana)
        await shop.caught_up(runner)
        assert tuple(await shop.pool.fetchrow(inbox, conversation_id)) == (ERASED, None)
        (line,) = [e for e in await shop.audit_lines() if e.get("sentiment_score") is not None]
        assert (line["intent"], line["sentiment"], line["sentiment_score"]) == (ERASED,) * 3
        assert (line["confidence"], line["urgency"]) == (0.9, "high")
        live = await table(shop.pool, "inbox")
        await runner.rebuild("inbox")
        assert await table(shop.pool, "inbox") == live

    async def test_why_a_conversation_went_where_it_went_is_erased_with_its_customer(
        self, shop: Shop
    ) -> None:
        ana = await shop.upsert(ANA_EMAIL)
        conversation_id = await classified_conversation(shop, ana)
        routed = "money: intent refund; team billing; priority high"
        async with (await shop.get(UnitsOfWork))() as uow:
            conversations = uow.repository(Conversation)
            conversation = (await conversations.get([conversation_id]))[conversation_id]
            conversation.transfer("billing", None, routed, "router", T0)
            conversation.change_priority(Priority.HIGH, routed, "router", T0)
            conversations.add(conversation)
        stored = await shop.pool.fetch(
            "SELECT payload FROM events WHERE stream_id = $1", conversation_id
        )
        assert not any(b"intent refund" in row[0] for row in stored)  # sealed
        async with (await shop.get(UnitsOfWork))() as uow:
            found = await uow.repository(Conversation).get([conversation_id])
        assert [a.reason for a in found[conversation_id].history] == [routed]

        await shop.erase(ana)
        async with (await shop.get(UnitsOfWork))() as uow:
            found = await uow.repository(Conversation).get([conversation_id])
        assert [a.reason for a in found[conversation_id].history] == [ERASED]
        assert not any("intent refund" in str(line) for line in await shop.audit_lines())


async def classified_conversation(shop: Shop, customer_id: UUID) -> UUID:
    """The customer's conversation, with a message classified refund, negative (-0.7)."""
    async with (await shop.get(UnitsOfWork))() as uow:
        conversation = Conversation.start(customer_id, "test", T0)
        conversation.receive(uuid4(), Channel.EMAIL, "Where is my refund?", T0, T0)
        conversation.classify("refund", Sentiment.NEGATIVE, "test", T0, 0.9, None, "high", -0.7)
        uow.repository(Conversation).add(conversation)
    return conversation.id


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
        # sealed whole at intake: its id, kind and time stay, what it said about the person
        # is gone
        assert document == {
            "id": "o-1",
            "type": "order.placed",
            "occurred_at": "2026-03-01T11:00:00Z",
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


_AS_STORED_BEFORE_SEALING = """
UPDATE events e SET payload = u.payload
FROM unnest($1::uuid[], $2::int[], $3::bytea[]) AS u(stream_id, version, payload)
WHERE e.stream_id = u.stream_id AND e.version = u.version
"""
_ROWS_BUT_PAYLOADS = """
SELECT position, transaction_id::text, stream_id, version, topic, class_version, occurred_at,
       subject_id
FROM events ORDER BY position
"""


async def as_stored_before_sealing(pool: asyncpg.Pool) -> int:
    """Every payload as the code before migration 0038 wrote it, the personal values in clear,
    and no customer or identity keys; how many payloads held sealed values."""
    codec = EventCodec()
    rows = await pool.fetch("SELECT stream_id, version, topic, payload FROM events")
    await codec.keys.load_for(pool, [row["payload"] for row in rows])
    sealed = [row for row in rows if sealed_by(row["payload"]) is not None]
    clear = [msgspec.json.encode(codec.to_plain(row["topic"], row["payload"])) for row in sealed]
    async with pool.acquire() as conn, conn.transaction():
        # The test's own way around the log's guard, to write what only the old code wrote.
        await conn.execute("ALTER TABLE events DISABLE TRIGGER events_never_change")
        await conn.execute(
            _AS_STORED_BEFORE_SEALING,
            [row["stream_id"] for row in sealed],
            [row["version"] for row in sealed],
            clear,
        )
        await conn.execute("ALTER TABLE events ENABLE TRIGGER events_never_change")
        await conn.execute("DELETE FROM identity_keys")
        await conn.execute("DELETE FROM customer_keys")
    codec.keys.forget()
    return len(sealed)


async def seal_existing(sealing: LegacySealing, size: int) -> list[SealedBatch]:
    batches = [await sealing.seal_batch(SealingCursor(), size)]
    while not batches[-1].at_end:
        batches.append(await sealing.seal_batch(batches[-1].next, size))
    return batches


class TestSealingWhatWasStoredInClear:
    async def test_events_stored_in_clear_are_sealed_in_place_read_the_same_and_erase(
        self, shop: Shop
    ) -> None:
        ana = await ana_with_history(shop)
        await (await shop.get(RequestMessage))(ana, RECEIPT, content=RECEIPT_TEXT)
        await received(shop, signal_document("o-1", "ana@example.org", note="gold-tier"))
        runner = await shop.runner()
        await shop.caught_up(runner)  # o-1 is recorded on Ana
        bea_signal = signal_document("o-2", "bea@example.org", note="silver")
        await received(shop, bea_signal.replace(b"Ana", b"Bea").replace(b"Lima", b"Reis"))
        lines = await shop.audit_lines()
        queries = await shop.get(CustomerQueries)
        view = await queries.by_id(ana)
        in_clear = await as_stored_before_sealing(shop.pool)
        rows = await shop.pool.fetch(_ROWS_BUT_PAYLOADS)
        assert any(secret in p for p in await shop.payloads() for secret in ANA_SECRETS)
        assert await shop.audit_lines() == lines

        sealing = LegacySealing(shop.pool, IdentityNormalizer("GB"))
        assert await sealing.remaining() == in_clear
        first = await sealing.seal_batch(SealingCursor(), 4)
        assert (first.examined, first.sealed) == (4, 4)
        assert await sealing.remaining() == in_clear - 4
        # stopped there, and run again from the start: it takes up what is left
        batches = await seal_existing(sealing, 4)
        assert sum(b.sealed for b in batches) == in_clear - 4
        assert sum(b.erased + b.left_clear for b in batches) == 0

        payloads = await shop.payloads()
        assert not any(secret in p for p in payloads for secret in ANA_SECRETS)
        assert not any(b"bea@example.org" in p or b"silver" in p for p in payloads)
        assert await shop.pool.fetch(_ROWS_BUT_PAYLOADS) == rows
        assert await shop.audit_lines() == lines
        assert await queries.by_id(ana) == view
        assert await sealing.remaining() == 0
        again = await seal_existing(sealing, 4)
        assert [b.examined for b in again] == [0]
        assert await shop.payloads() == payloads

        await shop.erase(ana)
        erased = await shop.audit_lines()
        assert [line for line in erased if holds_secret(line)] == []
        assert any(ERASED in msgspec.json.encode(line).decode() for line in erased)
        (o_1,) = [line for line in erased if line.get("id") == "o-1"]
        assert o_1["identities"] == ERASED
        bea = await queries.by_identity(BEA_EMAIL.identity)
        assert [i.value for i in bea.identities] == ["bea@example.org"]
        (o_2,) = [line for line in erased if line.get("id") == "o-2"]
        assert o_2["identities"] == [{"type": "email", "value": "bea@example.org"}]

    async def test_a_conversations_classification_stored_in_clear_is_sealed_and_erases(
        self, shop: Shop
    ) -> None:
        ana = await shop.upsert(ANA_EMAIL)
        await classified_conversation(shop, ana)
        await as_stored_before_sealing(shop.pool)
        classified = "SELECT payload FROM events WHERE topic LIKE '%Conversation.Classified'"
        (stored,) = await shop.pool.fetch(classified)
        assert b"refund" in stored[0]  # as the code before wrote it
        lines = await shop.audit_lines()

        await seal_existing(LegacySealing(shop.pool, IdentityNormalizer("GB")), 50)
        (stored,) = await shop.pool.fetch(classified)
        assert b"refund" not in stored[0]
        assert await shop.audit_lines() == lines  # read the same
        await shop.erase(ana)
        (line,) = [e for e in await shop.audit_lines() if e.get("sentiment_score") is not None]
        assert (line["intent"], line["sentiment"], line["sentiment_score"]) == (ERASED,) * 3

    async def test_the_log_takes_no_other_change_than_clear_to_sealed(self, shop: Shop) -> None:
        ana = await ana_with_history(shop)
        await as_stored_before_sealing(shop.pool)
        clear = await shop.pool.fetchrow(
            "SELECT stream_id, version FROM events WHERE subject_id = $1 AND version = 1", ana
        )
        assert clear is not None
        sealed = """'{"$k":"x"}'::bytea"""
        refused = (
            (False, f"UPDATE events SET payload = {sealed}"),
            (True, f"UPDATE events SET payload = {sealed}, occurred_at = now()"),
            (True, "UPDATE events SET payload = payload || ' '::bytea"),
            (True, "DELETE FROM events"),
        )
        async with shop.pool.acquire() as conn, conn.transaction():
            for says_sealing, statement in refused:
                with pytest.raises(asyncpg.RaiseError, match="never edited"):
                    await attempt(conn, says_sealing, f"{statement} {_ONE_EVENT}", *clear)

    async def test_the_events_of_a_customer_erased_before_the_run_are_written_erased(
        self, shop: Shop
    ) -> None:
        ana = await ana_with_history(shop)
        await as_stored_before_sealing(shop.pool)
        await shop.erase(ana)
        assert any(holds_secret(line) for line in await shop.audit_lines())  # not shredded

        batches = await seal_existing(LegacySealing(shop.pool, IdentityNormalizer("GB")), 50)

        assert sum(b.erased for b in batches) > 0
        assert sum(b.sealed for b in batches) > 0  # Bea's
        lines = await shop.audit_lines()
        assert [line for line in lines if holds_secret(line)] == []
        bea = await (await shop.get(CustomerQueries)).by_identity(BEA_EMAIL.identity)
        assert [i.value for i in bea.identities] == ["bea@example.org"]

    async def test_the_command_seals_them_with_a_progress_bar_and_a_second_run_changes_nothing(
        self, shop: Shop, database_url: str
    ) -> None:
        await ana_with_history(shop)
        in_clear = await as_stored_before_sealing(shop.pool)

        first = await asyncio.to_thread(chorus_seal_existing, database_url)
        assert first.returncode == 0, first.stderr
        assert f"sealed {in_clear:,} events" in first.stderr
        payloads = await shop.payloads()
        assert not any(secret in p for p in payloads for secret in ANA_SECRETS)

        second = await asyncio.to_thread(chorus_seal_existing, database_url)
        assert second.returncode == 0, second.stderr
        assert "sealed 0 events" in second.stderr
        assert await shop.payloads() == payloads


def chorus_seal_existing(database_url: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "CHORUS_DEFAULT_REGION": "GB",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src"),
    }
    env.pop("CHORUS_MASTER_KEY", None)  # the development key, as the test's service has
    return subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", "erasure", "seal-existing", "--batch", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


_ONE_EVENT = "WHERE stream_id = $1 AND version = $2"


async def attempt(conn: Any, says_sealing: bool, statement: str, *arguments: Any) -> None:
    """Runs `statement` in a savepoint, saying it is sealing existing events or not."""
    async with conn.transaction():
        if says_sealing:
            await conn.execute("SELECT set_config('chorus.sealing_existing', 'on', true)")
        await conn.execute(statement, *arguments)
