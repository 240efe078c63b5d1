"""Signals over NATS JetStream are committed once, dead-lettered when hopeless, retried otherwise."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
import nats
import pytest
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import NotFoundError
from prometheus_client import REGISTRY

from adapters.postgres.api_keys import PostgresApiKeyStore
from adapters.postgres.customer_records import PostgresCustomerRecords
from adapters.postgres.projections import ProjectionRunner
from adapters.postgres.signal_intake import PostgresSignalIntake
from adapters.postgres.unit_of_work import PostgresUnitsOfWork
from adapters.system.clock import SystemClock
from adapters.system.ids import RandomIds
from application.customer.signals import AcceptSignals, AttributeSignals, IngestSignals
from domain.customer.identities import IdentityNormalizer
from domain.signals.document import SignalReader
from domain.signals.intake import RECEIVED_TOPIC
from entrypoints.http.rate_limiter import Limit, RateLimiter, RouteClass
from entrypoints.text_checks import wire_fault
from entrypoints.workers.signal_consumer import SignalConsumer, ensure_signal_stream
from ports.api_keys import Role
from tests.integration.readable_log import reading_every_commit

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

    import asyncpg
    from nats.aio.client import Client
    from nats.js.api import RawStreamMsg
    from nats.js.client import JetStreamContext

    from domain.signals.document import ReceivedSignal

pytestmark = pytest.mark.integration

COUNT_SIGNALS = f"SELECT count(*) FROM events WHERE topic = '{RECEIVED_TOPIC}'"
NORMALIZER = IdentityNormalizer("GB")


@dataclass(frozen=True)
class Names:
    """Streams, subjects and a durable of one test's own, so tests never see each other."""

    stream: str
    subjects: str
    subject: str
    dead_letter_stream: str
    dead_letter_subjects: str
    dead_letter_subject: str
    durable: str

    @classmethod
    def fresh(cls) -> Names:
        tag = uuid.uuid4().hex[:10]
        return cls(
            stream=f"SIGNALS_{tag}",
            subjects=f"t{tag}.signals.>",
            subject=f"t{tag}.signals.orders",
            dead_letter_stream=f"DEAD_LETTERS_{tag}",
            dead_letter_subjects=f"t{tag}.dlq.>",
            dead_letter_subject=f"t{tag}.dlq.signals",
            durable=f"ingest-{tag}",
        )


def signal(event_id: str, email: str = "ana@example.org", **extra: Any) -> bytes:
    body: dict[str, Any] = {
        "id": event_id,
        "type": "order.placed",
        "occurred_at": "2025-03-01T10:00:00Z",
        "identities": [{"type": "email", "value": email}],
        "properties": {"total": 42},
    }
    body.update(extra)
    return json.dumps(body).encode()


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {within} s")
        await asyncio.sleep(0.05)


async def count_signals(pool: asyncpg.Pool) -> int:
    """Signals committed by intake."""
    found: int = await pool.fetchval(COUNT_SIGNALS)
    return found


async def attribute(store: PostgresUnitsOfWork) -> int:
    """Runs attribution over what intake committed, as the projection worker does."""
    ingest = IngestSignals(store, SystemClock(), RandomIds())
    intake = PostgresSignalIntake(store.pool)
    attribution = AttributeSignals(ingest, SignalReader(NORMALIZER), intake, SystemClock())
    runner = reading_every_commit(ProjectionRunner(store.pool, [attribution]), store.pool)
    await runner.setup()
    return await runner.catch_up()


class FailingOnce(AcceptSignals):
    """Fails its first call, before committing or (after_commit) after committing."""

    def __init__(self, *args: Any, after_commit: bool = False) -> None:
        super().__init__(*args)
        self.after_commit = after_commit
        self.calls = 0

    async def __call__(self, signals: Sequence[ReceivedSignal]) -> list[bool]:
        self.calls += 1
        if self.calls > 1:
            return await super().__call__(signals)
        if self.after_commit:
            await super().__call__(signals)
        raise ConnectionError("database went away")


