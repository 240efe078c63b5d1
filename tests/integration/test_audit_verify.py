"""`chorus audit verify` and the story of a message on PostgreSQL: the read models against
their rebuilds, messages against their decisions, decisions decided again; a tampered read
model row and a message without an allowing decision fail it, with a non-zero exit."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from uuid import UUID, uuid4

import asyncpg
import pytest

from adapters.postgres.audit_log import PostgresAuditLog
from adapters.postgres.read_model_rebuilds import SCRATCH_SUFFIX, PostgresReadModelRebuilds
from adapters.postgres.sla_timers import SlaTimerRuns
from adapters.postgres.verified_log import PostgresVerifiedLog
from application.approvals.settle_approval import SettleApproval
from application.audit.message_story import ReadMessageStory
from application.audit.verify import (
    CHECK_DECISIONS,
    CHECK_READ_MODELS,
    CHECK_SENT,
    CheckReport,
    VerifyLog,
)
from application.customer.erase_customer import EraseCustomer
from application.customer.upsert_customer import UpsertCustomer
from application.messages.compose import MessageContent
from application.messages.redecide_due import RedecideDueMessages
from application.messages.request_message import RequestMessage
from application.rules.publish_rules import PublishRules
from application.templates.publish_template import PublishTemplate, TemplateDraft
from domain.conversation.agents import Agent, Team
from domain.conversation.aggregate import ActingAgent, Conversation
from domain.conversation.routing_book import RoutingBook
from domain.conversation.routing_reader import decode_routing
from domain.conversation.vocabulary import ChannelKind, Presence, Priority, Sentiment
from domain.customer.aggregate import ClassifiedMessage, Customer
from domain.customer.classified import CLASSIFIED_SIGNAL
from domain.customer.identities import IdentityClaim, IdentityNormalizer, Verification
from domain.message.aggregate import Message
from domain.message.content import Content
from domain.message.origin import api_origin
from domain.policy.decision import Outcome, SendRequest
from domain.policy.defaults import default_rule_set
from domain.policy.rules import ApprovalRule
from domain.policy.vocabulary import Channel, Purpose
from domain.templates.aggregate import Variant
from entrypoints.ioc import make_container
from entrypoints.pipeline import LANES, every_projection
from entrypoints.settings import Settings
from ports.clock import Clock
from ports.unit_of_work import UnitsOfWork

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from dishka import AsyncContainer

    from adapters.postgres.projections import ProjectionRunner

pytestmark = pytest.mark.integration

SRC = Path(__file__).resolve().parents[2] / "src"
T0 = datetime(2026, 3, 2, 12, tzinfo=UTC)
DAY = timedelta(days=1)
_normalize = IdentityNormalizer("GB").normalize
SERVICE_EMAIL = SendRequest("orders", Purpose.SERVICE, (Channel.EMAIL,))
HELLO = MessageContent(inline=Content(subject="Hello", body="Hi {{ customer.first_name }}"))
KEY = UUID("00000000-0000-4000-8000-0000000000aa")
REFUND = SendRequest(
    "support", Purpose.SERVICE, (Channel.EMAIL,), intent="request_refund", intent_confidence=0.9
)
REFUND_RULE = ApprovalRule(
    "approval.refund", intents=frozenset({"request_refund"}), expires_after=timedelta(hours=2)
)
OPERATOR = "lea (admin key k1)"
_BELOW_HORIZON = """
SELECT coalesce(max(transaction_id) < pg_snapshot_xmin(pg_current_snapshot()), true) FROM events
"""


class Installation:
    """Chorus's use cases and read models on one database, under a manual clock."""

    def __init__(self, container: AsyncContainer, runner: ProjectionRunner, pool: asyncpg.Pool):
        self.container = container
        self.runner = runner
        self.pool = pool

    async def catch_up(self) -> None:
        """Every projection to the end of the log, waiting whenever the server's horizon (a
        transaction of another test's database) holds readers back."""
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            while await self.pool.fetchval(_BELOW_HORIZON) is False:
                assert asyncio.get_running_loop().time() < deadline, "the log stays unreadable"
                await asyncio.sleep(0.05)
            if not await self.runner.catch_up():
                return

    async def history(self) -> UUID:
        """Ana and Bea; three sends fill Ana's daily cap, a fourth with content is deferred a
        day and then sent: returns the deferred message's id."""
        clock = await self.container.get(Clock)
        clock.set(T0)  # type: ignore[attr-defined]
        upsert = await self.container.get(UpsertCustomer)
        send = await self.container.get(RequestMessage)
        ana = await upsert(
            (IdentityClaim(_normalize("email", "ana@example.org"), Verification.VERIFIED),),
            {"first_name": "Ana"},
            {},
        )
        await upsert((IdentityClaim(_normalize("email", "bea@example.org")),), {}, {})
        for _ in range(3):
            await send(ana.customer_id, SERVICE_EMAIL, origin=api_origin(KEY))
        deferred = await send(ana.customer_id, SERVICE_EMAIL, content=HELLO, origin=api_origin(KEY))
        clock.set(T0 + DAY)  # type: ignore[attr-defined]
        assert await (await self.container.get(RedecideDueMessages))() == 1
        await self.catch_up()
        return deferred.message_id

    async def holds(self) -> dict[str, UUID]:
        """Three refund answers to Ana held for approval under published rules: one approved,
        one rejected, one left to expire; returns each hold's approval id by its verdict."""
        clock = await self.container.get(Clock)
        clock.set(T0)  # type: ignore[attr-defined]
        rules = dataclasses.replace(default_rule_set(), approvals=(REFUND_RULE,))
        await (await self.container.get(PublishRules))(rules, "test")
        upsert = await self.container.get(UpsertCustomer)
        send = await self.container.get(RequestMessage)
        ana = await upsert(
            (IdentityClaim(_normalize("email", "ana@example.org"), Verification.VERIFIED),),
            {"first_name": "Ana"},
            {},
        )
        held = {}
        for verdict in ("approved", "rejected", "expired"):
            decided = await send(ana.customer_id, REFUND, content=HELLO, origin=api_origin(KEY))
            assert decided.decision is not None
            assert decided.decision.outcome is Outcome.HOLD
            held[verdict] = decided.decision_id
        settle = await self.container.get(SettleApproval)
        await settle.approve(held["approved"], OPERATOR)
        await settle.reject(held["rejected"], OPERATOR, "no receipt")
        clock.set(T0 + timedelta(hours=3))  # type: ignore[attr-defined]
        assert await (await self.container.get(RedecideDueMessages))() == 1
        await self.catch_up()
        return held

    async def verify(self, shown: int = 20) -> dict[str, CheckReport]:
        checks = VerifyLog(
            PostgresVerifiedLog(self.pool), PostgresReadModelRebuilds(self.runner), shown
        )
        return {report.check: report for report in await checks(_Quiet())}


