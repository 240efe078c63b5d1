"""Customer changes and merges go out on JetStream, once per event id, in order per customer."""

from __future__ import annotations

import asyncio
import contextlib
import io
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
import nats
import nats.errors
import nats.js.errors
import pytest
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import NotFoundError

from adapters.nats.outages import is_bus_outage
from adapters.nats.publisher import JetStreamPublisher, ensure_stream
from adapters.postgres.customer_records import PostgresCustomerRecords
from adapters.postgres.process_ports import ProcessPortsOn
from adapters.postgres.processes import ProcessProjection
from adapters.postgres.projections import ProjectionRunner
from adapters.postgres.unit_of_work import PostgresUnitsOfWork
from adapters.system.clock import SystemClock
from adapters.system.ids import RandomIds
from application.customer.change_consent import ChangeConsent
from application.customer.change_suppression import ChangeSuppression
from application.customer.upsert_customer import UpsertCustomer
from application.outbound.events import OUTBOUND_EVENTS
from application.outbound.payloads import CloudEvent
from application.processes.outbound_events import OutboundEvents
from domain.customer.contact import ConsentRecord
from domain.customer.identities import IdentityClaim, IdentityNormalizer, Verification
from domain.policy.vocabulary import Channel, Purpose
from entrypoints.cli import main
from ports.bus import OutboundMessage, PublishFailed
from tests.integration.readable_log import log_readable

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

    import asyncpg
    from nats.aio.client import Client
    from nats.js.client import JetStreamContext

    from ports.bus import EventPublisher

pytestmark = pytest.mark.integration
GB = IdentityNormalizer("GB")
ENVELOPE = msgspec.json.Decoder(CloudEvent[dict[str, Any]])


def claims(*identities: str) -> tuple[IdentityClaim, ...]:
    return tuple(IdentityClaim(GB.parse(i)) for i in identities)


@dataclass
class Bus:
    """A stream and subject prefix of one test's own, so tests never see each other."""

    nc: Client
    js: JetStreamContext
    stream: str
    prefix: str

    def outbound(self, publisher: EventPublisher | None = None) -> ProcessProjection[object]:
        process = OutboundEvents(
            publisher or JetStreamPublisher(self.js, stream=self.stream), prefix=self.prefix
        )
        return ProcessProjection(process, ProcessPortsOn())

    async def stored(self) -> int:
        info = await self.js.stream_info(self.stream)
        return info.state.messages

    async def read(self) -> list[tuple[str, str, CloudEvent[dict[str, Any]]]]:
        """Every message in the stream as a durable consumer sees it: subject, Nats-Msg-Id,
        envelope."""
        sub = await self.js.pull_subscribe(
            f"{self.prefix}.out.>", durable=f"reader-{uuid.uuid4().hex[:8]}", stream=self.stream
        )
        found: list[tuple[str, str, CloudEvent[dict[str, Any]]]] = []
        while len(found) < await self.stored():
            for msg in await sub.fetch(100, timeout=5):
                found.append(
                    (msg.subject, (msg.headers or {})["Nats-Msg-Id"], ENVELOPE.decode(msg.data))
                )
                await msg.ack()
        await sub.unsubscribe()
        return found


@pytest.fixture
async def bus(nats_url: str) -> AsyncIterator[Bus]:
    tag = uuid.uuid4().hex[:10]
    client = await nats.connect(nats_url)
    js = client.jetstream()
    made = Bus(client, js, f"OUT_{tag}", f"t{tag}")
    await ensure_stream(js, made.stream, f"{made.prefix}.out.>", duplicate_window=120)
    yield made
    with contextlib.suppress(NotFoundError):
        await js.delete_stream(made.stream)
    await client.close()


@dataclass
class History:
    ana: uuid.UUID
    phone: uuid.UUID
    bo: uuid.UUID


async def make_history(pool: asyncpg.Pool) -> History:
    """Two customers who turn out to be one, and a third, through the use cases; once the
    log's readers can read all of it."""
    store = PostgresUnitsOfWork(pool)
    upsert = UpsertCustomer(store, SystemClock(), RandomIds())
    ana = await upsert(claims("email:ana@example.org"), {"first_name": "Ana"}, {"plan": "pro"})
    await upsert(
        (
            *claims("email:ana@example.org"),
            IdentityClaim(GB.parse("account_id:42"), Verification.AUTHENTICATED),
        ),
        {},
        {},
    )
    phone = await upsert(claims("phone:020 7946 0958"), {"time_zone": "Europe/London"}, {})
    await ChangeConsent(store, SystemClock(), PostgresCustomerRecords(pool))(
        phone.customer_id, [ConsentRecord(Channel.SMS, Purpose.MARKETING, True, "form")]
    )
    await ChangeSuppression(store, SystemClock(), PostgresCustomerRecords(pool))(
        ana.customer_id, Channel.EMAIL, "bounce", active=True
    )
    bo = await upsert(claims("email:bo@example.org"), {}, {})
    merge = await upsert(claims("email:ana@example.org", "phone:+442079460958"), {}, {})
    assert merge.customer_id == ana.customer_id
    assert merge.merged == (phone.customer_id,)
    await log_readable(pool)
    return History(ana.customer_id, phone.customer_id, bo.customer_id)


