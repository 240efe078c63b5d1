"""Send requests over NATS request/reply: decided once, answered once, errors as problem details."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from typing import TYPE_CHECKING, Any, ClassVar, cast

import msgspec
import nats
import pytest
import structlog
from nats.errors import NoRespondersError
from prometheus_client import REGISTRY
from structlog.testing import LogCapture

from adapters.postgres.api_keys import PostgresApiKeyStore
from adapters.postgres.customer_records import PostgresCustomerRecords
from adapters.postgres.templates import PostgresTemplates
from adapters.postgres.unit_of_work import PostgresUnitsOfWork
from adapters.system.clock import SystemClock
from adapters.system.ids import RandomIds
from adapters.system.rule_sets import DefaultRuleSets
from adapters.templates.jinja import JinjaTemplates
from application.conversations.actors import Actor
from application.conversations.lifecycle import ReopenConversation, ResolveConversation
from application.conversations.notes import AddNote
from application.customer.upsert_customer import UpsertCustomer
from application.messages.request_message import MessageDecided, RequestMessage
from application.queries.customers import CustomerQueries
from application.queries.decisions import DecisionQueries, DecisionView
from domain.conversation.aggregate import Conversation, ConversationStatus
from domain.conversation.routing import RoutingDecision
from domain.conversation.vocabulary import Priority
from domain.customer.identities import Identity, IdentityClaim, IdentityNormalizer, Verification
from domain.policy.vocabulary import Channel
from entrypoints.conversation_commands import ConversationDesk
from entrypoints.http.rate_limiter import Limit, RateLimiter, RouteClass, key_caller
from entrypoints.tracing import CORRELATION_ATTRIBUTE
from entrypoints.workers.command_responder import SendCommandResponder, send_subject
from entrypoints.workers.conversation_responder import (
    ConversationCommandResponder,
    conversation_subject,
)
from ports.api_keys import NewApiKey, Role
from tests.tracing_spans import recorded_spans

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    import asyncpg
    from nats.aio.client import Client
    from nats.aio.msg import Msg

    from domain.policy.decision import SendRequest
    from ports.staff import StaffDirectory

    Start = Callable[..., Awaitable[SendCommandResponder]]
    Command = Callable[..., Awaitable[tuple[int, dict[str, Any]]]]

pytestmark = pytest.mark.integration

NORMALIZER = IdentityNormalizer("GB")
CLOCK = SystemClock()
EMAIL = "ana@example.org"


def a_prefix() -> str:
    """A subject prefix of one test's own, so responders of other tests never answer."""
    return f"t{uuid.uuid4().hex[:10]}"


async def a_customer(pool: asyncpg.Pool, email: str = EMAIL) -> uuid.UUID:
    made = await UpsertCustomer(PostgresUnitsOfWork(pool), SystemClock(), RandomIds())(
        (IdentityClaim(Identity("email", email), Verification.VERIFIED),), {}, {}
    )
    return made.customer_id


def a_responder(
    nc: Client,
    pool: asyncpg.Pool,
    prefix: str,
    request_message: RequestMessage | None = None,
    **options: Any,
) -> SendCommandResponder:
    store = PostgresUnitsOfWork(pool)
    return SendCommandResponder(
        nc,
        request_message
        or RequestMessage(
            store,
            DefaultRuleSets(),
            SystemClock(),
            RandomIds(),
            customers=PostgresCustomerRecords(pool),
        ),
        DecisionQueries(PostgresCustomerRecords(pool)),
        CustomerQueries(PostgresCustomerRecords(pool)),
        NORMALIZER,
        prefix=prefix,
        **{"keys": PostgresApiKeyStore(pool, CLOCK, RandomIds()), "clock": CLOCK, **options},
    )


def body(**fields: Any) -> bytes:
    payload: dict[str, Any] = {"team": "billing", "purpose": "transactional", "channels": ["email"]}
    payload.update(fields)
    return json.dumps(payload, default=str).encode()


async def ask(
    nc: Client, prefix: str, payload: bytes, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any], Msg]:
    reply = await nc.request(send_subject(prefix), payload, timeout=10, headers=headers)
    assert reply.headers is not None
    return int(reply.headers["Chorus-Status"]), json.loads(reply.data), reply


def assert_problem(status: int, answer: dict[str, Any], expected: int) -> None:
    assert status == expected
    assert answer["status"] == expected
    assert set(answer) == {"type", "title", "status", "detail", "errors"}
    assert answer["type"].startswith("https://chorus.dev/problems/")


class Counting(RequestMessage):
    """A use case that counts its calls and can wait before deciding."""

    def __init__(self, pool: asyncpg.Pool, delay: float = 0.0) -> None:
        super().__init__(
            PostgresUnitsOfWork(pool),
            DefaultRuleSets(),
            SystemClock(),
            RandomIds(),
            customers=PostgresCustomerRecords(pool),
        )
        self.calls = 0
        self.delay = delay
        self.entered = asyncio.Event()

    async def __call__(
        self,
        customer_id: uuid.UUID,
        request: SendRequest,
        *,
        idempotency_key: str | None = None,
        origin: str = "api",
        content: object = None,
    ) -> MessageDecided:
        self.calls += 1
        self.entered.set()
        await asyncio.sleep(self.delay)
        return await super().__call__(
            customer_id, request, idempotency_key=idempotency_key, origin=origin
        )


class Exploding(Counting):
    """A use case that fails as an unexpected bug would."""

    async def __call__(
        self,
        customer_id: uuid.UUID,
        request: SendRequest,
        *,
        idempotency_key: str | None = None,
        origin: str = "api",
        content: object = None,
    ) -> MessageDecided:
        self.calls += 1
        raise RuntimeError("boom")


def capturing() -> tuple[Any, LogCapture]:
    """A logger whose events, with the bound context variables, land in a list."""
    capture = LogCapture()
    return structlog.wrap_logger(
        None, processors=[structlog.contextvars.merge_contextvars, capture]
    ), capture


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[Client]:
    client = await nats.connect(nats_url)
    yield client
    await client.close()