class _Quiet:
    def begin(self, check: str, total: int) -> None:
        pass

    def reached(self, check: str, done: int) -> None:
        pass


@pytest.fixture
async def chorus(database_url: str, pool: asyncpg.Pool) -> AsyncIterator[Installation]:
    container = make_container(
        Settings(database_url=database_url, clock="manual", default_region="GB")
    )
    try:
        # Every lane but the outbound publisher's, which needs NATS.
        runner = await every_projection(
            container, lanes=[lane for lane in LANES if lane.name != "outbound"]
        )
        await runner.setup()
        yield Installation(container, runner, pool)
    finally:
        await container.close()


async def queue_without_decision(chorus: Installation) -> UUID:
    """A message put in the store directly, naming a decision never recorded."""
    message = Message(
        id=uuid4(),
        timestamp=T0 + DAY,
        customer_id=uuid4(),
        decision_id=uuid4(),
        channel=Channel.EMAIL,
        purpose=Purpose.SERVICE,
        team="orders",
        recipient="nobody@example.org",
        content=Content(subject="Hi", body="Hi"),
        campaign=None,
        template=None,
        template_version=None,
        correlation_id=None,
    )
    uows = await chorus.container.get(UnitsOfWork)
    async with uows() as uow:
        uow.repository(Message).add(message)
    return message.id