class Slow(AcceptSignals):
    """Commits, but only after `delay` seconds each time: a database under load."""

    def __init__(self, *args: Any, delay: float) -> None:
        super().__init__(*args)
        self.delay = delay
        self.calls = 0

    async def __call__(self, signals: Sequence[ReceivedSignal]) -> list[bool]:
        self.calls += 1
        await asyncio.sleep(self.delay)
        return await super().__call__(signals)


class AlwaysFailing(AcceptSignals):
    async def __call__(self, signals: Sequence[ReceivedSignal]) -> list[bool]:
        raise ConnectionError("database is down")


class Hanging(AcceptSignals):
    """Never returns, like a process that froze before its commit."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.entered = asyncio.Event()

    async def __call__(self, signals: Sequence[ReceivedSignal]) -> list[bool]:
        self.entered.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


@pytest.fixture
def names() -> Names:
    return Names.fresh()


@pytest.fixture
async def nc(nats_url: str, names: Names) -> AsyncIterator[Client]:
    client = await nats.connect(nats_url)
    yield client
    js = client.jetstream()
    for stream in (names.stream, names.dead_letter_stream):
        with contextlib.suppress(NotFoundError):
            await js.delete_stream(stream)
    await client.close()


@pytest.fixture
def js(nc: Client) -> JetStreamContext:
    return nc.jetstream()


@pytest.fixture
def ingest_args(pool: asyncpg.Pool) -> tuple[PostgresSignalIntake, SystemClock, IngestSignals]:
    ingest = IngestSignals(PostgresUnitsOfWork(pool), SystemClock(), RandomIds())
    return PostgresSignalIntake(pool), SystemClock(), ingest


@pytest.fixture
async def consumer_for(
    names: Names,
) -> AsyncIterator[Callable[..., Awaitable[SignalConsumer]]]:
    """Starts consumers on this test's streams; stops them all afterwards."""
    started: list[SignalConsumer] = []

    async def start(js: JetStreamContext, ingest: AcceptSignals, **options: Any) -> SignalConsumer:
        options.setdefault("fetch_timeout", 0.2)
        consumer = SignalConsumer(
            js,
            ingest,
            SignalReader(NORMALIZER, refuse=wire_fault),
            stream_name=names.stream,
            durable=names.durable,
            subjects=names.subjects,
            dead_letter_stream=names.dead_letter_stream,
            dead_letter_subjects=names.dead_letter_subjects,
            dead_letter_subject=names.dead_letter_subject,
            **options,
        )
        await consumer.start()
        started.append(consumer)
        return consumer

    yield start
    for consumer in started:
        await consumer.stop(grace=2.0)


async def all_consumed(js: JetStreamContext, names: Names) -> bool:
    info = await js.consumer_info(names.stream, names.durable)
    return bool(info.num_pending == 0 and info.num_ack_pending == 0)


async def dead_letters(js: JetStreamContext, names: Names) -> list[RawStreamMsg]:
    info = await js.stream_info(names.dead_letter_stream)
    return [
        await js.get_msg(names.dead_letter_stream, seq) for seq in range(1, info.state.messages + 1)
    ]


async def test_a_published_signal_is_committed_and_its_customer_found_by_identity(
    js: JetStreamContext,
    names: Names,
    ingest_args: tuple[PostgresSignalIntake, SystemClock, IngestSignals],
    consumer_for: Callable[..., Awaitable[SignalConsumer]],
) -> None:
    store = PostgresUnitsOfWork(ingest_args[0].pool)
    await consumer_for(js, AcceptSignals(*ingest_args))

    await js.publish(
        names.subject, signal("order-1", " Ana@Example.ORG "), headers={"Nats-Msg-Id": "order-1"}
    )

    await eventually(lambda: all_consumed(js, names))
    assert await count_signals(store.pool) == 1
    assert await attribute(store) == 1
    records = PostgresCustomerRecords(store.pool)
    customer_id = await records.find(NORMALIZER.normalize("email", "ana@example.org"))
    assert customer_id is not None
    assert await records.get(customer_id) is not None
    assert await attribute(store) == 0  # applied once, whatever reruns