@pytest.fixture
async def started(nc: Client, pool: asyncpg.Pool) -> AsyncIterator[Start]:
    """Starts responders on demand and stops whatever a test left running."""
    made: list[SendCommandResponder] = []

    async def start(prefix: str, **options: Any) -> SendCommandResponder:
        responder = a_responder(nc, pool, prefix, **options)
        await responder.start()
        made.append(responder)
        return responder

    yield start
    for responder in made:
        await responder.stop(grace=5)


class TestAnswers:
    async def test_a_request_answers_with_the_recorded_decision(
        self, nc: Client, pool: asyncpg.Pool, started: Start
    ) -> None:
        prefix = a_prefix()
        customer_id = await a_customer(pool)
        await started(prefix)
        status, answer, reply = await ask(nc, prefix, body(customer_id=str(customer_id)))
        assert status == 200
        assert reply.headers is not None
        assert reply.headers["Chorus-Repeated"] == "false"
        # made before the decision, so the message and its dispatch carry it (as over HTTP)
        assert re.fullmatch(r"[0-9a-f]{32}", reply.headers["Chorus-Correlation-Id"])
        recorded = await DecisionQueries(PostgresCustomerRecords(pool)).by_id(
            uuid.UUID(answer["decision_id"])
        )
        assert msgspec.json.decode(reply.data, type=DecisionView) == recorded
        assert answer == json.loads(msgspec.json.encode(recorded))
        assert answer["customer_id"] == str(customer_id)
        assert answer["request"]["team"] == "billing"
        assert answer["origin"] == "nats"

    async def test_an_identity_finds_the_customer_and_a_given_correlation_id_is_echoed(
        self, nc: Client, pool: asyncpg.Pool, started: Start
    ) -> None:
        prefix = a_prefix()
        customer_id = await a_customer(pool)
        await started(prefix)
        status, answer, reply = await ask(
            nc,
            prefix,
            body(identity=f"email:{EMAIL.upper()}"),
            headers={"Chorus-Correlation-Id": "order-42"},
        )
        assert status == 200
        assert answer["customer_id"] == str(customer_id)
        assert reply.headers is not None
        assert reply.headers["Chorus-Correlation-Id"] == "order-42"

    async def test_the_same_idempotency_key_gets_the_same_decision_per_team(
        self, nc: Client, pool: asyncpg.Pool, started: Start
    ) -> None:
        prefix = a_prefix()
        customer_id = str(await a_customer(pool))
        await started(prefix)
        by_header = {"Idempotency-Key": "invoice-7"}
        _, first, _ = await ask(nc, prefix, body(customer_id=customer_id), by_header)
        _, again, reply = await ask(nc, prefix, body(customer_id=customer_id), by_header)
        _, by_field, _ = await ask(
            nc, prefix, body(customer_id=customer_id, idempotency_key="invoice-7")
        )
        _, other_team, _ = await ask(
            nc, prefix, body(customer_id=customer_id, team="growth"), by_header
        )
        assert again["decision_id"] == first["decision_id"]
        assert by_field["decision_id"] == first["decision_id"]
        assert reply.headers is not None
        assert reply.headers["Chorus-Repeated"] == "true"
        assert other_team["decision_id"] != first["decision_id"]
        assert await pool.fetchval("SELECT count(*) FROM decisions") == 2

    async def test_a_header_and_a_field_that_disagree_are_a_400_naming_both(
        self, nc: Client, pool: asyncpg.Pool, started: Start
    ) -> None:
        prefix = a_prefix()
        customer_id = str(await a_customer(pool))
        await started(prefix)
        keyed = body(customer_id=customer_id, idempotency_key="invoice-8")
        status, refused, _ = await ask(nc, prefix, keyed, {"Idempotency-Key": "invoice-9"})
        assert status == 400, refused
        assert [e["field"] for e in refused["errors"]] == [
            "$.idempotency_key",
            "header.Idempotency-Key",
        ]
        status, _, _ = await ask(nc, prefix, keyed, {"Idempotency-Key": "invoice-8"})
        assert status == 200
        assert await pool.fetchval("SELECT count(*) FROM decisions") == 1