def chorus_verify(database_url: str, shown: int = 5) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url, "PYTHONPATH": str(SRC)}
    return subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", "audit", "verify", "--show", str(shown)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class TestVerify:
    async def test_a_history_made_by_chorus_passes_every_check(self, chorus: Installation) -> None:
        await chorus.history()
        reports = await chorus.verify()
        assert {check: r.shown for check, r in reports.items()} == {
            CHECK_READ_MODELS: [],
            CHECK_SENT: [],
            CHECK_DECISIONS: [],
        }
        assert (reports[CHECK_SENT].checked, reports[CHECK_DECISIONS].checked) == (1, 5)
        assert reports[CHECK_READ_MODELS].checked > 0
        scratch = await chorus.pool.fetchval(
            "SELECT count(*) FROM pg_tables WHERE tablename LIKE $1", f"%{SCRATCH_SUFFIX}"
        )
        assert scratch == 0

    async def test_a_tampered_read_model_row_is_found_and_the_live_table_is_left_alone(
        self, chorus: Installation
    ) -> None:
        await chorus.history()
        await chorus.pool.execute(
            "UPDATE customer_directory SET first_name = 'Eve' WHERE first_name = 'Ana'"
        )
        reports = await chorus.verify()
        found = reports[CHECK_READ_MODELS]
        assert found.differences == 2  # the row as it is, and as the rebuild has it
        assert found.shown[0].subject == "customer_directory: customer_directory"
        assert any("Eve" in d.detail for d in found.shown)
        assert reports[CHECK_SENT].passed
        assert reports[CHECK_DECISIONS].passed
        assert (
            await chorus.pool.fetchval(
                "SELECT count(*) FROM customer_directory WHERE first_name = 'Eve'"
            )
            == 1
        )

    async def test_a_message_without_an_allowing_decision_fails_the_command(
        self, chorus: Installation, database_url: str
    ) -> None:
        await chorus.history()
        passed = await asyncio.to_thread(chorus_verify, database_url)
        assert passed.returncode == 0, passed.stdout + passed.stderr
        message_id = await queue_without_decision(chorus)
        await chorus.catch_up()
        failed = await asyncio.to_thread(chorus_verify, database_url)
        assert failed.returncode == 1, failed.stdout + failed.stderr
        assert f"message {message_id}: names decision" in failed.stdout
        assert "FAILED every message has an allowing decision: 2 checked, 1 difference" in (
            failed.stdout
        )