async def published_ids(pool: asyncpg.Pool) -> set[str]:
    """The id of every stored event that has an outbound subject."""
    rows = await pool.fetch(
        "SELECT stream_id, version FROM events WHERE topic = ANY($1::text[])",
        [entry.topic for entry in OUTBOUND_EVENTS],
    )
    return {f"{row['stream_id']}:{row['version']}" for row in rows}


class TestPublishing:
    async def test_customer_changes_and_a_merge_arrive_as_cloudevents_in_order_per_customer(
        self, pool: asyncpg.Pool, bus: Bus
    ) -> None:
        history = await make_history(pool)
        runner = ProjectionRunner(pool, [bus.outbound()], page_size=4)
        await runner.setup()
        await runner.catch_up()

        messages = await bus.read()
        in_order: dict[str, list[str]] = {}
        for subject, _, envelope in messages:
            in_order.setdefault(envelope.subject, []).append(
                subject.removeprefix(f"{bus.prefix}.out.")
            )
        assert in_order == {
            str(history.ana): [
                "customers.registered",
                "customers.profile_updated",
                "customers.identity_linked",
                "customers.suppression_added",
                "customers.merged",
            ],
            str(history.phone): [
                "customers.registered",
                "customers.profile_updated",
                "customers.consent_changed",
            ],
            str(history.bo): ["customers.registered"],
        }
        merge_at = next(n for n, (s, _, _) in enumerate(messages) if s.endswith(".merged"))
        assert all(
            n < merge_at for n, (_, _, e) in enumerate(messages) if e.subject == str(history.phone)
        )
        for _, msg_id, envelope in messages:
            assert msg_id == envelope.id
            assert (envelope.specversion, envelope.source, envelope.version) == ("1.0", "chorus", 1)
        assert {msg_id for _, msg_id, _ in messages} == await published_ids(pool)

        by_subject = {s.rpartition(".")[2]: e for s, _, e in messages}
        assert by_subject["identity_linked"].data == {
            "customer_id": str(history.ana),
            "identity": "account_id:42",
            "verification": "authenticated",
        }
        assert by_subject["consent_changed"].data == {
            "customer_id": str(history.phone),
            "channel": "sms",
            "purpose": "marketing",
            "granted": True,
            "source": "form",
        }
        merged = by_subject["merged"]
        assert merged.type == "chorus.customer.merged"
        assert merged.data["survivor_id"] == str(history.ana)
        assert merged.data["merged_id"] == str(history.phone)
        assert merged.data["identities"] == [
            {"identity": "phone:+442079460958", "verification": "unverified"}
        ]
        assert merged.data["profile"] == {"time_zone": "Europe/London"}

    async def test_catching_up_again_publishes_nothing_more(
        self, pool: asyncpg.Pool, bus: Bus
    ) -> None:
        await make_history(pool)
        runner = ProjectionRunner(pool, [bus.outbound()])
        await runner.setup()
        await runner.catch_up()
        count = await bus.stored()
        assert await runner.catch_up() == 0
        assert await bus.stored() == count == len(await published_ids(pool))


class FailingOnce:
    """Publishes the first `passes` messages it is given, then fails once."""

    def __init__(self, inner: EventPublisher, passes: int) -> None:
        self.inner = inner
        self.passes = passes
        self.failed = False

    async def publish(self, messages: Sequence[OutboundMessage]) -> None:
        if self.failed or len(messages) <= self.passes:
            self.passes -= len(messages)
            await self.inner.publish(messages)
            return
        await self.inner.publish(messages[: self.passes])
        self.failed = True
        raise PublishFailed("the bus went away")


class AckedThenCrashed:
    """Publishes everything, then fails once, like a crash between the acks and the commit."""

    def __init__(self, inner: EventPublisher) -> None:
        self.inner = inner
        self.failed = False

    async def publish(self, messages: Sequence[OutboundMessage]) -> None:
        await self.inner.publish(messages)
        if not self.failed:
            self.failed = True
            raise PublishFailed("crashed before the commit")


class TestRetrying:
    async def test_a_page_that_fails_at_its_third_message_is_retried_and_each_event_stored_once(
        self, pool: asyncpg.Pool, bus: Bus
    ) -> None:
        await make_history(pool)
        failing = FailingOnce(JetStreamPublisher(bus.js, stream=bus.stream), passes=2)
        runner = ProjectionRunner(pool, [bus.outbound(failing)], page_size=100)
        await runner.setup()
        with pytest.raises(PublishFailed):
            await runner.catch_up()
        assert await bus.stored() == 2

        await runner.catch_up()
        messages = await bus.read()
        ids = Counter(msg_id for _, msg_id, _ in messages)
        assert set(ids) == await published_ids(pool)
        assert set(ids.values()) == {1}
        assert await bus.stored() == len(ids)
        assert await runner.catch_up() == 0

    async def test_a_page_republished_after_its_acks_is_dropped_by_the_stream(
        self, pool: asyncpg.Pool, bus: Bus
    ) -> None:
        await make_history(pool)
        expected = await published_ids(pool)
        crashing = AckedThenCrashed(JetStreamPublisher(bus.js, stream=bus.stream))
        runner = ProjectionRunner(pool, [bus.outbound(crashing)], page_size=100)
        await runner.setup()
        with pytest.raises(PublishFailed):
            await runner.catch_up()
        await runner.catch_up()
        assert await bus.stored() == len(expected)
        ids = Counter(msg_id for _, msg_id, _ in await bus.read())
        assert set(ids) == expected
        assert set(ids.values()) == {1}