class TestProblems:
    async def test_an_unknown_customer_or_identity_is_a_404_problem(
        self, nc: Client, pool: asyncpg.Pool, started: Start
    ) -> None:
        prefix = a_prefix()
        await started(prefix)
        status, answer, _ = await ask(nc, prefix, body(customer_id=str(uuid.uuid4())))
        assert_problem(status, answer, 404)
        assert answer["type"].endswith("/not-found")
        status, answer, _ = await ask(nc, prefix, body(identity="email:nobody@example.org"))
        assert_problem(status, answer, 404)

    @pytest.mark.parametrize(
        ("payload", "field"),
        [
            (body(channels=["pigeon"]), "$.channels[0]"),
            (json.dumps({"purpose": "service", "channels": ["sms"]}).encode(), "$.team"),
            (body(priority=500), "$.priority"),
            (body(colour="blue"), "$.colour"),
            (body(), "$.customer_id"),
            (body(customer_id=str(uuid.uuid4()), identity="email:a@b.org"), "$.customer_id"),
        ],
    )
    async def test_a_malformed_payload_is_a_400_problem_naming_the_field(
        self, nc: Client, pool: asyncpg.Pool, started: Start, payload: bytes, field: str
    ) -> None:
        prefix = a_prefix()
        await started(prefix)
        status, answer, _ = await ask(nc, prefix, payload)
        assert_problem(status, answer, 400)
        assert answer["type"].endswith("/invalid-request")
        assert answer["errors"][0]["field"] == field
        assert answer["errors"][0]["reason"]

    @pytest.mark.parametrize(
        ("payload", "reason"),
        [
            (b"{not json", "JSON is malformed: object keys must be strings"),
            (b"", "the body is empty: send a JSON object"),
            # cut short after a value a typed read refuses first
            (b'{"channels": ["pigeon"', "the JSON ends before it is complete"),
        ],
    )
    async def test_a_payload_that_is_no_json_is_http_s_invalid_json_problem(
        self, nc: Client, pool: asyncpg.Pool, started: Start, payload: bytes, reason: str
    ) -> None:
        prefix = a_prefix()
        await started(prefix)
        status, answer, _ = await ask(nc, prefix, payload)
        assert_problem(status, answer, 400)
        assert (answer["type"], answer["title"]) == (
            "https://chorus.dev/problems/invalid-json",
            "The body is not JSON",
        )
        assert answer["detail"].startswith(reason)
        assert answer["errors"] == [{"field": "$", "reason": answer["detail"]}]

    async def test_a_refused_value_is_a_422_problem(
        self, nc: Client, pool: asyncpg.Pool, started: Start
    ) -> None:
        prefix = a_prefix()
        await started(prefix)
        status, answer, _ = await ask(nc, prefix, body(identity="no-colon-here"))
        assert_problem(status, answer, 422)
        assert answer["errors"][0]["field"] == "$.identity"

    async def test_content_over_the_render_budget_is_a_422_problem_naming_the_budget(
        self, nc: Client, pool: asyncpg.Pool, started: Start
    ) -> None:
        prefix = a_prefix()
        store = PostgresUnitsOfWork(pool)
        templates = JinjaTemplates(PostgresTemplates(pool))
        rendering = RequestMessage(
            store,
            DefaultRuleSets(),
            SystemClock(),
            RandomIds(),
            templates,
            customers=PostgresCustomerRecords(pool),
        )
        await started(prefix, request_message=rendering)
        runaway = "{% set s = 'x' * 4000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}"
        payload = body(
            customer_id=str(await a_customer(pool)), content={"subject": "Hi", "body": runaway}
        )
        status, answer, _ = await ask(nc, prefix, payload)
        assert_problem(status, answer, 422)
        assert answer["type"].endswith("/render-error")
        assert answer["errors"][0]["budget"] in ("operations", "seconds")
        assert "limit" in answer["errors"][0]
        assert answer["errors"][0]["field"] == "$.content"  # as over HTTP

    async def test_a_bug_is_a_logged_500_and_the_subscription_lives_on(
        self, nc: Client, pool: asyncpg.Pool, started: Start
    ) -> None:
        prefix = a_prefix()
        customer_id = str(await a_customer(pool))
        logger, capture = capturing()
        await started(prefix, request_message=Exploding(pool), logger=logger)
        status, answer, _ = await ask(
            nc, prefix, body(customer_id=customer_id), {"Chorus-Correlation-Id": "c-1"}
        )
        status_again, _, reply_again = await ask(nc, prefix, body(customer_id=customer_id))
        assert_problem(status, answer, 500)
        assert "boom" not in json.dumps(answer)
        assert status_again == 500
        failed = [e for e in capture.entries if e["event"] == "send command failed"]
        assert len(failed) == 2
        assert failed[0]["log_level"] == "error"
        assert failed[0]["exc_info"]
        assert failed[0]["correlation_id"] == "c-1"
        assert reply_again.headers is not None  # one of ours, as over HTTP, and said in the reply
        assert failed[1]["correlation_id"] == reply_again.headers["Chorus-Correlation-Id"]

    async def test_a_request_without_a_reply_subject_is_logged_and_dropped(
        self, nc: Client, pool: asyncpg.Pool, started: Start
    ) -> None:
        prefix = a_prefix()
        customer_id = str(await a_customer(pool))
        logger, capture = capturing()
        await started(prefix, logger=logger)
        await nc.publish(send_subject(prefix), body(customer_id=customer_id))
        status, _, reply = await ask(nc, prefix, body(customer_id=customer_id))
        assert status == 200
        assert reply.headers is not None
        events = [e["event"] for e in capture.entries]
        assert events.count("send command without a reply subject dropped") == 1
        assert await pool.fetchval("SELECT count(*) FROM decisions") == 1
        answered = [e for e in capture.entries if e["event"] == "send command answered"]
        assert [e["correlation_id"] for e in answered] == [reply.headers["Chorus-Correlation-Id"]]


class TestQueueGroup:
    async def test_two_responders_answer_twenty_concurrent_requests_exactly_once_each(
        self, nc: Client, pool: asyncpg.Pool, started: Start
    ) -> None:
        prefix = a_prefix()
        customers = [str(await a_customer(pool, f"c{n}@example.org")) for n in range(20)]
        first, second = Counting(pool, delay=0.05), Counting(pool, delay=0.05)
        await started(prefix, request_message=first)
        await started(prefix, request_message=second)
        inbox = nc.new_inbox()
        replies: list[Msg] = []
        all_in = asyncio.Event()

        async def collect(msg: Msg) -> None:
            replies.append(msg)
            if len(replies) >= 20:
                all_in.set()

        sub = await nc.subscribe(inbox, cb=collect)
        await asyncio.gather(
            *(
                nc.publish(
                    send_subject(prefix),
                    body(customer_id=customer_id),
                    reply=inbox,
                    headers={"Chorus-Correlation-Id": f"req-{n}"},
                )
                for n, customer_id in enumerate(customers)
            )
        )
        await asyncio.wait_for(all_in.wait(), timeout=15)
        await asyncio.sleep(0.5)  # any second answer would arrive meanwhile
        await sub.unsubscribe()
        assert len(replies) == 20
        assert all(r.headers and r.headers["Chorus-Status"] == "200" for r in replies)
        assert {r.headers["Chorus-Correlation-Id"] for r in replies if r.headers} == {
            f"req-{n}" for n in range(20)
        }
        assert len({json.loads(r.data)["decision_id"] for r in replies}) == 20
        assert first.calls + second.calls == 20
        assert first.calls > 0
        assert second.calls > 0
        assert await pool.fetchval("SELECT count(*) FROM decisions") == 20