class TestVerifyHeldMessages:
    async def test_approved_rejected_and_expired_holds_pass_and_a_tampered_ending_fails(
        self, chorus: Installation, database_url: str
    ) -> None:
        held = await chorus.holds()
        reports = await chorus.verify()
        assert {check: r.shown for check, r in reports.items()} == {
            CHECK_READ_MODELS: [],
            CHECK_SENT: [],
            CHECK_DECISIONS: [],
        }
        assert (reports[CHECK_SENT].checked, reports[CHECK_DECISIONS].checked) == (1, 6)
        approvals = await chorus.pool.fetch("SELECT approval_id, status FROM approvals")
        assert {row["approval_id"]: row["status"] for row in approvals} == {
            approval_id: verdict for verdict, approval_id in held.items()
        }
        rejection = await chorus.pool.fetchval(
            "SELECT decision_id FROM approvals WHERE approval_id = $1", held["rejected"]
        )
        async with chorus.pool.acquire() as conn:
            # Events are never edited: a hand that can goes around the guard.
            await conn.execute("SET session_replication_role = replica")
            tampered = await conn.execute(
                "UPDATE events SET payload = convert_to(replace(convert_from(payload, 'UTF8'),"
                " 'rejected by', 'dropped by'), 'UTF8')"
                " WHERE topic LIKE '%Customer.MessageSuppressed'"
                " AND convert_from(payload, 'UTF8') LIKE '%rejected by%'"
            )
            await conn.execute("RESET session_replication_role")
        assert tampered == "UPDATE 1"
        failed = await asyncio.to_thread(chorus_verify, database_url)
        assert failed.returncode == 1, failed.stdout + failed.stderr
        assert f"decision {rejection}" in failed.stdout
        assert "FAILED decisions decided again agree: 6 checked, 1 difference" in failed.stdout

    async def test_a_tampered_message_status_and_approval_status_fail_naming_the_rows(
        self, chorus: Installation, database_url: str
    ) -> None:
        held = await chorus.holds()
        message_id = await chorus.pool.fetchval("SELECT message_id FROM messages")
        passed = await asyncio.to_thread(chorus_verify, database_url)
        assert passed.returncode == 0, passed.stdout + passed.stderr
        await chorus.pool.execute(
            "UPDATE messages SET status = 'delivered' WHERE message_id = $1", message_id
        )
        await chorus.pool.execute(
            "UPDATE approvals SET status = 'approved' WHERE approval_id = $1", held["rejected"]
        )
        failed = await asyncio.to_thread(chorus_verify, database_url, 20)
        assert failed.returncode == 1, failed.stdout + failed.stderr
        out = failed.stdout
        assert "messages: messages" in out
        assert f"only in the live table: ({message_id}," in out
        assert ",delivered," in out
        assert f",api:key:{KEY}," in out  # printed as recorded
        assert "decisions and approvals: approvals" in out
        assert f"only in the live table: ({held['rejected']}," in out
        assert "FAILED read models equal their rebuild" in out, out


class TestVerifyIdentities:
    async def test_merges_are_rebuilt_to_the_last_survivor_and_a_moved_identity_is_found(
        self, chorus: Installation
    ) -> None:
        await chorus.history()
        upsert = await chorus.container.get(UpsertCustomer)
        cid = await upsert((IdentityClaim(_normalize("email", "cid@example.org")),), {}, {})
        # Bea's and Cid's emails in one signal merge them; then Ana's and Cid's.
        for pair in (("bea", "cid"), ("ana", "cid")):
            claims = tuple(IdentityClaim(_normalize("email", f"{n}@example.org")) for n in pair)
            await upsert(claims, {}, {})
        await chorus.catch_up()
        merges = await chorus.pool.fetch("SELECT merged_id, survivor_id FROM customer_merges")
        assert len(merges) == 2
        assert len({row["survivor_id"] for row in merges}) == 1
        reports = await chorus.verify()
        assert reports[CHECK_READ_MODELS].shown == []
        await chorus.pool.execute(
            "UPDATE identities SET customer_id = $1 WHERE value = 'cid@example.org'",
            cid.customer_id,
        )
        found = (await chorus.verify()).pop(CHECK_READ_MODELS)
        subjects = {d.subject for d in found.shown}
        assert subjects == {"identities and merges: identities"}
        assert any(
            d.detail.startswith(
                f"only in the live table: (email,cid@example.org,{cid.customer_id})"
            )
            for d in found.shown
        )


HOTEL = ("Hotel", "gold-rv", "a@x.org", "+447700900777", "refund", "negative")


def holds_hotel(rows: list[asyncpg.Record]) -> bool:
    text = repr([dict(row) for row in rows])
    return any(value in text for value in HOTEL)