async def test_the_same_event_published_twice_is_stored_once(
    js: JetStreamContext,
    names: Names,
    pool: asyncpg.Pool,
    ingest_args: tuple[PostgresSignalIntake, SystemClock, IngestSignals],
    consumer_for: Callable[..., Awaitable[SignalConsumer]],
) -> None:
    await consumer_for(js, AcceptSignals(*ingest_args))

    first = await js.publish(names.subject, signal("ev-1"), headers={"Nats-Msg-Id": "ev-1"})
    again = await js.publish(names.subject, signal("ev-1"), headers={"Nats-Msg-Id": "ev-1"})
    assert again.duplicate
    assert again.seq == first.seq
    # Past the duplicate window JetStream would keep it: here, another message id.
    late = await js.publish(names.subject, signal("ev-1"), headers={"Nats-Msg-Id": "ev-1-late"})
    assert not late.duplicate
    await js.publish(names.subject, signal("ev-2"), headers={"Nats-Msg-Id": "ev-2"})

    await eventually(lambda: all_consumed(js, names))
    assert await count_signals(pool) == 2
    info = await js.consumer_info(names.stream, names.durable)
    assert info.delivered.stream_seq == 3


async def test_malformed_messages_are_dead_lettered_with_a_reason_and_not_redelivered(
    js: JetStreamContext,
    names: Names,
    pool: asyncpg.Pool,
    ingest_args: tuple[PostgresSignalIntake, SystemClock, IngestSignals],
    consumer_for: Callable[..., Awaitable[SignalConsumer]],
) -> None:
    await consumer_for(js, AcceptSignals(*ingest_args))
    missing_type = json.loads(signal("no-type"))
    del missing_type["type"]
    published = [
        (signal("good-1"), "good-1"),
        (b"this is not json", "junk"),
        (json.dumps(missing_type).encode(), "no-type"),
        (signal("bad-email", "not an email"), "bad-email"),
        (signal("good-2", "bo@example.org"), "good-2"),
    ]
    acks = [
        await js.publish(names.subject, data, headers={"Nats-Msg-Id": msg_id})
        for data, msg_id in published
    ]

    async def three_dead_letters() -> bool:
        return len(await dead_letters(js, names)) == 3

    await eventually(three_dead_letters)
    await eventually(lambda: all_consumed(js, names))
    assert await count_signals(pool) == 2

    letters = await dead_letters(js, names)
    by_msg_id = {m.headers["Chorus-Correlation-Id"]: m for m in letters if m.headers}
    assert set(by_msg_id) == {"junk", "no-type", "bad-email"}
    for (data, msg_id), ack in zip(published, acks, strict=True):
        if msg_id in by_msg_id:
            letter = by_msg_id[msg_id]
            assert letter.data == data
            assert letter.headers is not None
            assert letter.headers["Chorus-Subject"] == names.subject
            assert letter.headers["Chorus-Stream-Seq"] == str(ack.seq)
    reasons = {msg_id: (m.headers or {})["Chorus-Reason"] for msg_id, m in by_msg_id.items()}
    assert "malformed" in reasons["junk"]
    assert "`type`" in reasons["no-type"]
    assert reasons["bad-email"].startswith("$.identities[0].value")
    assert (by_msg_id["bad-email"].headers or {}).get("Chorus-Event-Id") == "bad-email"

    # Terminated, so never redelivered: nothing more arrives on the dead-letter stream.
    await asyncio.sleep(1.0)
    info = await js.consumer_info(names.stream, names.durable)
    assert info.num_redelivered == 0
    assert info.num_ack_pending == 0
    assert len(await dead_letters(js, names)) == 3