class TestStopping:
    async def test_stop_lets_the_request_in_flight_finish_then_takes_no_more(
        self, nc: Client, pool: asyncpg.Pool
    ) -> None:
        prefix = a_prefix()
        customer_id = str(await a_customer(pool))
        slow = Counting(pool, delay=0.5)
        responder = a_responder(nc, pool, prefix, request_message=slow)
        await responder.start()
        asked = asyncio.create_task(ask(nc, prefix, body(customer_id=customer_id)))
        await asyncio.wait_for(slow.entered.wait(), timeout=5)
        await responder.stop(grace=10)
        status, _, _ = await asyncio.wait_for(asked, timeout=5)
        assert status == 200
        assert await pool.fetchval("SELECT count(*) FROM decisions") == 1
        assert not responder.running
        with pytest.raises((NoRespondersError, TimeoutError)):
            await nc.request(send_subject(prefix), body(customer_id=customer_id), timeout=1)
        await responder.stop()  # stopping twice is harmless

    async def test_stop_cancels_what_outlives_the_grace(
        self, nc: Client, pool: asyncpg.Pool
    ) -> None:
        prefix = a_prefix()
        customer_id = str(await a_customer(pool))
        stuck = Counting(pool, delay=30)
        responder = a_responder(nc, pool, prefix, request_message=stuck)
        await responder.start()
        asked = asyncio.create_task(ask(nc, prefix, body(customer_id=customer_id)))
        await asyncio.wait_for(stuck.entered.wait(), timeout=5)
        await asyncio.wait_for(responder.stop(grace=0.5), timeout=5)
        asked.cancel()
        assert await pool.fetchval("SELECT count(*) FROM decisions") == 0


class TestTracing:
    async def test_a_command_continues_the_callers_trace_into_its_messages_outbox_row(
        self, nc: Client, pool: asyncpg.Pool, started: Start
    ) -> None:
        spans = recorded_spans()
        spans.clear()
        prefix = a_prefix()
        customer_id = str(await a_customer(pool))
        rendering = RequestMessage(
            PostgresUnitsOfWork(pool),
            DefaultRuleSets(),
            SystemClock(),
            RandomIds(),
            JinjaTemplates(PostgresTemplates(pool)),
            customers=PostgresCustomerRecords(pool),
        )
        await started(prefix, request_message=rendering)
        caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736"
        status, answer, _ = await ask(
            nc,
            prefix,
            body(customer_id=customer_id, content={"subject": "Invoice", "body": "Ready"}),
            headers={
                "Chorus-Correlation-Id": "invoice-7",
                "traceparent": f"00-{caller_trace}-00f067aa0ba902b7-01",
            },
        )
        assert status == 200, answer
        [command] = [s for s in spans.get_finished_spans() if s.name == "send command"]
        assert command.context is not None
        assert format(command.context.trace_id, "032x") == caller_trace
        assert (command.attributes or {})[CORRELATION_ATTRIBUTE] == "invoice-7"
        stored = await pool.fetchval(
            "SELECT trace_context FROM outbox WHERE message_id = $1",
            uuid.UUID(answer["message_id"]),
        )
        assert stored.split("-")[1] == caller_trace
        assert stored.split("-")[2] == format(command.context.span_id, "016x")


async def a_key(
    pool: asyncpg.Pool, role: Role, teams: tuple[str, ...] = (), agent: str | None = None
) -> NewApiKey:
    return await PostgresApiKeyStore(pool, CLOCK, RandomIds()).create(
        role, "nats", teams=teams, agent=agent
    )


class TestKeys:
    async def test_a_command_with_a_key_names_it_in_the_decisions_origin(
        self, nc: Client, pool: asyncpg.Pool, started: Start
    ) -> None:
        prefix = a_prefix()
        customer_id = await a_customer(pool)
        key = await a_key(pool, Role.SERVICE, ("billing",))
        await started(prefix)
        status, answer, _ = await ask(
            nc, prefix, body(customer_id=str(customer_id)), {"Chorus-Key": key.secret}
        )
        assert status == 200, answer
        assert answer["origin"] == f"nats:key:{key.key.id}"
        status, answer, _ = await ask(
            nc,
            prefix,
            body(customer_id=str(customer_id), idempotency_key="bearer"),
            {"Authorization": f"Bearer {key.secret}"},
        )
        assert status == 200, answer
        assert answer["origin"] == f"nats:key:{key.key.id}"

    async def test_a_team_key_sending_as_another_team_is_a_403_problem(
        self, nc: Client, pool: asyncpg.Pool, started: Start
    ) -> None:
        prefix = a_prefix()
        customer_id = await a_customer(pool)
        key = await a_key(pool, Role.SERVICE, ("growth",))
        await started(prefix)
        status, answer, _ = await ask(
            nc, prefix, body(customer_id=str(customer_id)), {"Chorus-Key": key.secret}
        )
        assert_problem(status, answer, 403)
        assert "growth only, not for billing" in answer["detail"]
        assert await pool.fetchval("SELECT count(*) FROM decisions") == 0

    async def test_an_unknown_revoked_or_unfit_key_is_refused(
        self, nc: Client, pool: asyncpg.Pool, started: Start
    ) -> None:
        prefix = a_prefix()
        customer_id = await a_customer(pool)
        keys = PostgresApiKeyStore(pool, CLOCK, RandomIds())
        revoked = await a_key(pool, Role.SERVICE)
        await keys.revoke(revoked.key.id, by="test")
        auditor = await a_key(pool, Role.AUDITOR)
        await started(prefix)
        payload = body(customer_id=str(customer_id))
        status, answer, _ = await ask(nc, prefix, payload, {"Chorus-Key": "chorus_nobody"})
        assert_problem(status, answer, 401)
        status, answer, _ = await ask(nc, prefix, payload, {"Chorus-Key": revoked.secret})
        assert_problem(status, answer, 401)
        assert "revoked" in answer["detail"]
        status, answer, _ = await ask(nc, prefix, payload, {"Authorization": "Basic eA=="})
        assert_problem(status, answer, 401)
        status, answer, _ = await ask(nc, prefix, payload, {"Chorus-Key": auditor.secret})
        assert_problem(status, answer, 403)
        assert await pool.fetchval("SELECT count(*) FROM decisions") == 0

    async def test_a_key_is_mandatory_when_the_setting_says_so(
        self, nc: Client, pool: asyncpg.Pool, started: Start
    ) -> None:
        prefix = a_prefix()
        customer_id = await a_customer(pool)
        key = await a_key(pool, Role.SERVICE)
        await started(prefix, require_key=True)
        payload = body(customer_id=str(customer_id))
        status, answer, _ = await ask(nc, prefix, payload)
        assert_problem(status, answer, 401)
        status, answer, _ = await ask(nc, prefix, payload, {"Chorus-Key": key.secret})
        assert status == 200, answer
        assert answer["origin"] == f"nats:key:{key.key.id}"