class TestVerifyErasure:
    async def test_erasing_a_survivor_scrubs_the_absorbed_customer_as_its_rebuild_does(
        self, chorus: Installation
    ) -> None:
        upsert = await chorus.container.get(UpsertCustomer)
        email = IdentityClaim(_normalize("email", "a@x.org"))
        phone = IdentityClaim(_normalize("phone", "+44 7700 900777"))
        await upsert((email,), {}, {})
        await upsert((phone,), {"last_name": "Hotel"}, {"plan": "gold-rv"})
        survivor = (await upsert((email, phone), {}, {})).customer_id
        await chorus.catch_up()
        erased = await (await chorus.container.get(EraseCustomer))(survivor)
        assert len(erased.erased_ids) == 2
        await chorus.catch_up()
        rows = await chorus.pool.fetch(
            "SELECT * FROM customer_directory WHERE customer_id = ANY($1::uuid[])",
            list(erased.erased_ids),
        )
        assert len(rows) == 2
        assert [(r["identities"], r["last_name"], r["attributes"]) for r in rows] == [
            ([], None, "{}")
        ] * 2
        assert not holds_hotel(rows)
        reports = await chorus.verify()
        assert {check: r.shown for check, r in reports.items()}[CHECK_READ_MODELS] == []

    async def test_an_erased_customers_classified_messages_read_erased_live_and_rebuilt(
        self, chorus: Installation
    ) -> None:
        upsert = await chorus.container.get(UpsertCustomer)
        ana = (await upsert((IdentityClaim(_normalize("email", "a@x.org")),), {}, {})).customer_id
        uows = await chorus.container.get(UnitsOfWork)
        async with uows() as uow:
            customers = uow.repository(Customer)
            customer = (await customers.get([ana]))[ana]
            message = ClassifiedMessage(
                uuid4(), Channel.EMAIL, T0, "refund", 0.93, "negative", -0.6, "high"
            )
            customer.note_classified(message, T0)
            customers.add(customer)
        await chorus.catch_up()
        assert (await chorus.verify())[CHECK_READ_MODELS].shown == []
        await (await chorus.container.get(EraseCustomer))(ana)
        await chorus.catch_up()
        rows = await chorus.pool.fetch(
            "SELECT properties FROM customer_signals WHERE signal_type = $1", CLASSIFIED_SIGNAL
        )
        assert len(rows) == 1
        assert not holds_hotel(rows)
        assert "[erased]" in rows[0]["properties"]
        reports = await chorus.verify()
        assert reports[CHECK_READ_MODELS].shown == []

    async def test_an_erased_customers_conversation_reads_its_classification_erased_live_and_rebuilt(
        self, chorus: Installation
    ) -> None:
        upsert = await chorus.container.get(UpsertCustomer)
        ana = (await upsert((IdentityClaim(_normalize("email", "a@x.org")),), {}, {})).customer_id
        uows = await chorus.container.get(UnitsOfWork)
        async with uows() as uow:
            conversation = Conversation.start(ana, "test", T0)
            conversation.receive(uuid4(), Channel.EMAIL, "Where is my refund?", T0, T0)
            conversation.classify(
                "refund", Sentiment.NEGATIVE, "test", T0, 0.93, None, "high", -0.6
            )
            uow.repository(Conversation).add(conversation)
        await chorus.catch_up()
        inbox = "SELECT intent, sentiment, seq, updated_at FROM inbox WHERE conversation_id = $1"
        before = await chorus.pool.fetchrow(inbox, conversation.id)
        assert (before["intent"], before["sentiment"]) == ("refund", "negative")
        assert (await chorus.verify())[CHECK_READ_MODELS].shown == []
        await (await chorus.container.get(EraseCustomer))(ana)
        await chorus.catch_up()
        after = await chorus.pool.fetchrow(inbox, conversation.id)
        assert (after["intent"], after["sentiment"]) == ("[erased]", None)
        assert (after["seq"], after["updated_at"]) == (before["seq"], before["updated_at"])
        (stored,) = await chorus.pool.fetch(
            "SELECT payload FROM events WHERE stream_id = $1 AND topic LIKE '%.Classified'",
            conversation.id,
        )
        assert not holds_hotel([stored])
        reports = await chorus.verify()
        assert reports[CHECK_READ_MODELS].shown == []