async def test_a_batch_message_commits_its_valid_signals_and_dead_letters_each_invalid_one(
    js: JetStreamContext,
    names: Names,
    pool: asyncpg.Pool,
    ingest_args: tuple[PostgresSignalIntake, SystemClock, IngestSignals],
    consumer_for: Callable[..., Awaitable[SignalConsumer]],
) -> None:
    await consumer_for(js, AcceptSignals(*ingest_args))
    parts = [
        json.loads(signal("batch-a")),
        json.loads(signal("batch-bad", "not an email")),
        json.loads(signal("batch-b", "bo@example.org")),
        json.loads(signal("batch-a")),
    ]
    await js.publish(
        names.subject, json.dumps({"signals": parts}).encode(), headers={"Nats-Msg-Id": "b-1"}
    )
    await js.publish(names.subject, b'{"signals": []}', headers={"Nats-Msg-Id": "b-empty"})

    async def two_dead_letters() -> bool:
        return len(await dead_letters(js, names)) == 2

    await eventually(two_dead_letters)
    await eventually(lambda: all_consumed(js, names))
    assert await count_signals(pool) == 2
    letters = {(m.headers or {})["Chorus-Correlation-Id"]: m for m in await dead_letters(js, names)}
    part = letters["b-1"]
    assert json.loads(part.data)["id"] == "batch-bad"
    assert (part.headers or {})["Chorus-Batch-Index"] == "1"
    assert (part.headers or {})["Chorus-Reason"].startswith("$.signals[1].identities[0].value")
    assert "1 to 1000" in (letters["b-empty"].headers or {})["Chorus-Reason"]
    assert await attribute(PostgresUnitsOfWork(pool)) == 2

    await asyncio.sleep(1.0)
    info = await js.consumer_info(names.stream, names.durable)
    assert info.num_redelivered == 0
    assert len(await dead_letters(js, names)) == 2


async def test_an_inbound_message_its_conversation_cannot_thread_is_dead_lettered_naming_why(
    js: JetStreamContext,
    names: Names,
    pool: asyncpg.Pool,
    ingest_args: tuple[PostgresSignalIntake, SystemClock, IngestSignals],
    consumer_for: Callable[..., Awaitable[SignalConsumer]],
) -> None:
    await consumer_for(js, AcceptSignals(*ingest_args))

    def message(event_id: str, **properties: Any) -> dict[str, Any]:
        return json.loads(
            signal(
                event_id,
                type="message.received",
                properties={"channel": "email", "text": "Where is my card?", **properties},
            )
        )

    parts = [
        message("m-good", topic="cards"),
        message("m-topic", topic="Not A Key!! "),
        message("m-whatsapp", channel="whatsapp"),  # from an email address
    ]
    await js.publish(
        names.subject, json.dumps({"signals": parts}).encode(), headers={"Nats-Msg-Id": "m-1"}
    )
    one = signal("m-alone", type="message.received", properties={"channel": 42, "text": "hi"})
    await js.publish(names.subject, one, headers={"Nats-Msg-Id": "m-alone"})

    async def three_dead_letters() -> bool:
        return len(await dead_letters(js, names)) == 3

    await eventually(three_dead_letters)
    await eventually(lambda: all_consumed(js, names))
    assert await count_signals(pool) == 1  # the good one only
    reasons = {
        json.loads(m.data)["id"]: (m.headers or {})["Chorus-Reason"]
        for m in await dead_letters(js, names)
    }
    assert reasons["m-topic"].startswith("$.signals[1].properties.topic: is not a topic key")
    assert reasons["m-whatsapp"] == (
        "$.signals[2].properties.channel: is 'whatsapp', whose messages come from a "
        "whatsapp_id or phone identity; the signal names only email"
    )
    assert reasons["m-alone"].startswith("$.properties.channel: must be a string")