def refused_count() -> float:
    sample = REGISTRY.get_sample_value("chorus_rate_limited_total", {"route_class": "send"})
    return sample or 0.0


class StoppedClock:
    """Monotonic seconds for the limiter, moving only when told."""

    def __init__(self) -> None:
        self.seconds = 1_000.0

    def __call__(self) -> float:
        return self.seconds


class TestRateLimits:
    """A key's commands spend its `send` budget, the one its HTTP sends spend (ADR 0022)."""

    async def test_a_burst_from_one_key_gets_429s_while_another_keys_command_is_decided(
        self, nc: Client, pool: asyncpg.Pool, started: Start
    ) -> None:
        prefix = a_prefix()
        customer_id = await a_customer(pool)
        noisy, quiet = await a_key(pool, Role.SERVICE), await a_key(pool, Role.SERVICE)
        clock = StoppedClock()
        limiter = RateLimiter({RouteClass.SEND: Limit(60, 3)}, clock=clock)
        await started(prefix, limiter=limiter)
        refused_before = refused_count()

        answers = await asyncio.gather(
            *(
                ask(
                    nc,
                    prefix,
                    body(customer_id=str(customer_id), idempotency_key=f"noisy-{n}"),
                    {"Chorus-Key": noisy.secret},
                )
                for n in range(8)
            )
        )
        statuses = sorted(status for status, _, _ in answers)
        assert statuses == [200] * 3 + [429] * 5
        for status, answer, reply in answers:
            if status != 429:
                continue
            assert answer["status"] == 429
            assert answer["type"] == "https://chorus.dev/problems/rate-limited"
            assert answer["route_class"] == "send"
            assert answer["retry_after"] == 1
            assert "try again in 1 s" in answer["detail"]
            assert reply.headers is not None
            assert reply.headers["Retry-After"] == "1"
        assert refused_count() == refused_before + 5
        # Refused before anything was decided: three decisions, none for the refused.
        assert await pool.fetchval("SELECT count(*) FROM decisions") == 3

        status, answer, _ = await ask(
            nc, prefix, body(customer_id=str(customer_id)), {"Chorus-Key": quiet.secret}
        )
        assert status == 200, answer
        assert answer["origin"] == f"nats:key:{quiet.key.id}"
        # Without a key, a command is not limited (NATS's own permissions admit it).
        status, answer, _ = await ask(nc, prefix, body(customer_id=str(customer_id)))
        assert status == 200, answer
        # The noisy key goes on once its wait is over.
        clock.seconds += 1.0
        status, answer, _ = await ask(
            nc,
            prefix,
            body(customer_id=str(customer_id), idempotency_key="later"),
            {"Chorus-Key": noisy.secret},
        )
        assert status == 200, answer

    async def test_a_key_that_spent_its_budget_over_http_is_refused_over_nats(
        self, nc: Client, pool: asyncpg.Pool, started: Start
    ) -> None:
        prefix = a_prefix()
        customer_id = await a_customer(pool)
        key = await a_key(pool, Role.SERVICE)
        limiter = RateLimiter({RouteClass.SEND: Limit(2, 2)}, clock=StoppedClock())
        await started(prefix, limiter=limiter)
        for _ in range(2):  # what the HTTP middleware spends for two POST /v1/messages
            assert limiter.wait(RouteClass.SEND, key_caller(key.key.id)) == 0.0
        status, answer, _ = await ask(
            nc, prefix, body(customer_id=str(customer_id)), {"Chorus-Key": key.secret}
        )
        assert status == 429, answer
        assert answer["retry_after"] == 30  # two a minute: the next in half a minute