async def a_roster(chorus: Installation) -> tuple[UUID, UUID]:
    """Ana and Bea on support; Rui writes by email, is given to Ana, then writes on WhatsApp
    (still counting as an email of hers); Sam's conversation is Bea's until it is resolved, and
    hers again as a chat when Sam writes on WhatsApp. Returns Rui's and Sam's conversations."""
    uows = await chorus.container.get(UnitsOfWork)
    at = T0
    async with uows() as uow:
        for key in ("ana", "bea"):
            agent = Agent.register(
                key, key, frozenset(), {ChannelKind.EMAIL: 2, ChannelKind.CHAT: 1}, "test", at
            )
            agent.change_presence(Presence.AVAILABLE, "test", at)
            uow.repository(Agent).add(agent)
        team = Team.create("support", "Support", "test", at)
        for key in ("ana", "bea"):
            team.add_member(key, "test", at)
        uow.repository(Team).add(team)
    threads = []
    for agent, text in (("ana", "Where is my parcel?"), ("bea", "Wrong size")):
        async with uows() as uow:
            conversation = Conversation.start(uuid4(), "test", at)
            conversation.receive(uuid4(), Channel.EMAIL, text, at, at)
            who = ActingAgent(agent, frozenset({"support"}))
            conversation.assign(who, "support", "test", "test", at + timedelta(seconds=1))
            uow.repository(Conversation).add(conversation)
        threads.append(conversation.id)
    rui, sam = threads
    async with uows() as uow:
        conversations = uow.repository(Conversation)
        found = await conversations.get([rui, sam])
        found[rui].receive(uuid4(), Channel.WHATSAPP, "Any news?", at, at + timedelta(minutes=1))
        found[sam].resolve("exchanged", "bea", at + timedelta(minutes=2))
        for conversation in found.values():
            conversations.add(conversation)
    async with uows() as uow:
        conversations = uow.repository(Conversation)
        reopened = (await conversations.get([sam]))[sam]
        # Reopened and received in one save: Bea holds it again, as the chat it now is.
        reopened.receive(uuid4(), Channel.WHATSAPP, "Still wrong", at, at + timedelta(minutes=3))
        conversations.add(reopened)
    return rui, sam