@pytest.mark.parametrize("after_commit", [False, True], ids=["before-commit", "after-commit"])
async def test_a_batch_whose_ingest_fails_is_redelivered_and_stored_exactly_once(
    js: JetStreamContext,
    names: Names,
    pool: asyncpg.Pool,
    ingest_args: tuple[PostgresSignalIntake, SystemClock, IngestSignals],
    consumer_for: Callable[..., Awaitable[SignalConsumer]],
    after_commit: bool,
) -> None:
    flaky = FailingOnce(*ingest_args, after_commit=after_commit)
    await consumer_for(js, flaky, retry_delay=0.2)

    for n in range(20):
        await js.publish(
            names.subject,
            signal(f"retry-{n}", f"p{n % 5}@example.org"),
            headers={"Nats-Msg-Id": f"retry-{n}"},
        )

    async def stored() -> bool:
        return await count_signals(pool) == 20

    await eventually(stored)
    await eventually(lambda: all_consumed(js, names))
    assert flaky.calls >= 2
    assert await count_signals(pool) == 20
    assert (await js.stream_info(names.dead_letter_stream)).state.messages == 0


async def test_a_consumer_stopped_before_acking_hands_its_messages_to_the_next(
    nats_url: str,
    js: JetStreamContext,
    names: Names,
    pool: asyncpg.Pool,
    ingest_args: tuple[PostgresSignalIntake, SystemClock, IngestSignals],
    consumer_for: Callable[..., Awaitable[SignalConsumer]],
) -> None:
    crashed_nc = await nats.connect(nats_url)
    hanging = Hanging(*ingest_args)
    first = await consumer_for(crashed_nc.jetstream(), hanging, ack_wait=1.0)
    for n in range(10):
        await js.publish(names.subject, signal(f"crash-{n}"), headers={"Nats-Msg-Id": f"crash-{n}"})
    await asyncio.wait_for(hanging.entered.wait(), 10)

    # The process dies: its connection goes, nothing is acknowledged.
    await crashed_nc.close()
    await first.stop(grace=0.1)
    assert not first.running
    assert await count_signals(pool) == 0

    await consumer_for(js, AcceptSignals(*ingest_args), ack_wait=1.0)

    async def stored() -> bool:
        return await count_signals(pool) == 10

    await eventually(stored)
    await eventually(lambda: all_consumed(js, names))
    assert await count_signals(pool) == 10


async def test_messages_waiting_on_slow_commits_are_not_redelivered(
    js: JetStreamContext,
    names: Names,
    pool: asyncpg.Pool,
    ingest_args: tuple[PostgresSignalIntake, SystemClock, IngestSignals],
    consumer_for: Callable[..., Awaitable[SignalConsumer]],
) -> None:
    # Batch messages of 600 signals: a group each, more groups than commit slots, and every
    # commit longer than ack_wait; a message queued for a slot waits three of them.
    slow = Slow(*ingest_args, delay=1.5)
    await consumer_for(js, slow, ack_wait=1.0)
    for n in range(6):
        batch = [msgspec.json.decode(signal(f"slow-{n}-{i}")) for i in range(600)]
        body = msgspec.json.encode({"signals": batch})
        await js.publish(names.subject, body, headers={"Nats-Msg-Id": f"slow-{n}"})

    async def stored() -> bool:
        return await count_signals(pool) == 3600

    await eventually(stored, within=30)
    await eventually(lambda: all_consumed(js, names))
    info = await js.consumer_info(names.stream, names.durable)
    assert info.num_redelivered == 0
    assert slow.calls == 6


async def test_a_signal_that_keeps_failing_is_dead_lettered_after_max_deliver(
    js: JetStreamContext,
    names: Names,
    pool: asyncpg.Pool,
    ingest_args: tuple[PostgresSignalIntake, SystemClock, IngestSignals],
    consumer_for: Callable[..., Awaitable[SignalConsumer]],
) -> None:
    await consumer_for(js, AlwaysFailing(*ingest_args), max_deliver=2, retry_delay=0.2)
    for n in range(3):
        await js.publish(
            names.subject, signal(f"doomed-{n}"), headers={"Nats-Msg-Id": f"doomed-{n}"}
        )

    async def all_dead() -> bool:
        return len(await dead_letters(js, names)) == 3

    await eventually(all_dead)
    await eventually(lambda: all_consumed(js, names))
    for letter in await dead_letters(js, names):
        assert letter.headers is not None
        assert "database is down" in letter.headers["Chorus-Reason"]
        assert letter.headers["Chorus-Delivered"] == "2"
    assert await count_signals(pool) == 0