class TestTheAdapter:
    async def test_a_message_no_stream_stores_fails_the_publish(self, bus: Bus) -> None:
        publisher = JetStreamPublisher(bus.js, timeout=1)
        with pytest.raises(PublishFailed):
            await publisher.publish([OutboundMessage(f"nowhere{bus.prefix}.x", b"{}", "1")])

    async def test_a_message_of_another_stream_is_refused_when_the_stream_is_named(
        self, bus: Bus
    ) -> None:
        publisher = JetStreamPublisher(bus.js, stream="SOMEWHERE_ELSE", timeout=1)
        with pytest.raises(PublishFailed):
            await publisher.publish([OutboundMessage(f"{bus.prefix}.out.x", b"{}", "1")])
        assert await bus.stored() == 0

    async def test_many_messages_are_all_acknowledged_and_duplicates_dropped(
        self, bus: Bus
    ) -> None:
        publisher = JetStreamPublisher(bus.js, stream=bus.stream)
        batch = [OutboundMessage(f"{bus.prefix}.out.n", b"{}", str(n)) for n in range(500)]
        await publisher.publish(batch)
        await publisher.publish(batch[:250])
        assert await bus.stored() == 500

    async def test_ensuring_an_existing_stream_adds_the_subjects_and_widens_the_window(
        self, bus: Bus
    ) -> None:
        name = f"{bus.stream}_OLD"
        await bus.js.add_stream(
            StreamConfig(
                name=name,
                subjects=[f"old{bus.prefix}.>"],
                storage=StorageType.MEMORY,
                duplicate_window=10,
                max_msgs=1000,
            )
        )
        try:
            for _ in range(2):
                await ensure_stream(bus.js, name, f"new{bus.prefix}.out.>", duplicate_window=120)
            config = (await bus.js.stream_info(name)).config
            assert config.subjects == [f"old{bus.prefix}.>", f"new{bus.prefix}.out.>"]
            assert (config.duplicate_window, config.max_msgs) == (120, 1000)
        finally:
            await bus.js.delete_stream(name)


class Unreachable:
    """A bus that fails every publish with `error` as its cause, as JetStreamPublisher does."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def publish(self, messages: Sequence[OutboundMessage]) -> None:
        raise PublishFailed(f"{len(messages)} messages not acknowledged") from self.error


class TestParkingOutboundEvents:
    @pytest.mark.parametrize(
        "error",
        [
            nats.errors.TimeoutError(),
            nats.errors.NoServersError(),
            nats.errors.ConnectionClosedError(),
            nats.errors.ConnectionReconnectingError(),
            nats.js.errors.NoStreamResponseError(),
        ],
        ids=type,
    )
    async def test_while_nats_is_away_no_outbound_event_is_parked(
        self, pool: asyncpg.Pool, bus: Bus, error: Exception
    ) -> None:
        await make_history(pool)
        runner = ProjectionRunner(
            pool, [bus.outbound(Unreachable(error))], attempts=1, outage=is_bus_outage
        )
        await runner.setup()
        for _ in range(3):
            with pytest.raises(PublishFailed):
                await runner.catch_up()
        assert await runner.parked() == []

    async def test_an_event_the_bus_refuses_is_parked_and_a_retry_from_the_cli_publishes_it(
        self,
        pool: asyncpg.Pool,
        bus: Bus,
        database_url: str,
        nats_url: str,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        await make_history(pool)
        refusing = bus.outbound(Unreachable(nats.errors.MaxPayloadError()))
        runner = ProjectionRunner(pool, [refusing], attempts=1, outage=is_bus_outage)
        await runner.setup()
        with pytest.raises(PublishFailed):
            await runner.catch_up()
        await runner.catch_up()
        parked = await runner.parked()
        assert {f"{p.stream_id}:{p.version}" for p in parked} == await published_ids(pool)
        assert await bus.stored() == 0

        for name, value in {
            "DATABASE_URL": database_url,
            "NATS_URL": nats_url,
            "CHORUS_NATS_PREFIX": bus.prefix,
            "CHORUS_OUTBOUND_STREAM": bus.stream,
        }.items():
            monkeypatch.setenv(name, value)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            await asyncio.to_thread(main, ["projections", "retry", "outbound_events"])
        assert out.getvalue().startswith(
            f"applied {len(parked)} parked event(s) of outbound_events"
        )
        assert await runner.parked() == []
        assert await bus.stored() == len(parked)