class Desk:
    """A conversation desk that answers every command with what it was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    async def _answer(self, command: str, actor: Actor) -> dict[str, Any]:
        self.calls.append((command, actor.by))
        return {"command": command}

    async def resolve(self, _: uuid.UUID, actor: Actor, __: object, ___: object) -> dict[str, Any]:
        return await self._answer("resolve", actor)

    async def note(self, _: uuid.UUID, actor: Actor, __: object, ___: object) -> dict[str, Any]:
        return await self._answer("note", actor)


class Staff:
    """Ana on support, Bruno on billing."""

    TEAMS: ClassVar[dict[str, frozenset[str]]] = {
        "ana.silva": frozenset({"support"}),
        "bruno.costa": frozenset({"billing"}),
    }

    async def teams_of(self, agent: str) -> frozenset[str]:
        return self.TEAMS.get(agent, frozenset())


class TestConversationCommandLimits:
    async def test_a_keys_commands_spend_its_admin_budget_and_an_unfit_key_is_refused(
        self, nc: Client, pool: asyncpg.Pool
    ) -> None:
        prefix = a_prefix()
        noisy = await a_key(pool, Role.AGENT, agent="ana.silva")
        quiet = await a_key(pool, Role.SERVICE)
        auditor = await a_key(pool, Role.AUDITOR)
        limiter = RateLimiter({RouteClass.ADMIN: Limit(60, 2)}, clock=StoppedClock())
        desk = Desk()
        responder = ConversationCommandResponder(
            nc,
            cast("ConversationDesk", desk),
            cast("StaffDirectory", Staff()),
            keys=PostgresApiKeyStore(pool, CLOCK, RandomIds()),
            clock=CLOCK,
            limiter=limiter,
            prefix=prefix,
        )
        await responder.start()
        try:

            async def command(name: str, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
                payload = json.dumps({"conversation_id": str(uuid.uuid4())}).encode()
                if name == "note":
                    payload = json.dumps(
                        {"conversation_id": str(uuid.uuid4()), "text": "called back"}
                    ).encode()
                reply = await nc.request(
                    conversation_subject(name, prefix), payload, timeout=10, headers=headers
                )
                assert reply.headers is not None
                return int(reply.headers["Chorus-Status"]), json.loads(reply.data)

            answers = [await command("resolve", {"Chorus-Key": noisy.secret}) for _ in range(3)]
            assert [status for status, _ in answers] == [200, 200, 429]
            assert answers[2][1]["route_class"] == "admin"
            assert answers[2][1]["retry_after"] == 1
            status, _ = await command("note", {"Chorus-Key": noisy.secret})
            assert status == 429  # a note is an admin command too
            assert (await command("resolve", {"Chorus-Key": quiet.secret}))[0] == 200
            assert (await command("resolve", {}))[0] == 200  # without a key: not limited
            assert (await command("resolve", {"Chorus-Key": "chorus_nobody"}))[0] == 401
            status, answer = await command("resolve", {"Chorus-Key": auditor.secret})
            assert status == 403, answer
            assert len(desk.calls) == 4
        finally:
            await responder.stop(grace=5)


async def a_conversation(pool: asyncpg.Pool, team: str) -> uuid.UUID:
    """A customer's conversation, routed to `team`'s queue."""
    customer_id = await a_customer(pool, f"{uuid.uuid4().hex[:12]}@example.org")
    now = CLOCK.now()
    conversation = Conversation.start(customer_id, "customer", now)
    conversation.receive(uuid.uuid4(), Channel.EMAIL, "Where is my refund?", now, now)
    queued = RoutingDecision(1, team, None, Priority.NORMAL, False, frozenset(), None, ())
    conversation.apply_routing(queued, "router", now)
    async with PostgresUnitsOfWork(pool)() as uow:
        uow.repository(Conversation).add(conversation)
    return conversation.id


@pytest.fixture
async def desk_command(
    nc: Client, pool: asyncpg.Pool
) -> AsyncIterator[Callable[..., Awaitable[Command]]]:
    """Starts a conversation command responder over a desk that notes and resolves for real
    (with the responder's options), and gives what asks it a command."""
    made: list[ConversationCommandResponder] = []

    async def start(**options: Any) -> Command:
        prefix = a_prefix()
        uows = PostgresUnitsOfWork(pool)
        unused = cast("Any", object())
        desk = ConversationDesk(
            unused,
            AddNote(uows, CLOCK, RandomIds()),
            unused,
            ResolveConversation(uows, CLOCK),
            ReopenConversation(uows, CLOCK),
            unused,
            unused,
            unused,
            unused,
            unused,
        )
        responder = ConversationCommandResponder(
            nc,
            desk,
            cast("StaffDirectory", Staff()),
            keys=PostgresApiKeyStore(pool, CLOCK, RandomIds()),
            clock=CLOCK,
            prefix=prefix,
            **options,
        )
        await responder.start()
        made.append(responder)

        async def ask(
            name: str,
            body: dict[str, Any] | bytes,
            key: NewApiKey | None = None,
            headers: dict[str, str] | None = None,
        ) -> tuple[int, dict[str, Any]]:
            sent = {**(headers or {}), **({} if key is None else {"Chorus-Key": key.secret})}
            reply = await nc.request(
                conversation_subject(name, prefix),
                body if isinstance(body, bytes) else json.dumps(body, default=str).encode(),
                timeout=10,
                headers=sent or None,
            )
            assert reply.headers is not None
            return int(reply.headers["Chorus-Status"]), json.loads(reply.data)

        return ask

    yield start
    for responder in made:
        await responder.stop(grace=5)


class TestConversationCommandsActAsTheirKey:
    """A command carrying a key acts as that key would over HTTP (`actor_of`): an agent key as
    its agent, a key limited to teams on those teams' conversations only."""

    @pytest.fixture
    async def command(self, desk_command: Callable[..., Awaitable[Command]]) -> Command:
        return await desk_command()

    async def test_an_agent_key_acting_as_another_agent_is_a_403_naming_the_field(
        self, pool: asyncpg.Pool, command: Command
    ) -> None:
        billing = await a_conversation(pool, "billing")
        ana = await a_key(pool, Role.AGENT, agent="ana.silva")
        as_bruno = {"conversation_id": billing, "agent": "bruno.costa", "text": "VIP"}
        status, refused = await command("note", as_bruno, ana)
        assert status == 403, refused
        assert refused["type"].endswith("/forbidden")
        assert refused["errors"][0]["field"] == "$.agent"
        assert "'bruno.costa'" in refused["errors"][0]["reason"]
        # Assign names who acts in `acting_agent`: the refusal names that field
        assign = {"conversation_id": billing, "agent": "ana.silva", "reason": "asked"}
        status, refused = await command("assign", {**assign, "acting_agent": "bruno.costa"}, ana)
        assert (status, refused["errors"][0]["field"]) == (403, "$.acting_agent")
        # Ana's key acts as Ana: on billing's conversation she is not on the team
        status, refused = await command("note", {**as_bruno, "agent": "ana.silva"}, ana)
        assert (status, refused["type"].rpartition("/")[2]) == (403, "not-on-team")
        status, refused = await command("note", {"conversation_id": billing, "text": "VIP"}, ana)
        assert (status, refused["type"].rpartition("/")[2]) == (403, "not-on-team")
        # Without a key the body still says who acts, as the service's internal callers expect
        status, noted = await command("note", as_bruno)
        assert (status, noted["author"]) == (200, "bruno.costa")

    async def test_an_agent_key_acts_as_its_agent_named_or_not(
        self, pool: asyncpg.Pool, command: Command
    ) -> None:
        support = await a_conversation(pool, "support")
        ana = await a_key(pool, Role.AGENT, agent="ana.silva")
        status, noted = await command("note", {"conversation_id": support, "text": "VIP"}, ana)
        assert (status, noted["author"]) == (200, "ana.silva")
        named = {"conversation_id": support, "agent": "ana.silva", "text": "called back"}
        status, noted = await command("note", named, ana)
        assert (status, noted["author"]) == (200, "ana.silva")
        nobodys = await a_key(pool, Role.AGENT)
        status, refused = await command("note", named, nobodys)
        assert status == 403
        assert "names no agent" in refused["detail"]

    async def test_a_key_limited_to_a_team_acts_on_that_teams_conversations_only(
        self, pool: asyncpg.Pool, command: Command
    ) -> None:
        support, billing = (
            await a_conversation(pool, "support"),
            await a_conversation(pool, "billing"),
        )
        key = await a_key(pool, Role.SERVICE, ("support",))
        status, refused = await command("resolve", {"conversation_id": billing}, key)
        assert (status, refused["type"].rpartition("/")[2]) == (403, "not-on-team")
        # Naming billing's agent does not reach past the key's teams either
        as_bruno = {"conversation_id": billing, "agent": "bruno.costa"}
        status, refused = await command("resolve", as_bruno, key)
        assert (status, refused["type"].rpartition("/")[2]) == (403, "not-on-team")
        status, resolved = await command("resolve", {"conversation_id": support}, key)
        assert (status, resolved["status"]) == (200, "resolved"), resolved
        status, noted = await command("note", {"conversation_id": support, "text": "VIP"}, key)
        assert (status, noted["author"]) == (200, key.key.author)
        # An agent key limited to a team: its agent, on that team's conversations only
        ana = await a_key(pool, Role.AGENT, ("support",), agent="ana.silva")
        status, noted = await command("note", {"conversation_id": support, "text": "ok"}, ana)
        assert (status, noted["author"]) == (200, "ana.silva")

    async def test_an_unlimited_service_key_acts_as_itself_or_as_the_agent_named(
        self, pool: asyncpg.Pool, command: Command
    ) -> None:
        billing = await a_conversation(pool, "billing")
        key = await a_key(pool, Role.SERVICE)
        status, noted = await command("note", {"conversation_id": billing, "text": "a"}, key)
        assert (status, noted["author"]) == (200, key.key.author)
        as_bruno = {"conversation_id": billing, "agent": "bruno.costa", "text": "b"}
        status, noted = await command("note", as_bruno, key)
        assert (status, noted["author"]) == (200, "bruno.costa")
        status, refused = await command("note", {**as_bruno, "agent": "ana.silva"}, key)
        assert (status, refused["type"].rpartition("/")[2]) == (403, "not-on-team")


class TestNotesUnderAnIdempotencyKey:
    async def test_the_key_again_repeats_the_note_and_with_another_text_is_a_409(
        self, pool: asyncpg.Pool, desk_command: Callable[..., Awaitable[Command]]
    ) -> None:
        command = await desk_command()
        support = await a_conversation(pool, "support")
        ana = await a_key(pool, Role.AGENT, agent="ana.silva")
        first = {"conversation_id": support, "text": "first"}
        keyed = {"Idempotency-Key": "nt-9"}
        status, noted = await command("note", first, ana, keyed)
        assert (status, noted["repeated"]) == (200, False), noted
        status, again = await command("note", first, ana, keyed)
        assert (status, again["repeated"], again["text"]) == (200, True, "first")
        status, refused = await command("note", {**first, "text": "second, different"}, ana, keyed)
        assert (status, refused["type"].rpartition("/")[2]) == (409, "idempotency-key-reused")
        async with PostgresUnitsOfWork(pool)() as uow:
            conversation = (await uow.repository(Conversation).get([support]))[support]
        assert [note.text for note in conversation.notes] == ["first"]


class TestConversationCommandPayloads:
    @pytest.mark.parametrize("name", ["note", "resolve"])
    @pytest.mark.parametrize(
        ("payload", "reason"),
        [
            (b'{"conversation_id": ', "the JSON ends before it is complete"),
            (b"{'text': 'single quotes'}", "JSON is malformed"),
            (b"", "the body is empty: send a JSON object"),
        ],
    )
    async def test_a_payload_that_is_no_json_is_http_s_invalid_json_problem(
        self,
        desk_command: Callable[..., Awaitable[Command]],
        name: str,
        payload: bytes,
        reason: str,
    ) -> None:
        command = await desk_command()
        status, refused = await command(name, payload)
        assert status == 400, refused
        assert (refused["type"], refused["title"]) == (
            "https://chorus.dev/problems/invalid-json",
            "The body is not JSON",
        )
        assert refused["detail"].startswith(reason)
        assert refused["errors"] == [{"field": "$", "reason": refused["detail"]}]

    @pytest.mark.parametrize("name", ["note", "resolve"])
    async def test_an_unknown_field_is_named_by_its_path_as_over_http(
        self, desk_command: Callable[..., Awaitable[Command]], name: str
    ) -> None:
        command = await desk_command()
        body = {"conversation_id": str(uuid.uuid4()), "colour": "red"}
        status, refused = await command(name, body)
        assert status == 400, refused
        assert [e["field"] for e in refused["errors"]] == ["$.colour"]


class TestConversationCommandsWhenAKeyIsRequired:
    """`CHORUS_NATS_REQUIRE_KEY` makes a key mandatory on conversation commands as on send
    commands: nobody acts as the agent a body names on a publish permission alone."""

    async def test_a_command_without_a_key_is_the_401_a_send_command_gets_and_does_nothing(
        self,
        nc: Client,
        pool: asyncpg.Pool,
        started: Start,
        desk_command: Callable[..., Awaitable[Command]],
    ) -> None:
        support = await a_conversation(pool, "support")
        command = await desk_command(require_key=True)
        prefix = a_prefix()
        await started(prefix, require_key=True)
        _, send_refused, _ = await ask(nc, prefix, body(customer_id=str(uuid.uuid4())))

        as_ana = {"conversation_id": support, "agent": "ana.silva", "text": "VIP"}
        for name, payload in (
            ("note", as_ana),
            ("resolve", {"conversation_id": support, "agent": "ana.silva"}),
            ("assign", {"conversation_id": support, "agent": "ana.silva", "reason": "asked"}),
        ):
            status, refused = await command(name, payload)
            assert_problem(status, refused, 401)
            assert refused == send_refused, name
        async with PostgresUnitsOfWork(pool)() as uow:
            conversation = (await uow.repository(Conversation).get([support]))[support]
        assert conversation.notes == []
        assert conversation.status is not ConversationStatus.RESOLVED
        # A key is still checked, and then decides who acts, as when keys are optional
        status, refused = await command("note", as_ana, headers={"Chorus-Key": "chorus_nobody"})
        assert_problem(status, refused, 401)
        assert refused["detail"] == "this API key is not known"
        ana = await a_key(pool, Role.AGENT, agent="ana.silva")
        status, noted = await command("note", as_ana, ana)
        assert (status, noted["author"]) == (200, "ana.silva")
        service = await a_key(pool, Role.SERVICE)
        status, noted = await command(
            "note", as_ana, headers={"Authorization": f"Bearer {service.secret}"}
        )
        assert (status, noted["author"]) == (200, "ana.silva")

    async def test_by_default_a_command_without_a_key_acts_as_the_agent_it_names(
        self, pool: asyncpg.Pool, desk_command: Callable[..., Awaitable[Command]]
    ) -> None:
        support = await a_conversation(pool, "support")
        command = await desk_command()
        status, noted = await command(
            "note", {"conversation_id": support, "agent": "ana.silva", "text": "VIP"}
        )
        assert (status, noted["author"]) == (200, "ana.silva")


class TestConversationCommandRetries:
    """A retry over NATS is as safe as over HTTP: a note under the same idempotency key (header
    or field) is added once; resolve and reopen are idempotent by their effect."""

    async def test_a_note_retried_under_its_key_is_added_once_whichever_way_the_key_comes(
        self, pool: asyncpg.Pool, desk_command: Callable[..., Awaitable[Command]]
    ) -> None:
        support = await a_conversation(pool, "support")
        command = await desk_command()
        note = {"conversation_id": support, "agent": "ana.silva", "text": "called back"}
        by_header = {"Idempotency-Key": "call-1"}
        status, first = await command("note", note, headers=by_header)
        assert (status, first["repeated"]) == (200, False), first
        status, again = await command("note", note, headers=by_header)
        assert (status, again["repeated"]) == (200, True), again
        assert again["note_id"] == first["note_id"]
        status, by_field = await command("note", {**note, "idempotency_key": "call-1"})
        assert (status, by_field["note_id"], by_field["repeated"]) == (200, first["note_id"], True)
        # Another key, or none, is another note
        status, other = await command("note", note, headers={"Idempotency-Key": "call-2"})
        assert (status, other["repeated"]) == (200, False)
        assert other["note_id"] != first["note_id"]
        async with PostgresUnitsOfWork(pool)() as uow:
            conversation = (await uow.repository(Conversation).get([support]))[support]
        assert [str(n.note_id) for n in conversation.notes] == [
            first["note_id"],
            other["note_id"],
        ]

    async def test_a_header_and_a_field_that_disagree_are_a_400_naming_both(
        self, pool: asyncpg.Pool, desk_command: Callable[..., Awaitable[Command]]
    ) -> None:
        support = await a_conversation(pool, "support")
        command = await desk_command()
        note = {"conversation_id": support, "agent": "ana.silva", "text": "called back"}
        keyed = {**note, "idempotency_key": "call-1"}
        status, refused = await command("note", keyed, headers={"Idempotency-Key": "call-2"})
        assert status == 400, refused
        assert refused["errors"] == [
            {
                "field": "$.idempotency_key",
                "reason": "differs from the Idempotency-Key header: give one key, or the same in "
                "both",
            },
            {
                "field": "header.Idempotency-Key",
                "reason": "differs from the body's idempotency_key: give one key, or the same in "
                "both",
            },
        ]
        status, added = await command("note", keyed, headers={"Idempotency-Key": "call-1"})
        assert (status, added["repeated"]) == (200, False), added
        async with PostgresUnitsOfWork(pool)() as uow:
            conversation = (await uow.repository(Conversation).get([support]))[support]
        assert [str(n.note_id) for n in conversation.notes] == [added["note_id"]]

    async def test_resolve_and_reopen_again_change_nothing(
        self, pool: asyncpg.Pool, desk_command: Callable[..., Awaitable[Command]]
    ) -> None:
        support = await a_conversation(pool, "support")
        command = await desk_command()
        ids = {"conversation_id": support, "agent": "ana.silva"}
        answers = [await command(name, ids) for name in ("resolve", "resolve", "reopen", "reopen")]
        assert [(s, a["status"], a["changed"]) for s, a in answers] == [
            (200, "resolved", True),
            (200, "resolved", False),
            (200, answers[2][1]["status"], True),
            (200, answers[2][1]["status"], False),
        ]
        assert answers[2][1]["status"] != "resolved"