async def test_two_thousand_signals_published_quickly_are_all_stored_exactly_once(
    js: JetStreamContext,
    names: Names,
    pool: asyncpg.Pool,
    ingest_args: tuple[PostgresSignalIntake, SystemClock, IngestSignals],
    consumer_for: Callable[..., Awaitable[SignalConsumer]],
) -> None:
    await consumer_for(js, AcceptSignals(*ingest_args))
    total = 2000
    for n in range(total):
        await js.publish_async(
            names.subject,
            signal(f"bulk-{n}", f"c{n % 400}@example.org"),
            headers={"Nats-Msg-Id": f"bulk-{n}"},
        )
    await js.publish_async_completed()

    async def stored() -> bool:
        return await count_signals(pool) == total

    await eventually(stored, within=30.0)
    await eventually(lambda: all_consumed(js, names))
    assert await count_signals(pool) == total
    assert await attribute(PostgresUnitsOfWork(pool)) == total
    customers = await pool.fetchval("SELECT count(DISTINCT customer_id) FROM identities")
    assert customers == 400


async def test_ensure_signal_stream_is_idempotent_and_widens_a_short_duplicate_window(
    js: JetStreamContext, names: Names
) -> None:
    await js.add_stream(
        StreamConfig(
            name=names.stream,
            subjects=[names.subjects],
            storage=StorageType.FILE,
            duplicate_window=5.0,
            max_age=3600.0,
        )
    )
    for _ in range(2):
        await ensure_signal_stream(
            js,
            names.stream,
            subjects=names.subjects,
            dead_letter_stream=names.dead_letter_stream,
            dead_letter_subjects=names.dead_letter_subjects,
        )
    signals = (await js.stream_info(names.stream)).config
    assert signals.duplicate_window == 120.0
    assert signals.subjects == [names.subjects]
    assert signals.max_age == 3600.0  # the operator's own settings are kept
    letters = (await js.stream_info(names.dead_letter_stream)).config
    assert letters.subjects == [names.dead_letter_subjects]
    assert letters.storage == StorageType.FILE


class StoppedClock:
    """Monotonic seconds for the limiter, moving only when told."""

    def __init__(self) -> None:
        self.seconds = 1_000.0

    def __call__(self) -> float:
        return self.seconds


def refused_ingest() -> float:
    sample = REGISTRY.get_sample_value("chorus_rate_limited_total", {"route_class": "ingest"})
    return sample or 0.0


async def test_a_keys_signals_over_its_ingest_limit_are_dead_lettered_and_others_go_on(
    js: JetStreamContext,
    names: Names,
    pool: asyncpg.Pool,
    ingest_args: tuple[PostgresSignalIntake, SystemClock, IngestSignals],
    consumer_for: Callable[..., Awaitable[SignalConsumer]],
) -> None:
    clock = SystemClock()
    keys = PostgresApiKeyStore(pool, clock, RandomIds())
    noisy = await keys.create(Role.SERVICE, "noisy")
    quiet = await keys.create(Role.SERVICE, "quiet")
    marketer = await keys.create(Role.MARKETER, "marketer")
    limiter = RateLimiter({RouteClass.INGEST: Limit(60, 3)}, clock=StoppedClock())
    before = refused_ingest()
    published: list[tuple[str, dict[str, str]]] = [
        *((f"noisy-{n}", {"Chorus-Key": noisy.secret}) for n in range(6)),
        *((f"quiet-{n}", {"Authorization": f"Bearer {quiet.secret}"}) for n in range(2)),
        ("no-key", {}),
        ("unknown-key", {"Chorus-Key": "chorus_nobody"}),
        ("marketer", {"Chorus-Key": marketer.secret}),
    ]
    await consumer_for(js, AcceptSignals(*ingest_args), keys=keys, clock=clock, limiter=limiter)
    for event_id, headers in published:
        await js.publish(
            names.subject, signal(event_id), headers={"Nats-Msg-Id": event_id, **headers}
        )

    await eventually(lambda: all_consumed(js, names))
    assert await count_signals(pool) == 3 + 2 + 1  # noisy's burst, quiet's, the keyless one
    letters = await dead_letters(js, names)
    reasons = sorted(
        (json.loads(letter.data)["id"], (letter.headers or {})["Chorus-Reason"])
        for letter in letters
    )
    limited = [reason for event_id, reason in reasons if event_id.startswith("noisy-")]
    assert len(limited) == 3
    assert all(reason.startswith("429 rate-limited: ") for reason in limited)
    assert all("3 at once; try again in 1 s" in reason for reason in limited)
    assert dict(reasons)["unknown-key"] == "401 unauthorized: this API key is not known"
    assert dict(reasons)["marketer"].startswith("403 forbidden: role 'marketer' may not")
    assert len(letters) == 5
    assert refused_ingest() == before + 3