class TestVerifyRoster:
    async def test_the_roster_is_rebuilt_and_a_tampered_load_or_holder_fails_the_command(
        self, chorus: Installation, database_url: str
    ) -> None:
        rui, _ = await a_roster(chorus)
        loads = await chorus.pool.fetch("SELECT agent, kind, held FROM agent_loads")
        assert {(r["agent"], r["kind"], r["held"]) for r in loads} == {
            ("ana", "email", 1),
            ("bea", "email", 0),  # a count that fell to 0 stays a row, in the rebuild too
            ("bea", "chat", 1),
        }
        reports = await chorus.verify()
        assert reports[CHECK_READ_MODELS].shown == []
        passed = await asyncio.to_thread(chorus_verify, database_url)
        assert passed.returncode == 0, passed.stdout + passed.stderr
        # The holds' trigger moves Ana's load with the kind; then her email count is forged.
        await chorus.pool.execute(
            "UPDATE conversation_holds SET kind = 'chat' WHERE conversation_id = $1", rui
        )
        await chorus.pool.execute(
            "UPDATE agent_loads SET held = 2 WHERE agent = 'ana' AND kind = 'email'"
        )
        await chorus.pool.execute(
            "UPDATE conversation_agents SET capacity = '{\"email\": 9}' WHERE key = 'bea'"
        )
        found = (await chorus.verify()).pop(CHECK_READ_MODELS)
        assert {d.subject for d in found.shown} == {
            "conversation holds and agent loads: agent_loads",
            "conversation holds and agent loads: conversation_holds",
            "roster agents: conversation_agents",
        }
        assert found.differences == 7  # 3 loads, 2 holder rows, 2 agent rows
        assert any(d.detail == "only in the live table: (ana,email,2)" for d in found.shown)
        assert any(d.detail == "only in the live table: (ana,chat,1)" for d in found.shown)
        assert any(d.detail == "only in its rebuild: (ana,email,1)" for d in found.shown)
        assert any(
            d.detail.startswith(f"only in the live table: ({rui},") and ",ana,chat," in d.detail
            for d in found.shown
        )
        failed = await asyncio.to_thread(chorus_verify, database_url, 20)
        assert failed.returncode == 1, failed.stdout + failed.stderr
        assert "conversation holds and agent loads: agent_loads" in failed.stdout
        assert "FAILED read models equal their rebuild" in failed.stdout

    async def test_an_sla_breach_escalated_by_the_timer_leaves_the_roster_as_rebuilt(
        self, chorus: Installation, database_url: str
    ) -> None:
        clock = await chorus.container.get(Clock)
        clock.set(T0)  # type: ignore[attr-defined]
        sla = {"first_response": {"chat": "2m", "email": "4h"}, "on_breach": {"priority": "urgent"}}
        document = decode_routing(
            {"default_team": "support", "sla": sla}, teams={"support"}, segments=set()
        )
        uows = await chorus.container.get(UnitsOfWork)
        async with uows() as uow:
            book = RoutingBook.open(T0)
            book.publish(document, "test", T0)
            uow.repository(RoutingBook).add(book)
        rui, sam = await a_roster(chorus)
        await chorus.catch_up()  # the SLA timers plan each waiting conversation's deadline
        clock.set(T0 + timedelta(hours=5))  # type: ignore[attr-defined]
        assert await (await chorus.container.get(SlaTimerRuns))(10) == 2
        await chorus.catch_up()
        holds = await chorus.pool.fetch(
            "SELECT conversation_id, priority, updated_at FROM conversation_holds"
        )
        breached = T0 + timedelta(hours=5)
        assert {tuple(r) for r in holds} == {
            (rui, Priority.URGENT.rank, breached),
            (sam, Priority.URGENT.rank, breached),
        }
        assert (await chorus.verify())[CHECK_READ_MODELS].shown == []
        passed = await asyncio.to_thread(chorus_verify, database_url)
        assert passed.returncode == 0, passed.stdout + passed.stderr


class TestMessageStory:
    async def test_a_deferred_then_sent_message_shows_both_decisions_from_the_log(
        self, chorus: Installation
    ) -> None:
        message_id = await chorus.history()
        story = await ReadMessageStory(PostgresAuditLog(chorus.pool))(message_id)
        assert [(d.outcome, d.decided_at, d.origin) for d in story.decisions] == [
            ("defer", T0, api_origin(KEY)),
            ("send", T0 + DAY, "scheduler"),
        ]
        assert (story.requested_by.kind, story.requested_by.key_id) == ("api", KEY)
        assert (story.status, story.content) == ("queued", {"subject": "Hello", "body": "Hi Ana"})

    async def test_a_deferred_message_names_the_template_its_deferral_will_send(
        self, chorus: Installation
    ) -> None:
        clock = await chorus.container.get(Clock)
        clock.set(T0)  # type: ignore[attr-defined]
        publish = await chorus.container.get(PublishTemplate)
        email = Variant(Channel.EMAIL, "en", subject="Hello", body="Hi {{ customer.first_name }}")
        await publish("hello", TemplateDraft((email,), "en"), "test")
        upsert = await chorus.container.get(UpsertCustomer)
        send = await chorus.container.get(RequestMessage)
        ana = await upsert(
            (IdentityClaim(_normalize("email", "ana@example.org"), Verification.VERIFIED),),
            {"first_name": "Ana"},
            {},
        )
        for _ in range(3):  # Ana's daily cap
            await send(ana.customer_id, SERVICE_EMAIL, origin=api_origin(KEY))
        deferred = await send(
            ana.customer_id, SERVICE_EMAIL, content=MessageContent(template="hello")
        )
        story = await ReadMessageStory(PostgresAuditLog(chorus.pool))(deferred.message_id)
        assert [d.outcome for d in story.decisions] == ["defer"]
        assert (story.status, story.template, story.template_version) == ("deferred", "hello", 1)
        assert story.content is None