def dead_lettered() -> float:
    sample = REGISTRY.get_sample_value(
        "chorus_signals_total", {"transport": "nats", "outcome": "dead_lettered"}
    )
    return sample or 0.0


async def test_with_a_key_required_a_signal_without_one_is_dead_lettered_as_a_401(
    js: JetStreamContext,
    names: Names,
    pool: asyncpg.Pool,
    ingest_args: tuple[PostgresSignalIntake, SystemClock, IngestSignals],
    consumer_for: Callable[..., Awaitable[SignalConsumer]],
) -> None:
    clock = SystemClock()
    keys = PostgresApiKeyStore(pool, clock, RandomIds())
    service = await keys.create(Role.SERVICE, "orders")
    before = dead_lettered()
    await consumer_for(js, AcceptSignals(*ingest_args), keys=keys, clock=clock, require_key=True)
    batch = json.dumps({"signals": [json.loads(signal("batch-1")), json.loads(signal("batch-2"))]})
    published: list[tuple[str, bytes, dict[str, str]]] = [
        ("keyless", signal("keyless"), {}),
        ("keyless-batch", batch.encode(), {}),
        ("blank-key", signal("blank-key"), {"Chorus-Key": "  "}),
        ("unknown-key", signal("unknown-key"), {"Chorus-Key": "chorus_nobody"}),
        ("keyed", signal("keyed"), {"Chorus-Key": service.secret}),
        ("bearer", signal("bearer"), {"Authorization": f"Bearer {service.secret}"}),
    ]
    for message_id, data, headers in published:
        await js.publish(names.subject, data, headers={"Nats-Msg-Id": message_id, **headers})

    await eventually(lambda: all_consumed(js, names))
    assert await count_signals(pool) == 2  # the keyed ones only
    letters = await dead_letters(js, names)
    reasons = {
        letter.data: (letter.headers or {})["Chorus-Reason"] for letter in letters if letter.data
    }
    required = (
        "401 unauthorized: send an API key as 'Chorus-Key: <key>' or 'Authorization: Bearer <key>'"
    )
    assert reasons[signal("keyless")] == required
    assert reasons[batch.encode()] == required  # a batch message is refused whole, unread
    assert reasons[signal("blank-key")] == required
    assert reasons[signal("unknown-key")] == "401 unauthorized: this API key is not known"
    assert len(letters) == 4
    assert dead_lettered() == before + 4


async def test_by_default_a_signal_without_a_key_is_committed(
    js: JetStreamContext,
    names: Names,
    pool: asyncpg.Pool,
    ingest_args: tuple[PostgresSignalIntake, SystemClock, IngestSignals],
    consumer_for: Callable[..., Awaitable[SignalConsumer]],
) -> None:
    clock = SystemClock()
    keys = PostgresApiKeyStore(pool, clock, RandomIds())
    await consumer_for(js, AcceptSignals(*ingest_args), keys=keys, clock=clock)
    await js.publish(names.subject, signal("keyless"), headers={"Nats-Msg-Id": "keyless"})
    await eventually(lambda: all_consumed(js, names))
    assert await count_signals(pool) == 1
    with contextlib.suppress(NotFoundError):
        assert await dead_letters(js, names) == []
