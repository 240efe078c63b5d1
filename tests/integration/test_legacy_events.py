"""Every event a Chorus of before stable topics stored reads back, and rebuilds the read models.

The log is `fixtures/legacy_events.jsonl.gz`, made by `fixtures/make_legacy_events.py` from the
code of main at 0af2169: one event at least of every class stored then.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

import pytest
from eventsourcing.domain import CanInitAggregate

from adapters.postgres.codec import EventCodec
from adapters.postgres.projections import ProjectionRunner
from domain.catalog import TOPICS
from entrypoints.ioc import make_container
from entrypoints.pipeline import LANES, every_projection
from entrypoints.settings import Settings
from ports.clock import Clock

if TYPE_CHECKING:
    import asyncpg

pytestmark = pytest.mark.integration

FIXTURE = Path(__file__).parent / "fixtures" / "legacy_events.jsonl.gz"
# What threading an inbound message records, with no routing document published.
_THREADED = ("Started", "MessageReceived", "Classified")
_BELOW_HORIZON = """
SELECT coalesce(max(transaction_id) < pg_snapshot_xmin(pg_current_snapshot()), true) FROM events
"""
_INSERT = """
INSERT INTO events (stream_id, version, topic, class_version, occurred_at, subject_id, payload)
VALUES ($1, $2, $3, $4, $5, $6, $7)
"""


def legacy_rows() -> list[tuple[Any, ...]]:
    with gzip.open(FIXTURE, "rt", encoding="utf-8") as lines:
        return [
            (
                UUID(stream),
                version,
                topic,
                class_version,
                datetime.fromisoformat(occurred_at),
                None if subject is None else UUID(subject),
                payload.encode(),
            )
            for stream, version, topic, class_version, occurred_at, subject, payload in map(
                json.loads, lines
            )
        ]


LEGACY = legacy_rows()


@pytest.fixture
async def legacy(pool: asyncpg.Pool) -> asyncpg.Pool:
    async with pool.acquire() as conn, conn.transaction():
        await conn.executemany(_INSERT, LEGACY)  # one transaction, in log order
    return pool


async def catch_up(runner: ProjectionRunner, pool: asyncpg.Pool) -> int:
    """Catches up until nothing is left, waiting whenever the horizon is below the log's end.

    The horizon is the server's: a transaction of another database (another test's) holds
    every reader back while it runs.
    """
    applied = 0
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        while await pool.fetchval(_BELOW_HORIZON) is False:
            assert asyncio.get_running_loop().time() < deadline, "the log stays unreadable"
            await asyncio.sleep(0.05)
        done = await runner.catch_up()
        if not done:
            return applied
        applied += done


def members_in(rows: list[tuple[Any, ...]]) -> int:
    """Memberships whose last event is an entry."""
    last = {row[0]: row[2] for row in rows if ":Membership." in row[2]}
    return sum(topic.endswith(".Entered") for topic in last.values())


def topics_of(rows: list[tuple[Any, ...]]) -> Counter[str]:
    return Counter(row[2] for row in rows)


# Aggregates and events added after the legacy log was made: their names cannot be in it.
ADDED_SINCE = (
    "domain.campaign.",
    "domain.conversation.",
    "domain.message.aggregate:Message.Superseded",
    "domain.message.aggregate:Message.Expired",
    "domain.message.aggregate:Message.GivenUp",
    "domain.customer.aggregate:Customer.MessageHeld",
    "domain.customer.aggregate:Customer.ApprovalSettled",
    "domain.customer.aggregate:Customer.Erased",
    "domain.customer.aggregate:Customer.MessageClassified",
    "ApiKey.",
    "Providers.Configured",
)


class TestTheLegacyLog:
    def test_holds_every_name_the_catalog_reads_but_those_of_newer_aggregates(self) -> None:
        legacy = set(topics_of(LEGACY))
        assert legacy <= TOPICS.readable()
        assert all(name.startswith(ADDED_SINCE) for name in TOPICS.readable() - legacy)


class TestReadingLegacyEvents:
    def test_every_event_decodes_to_the_class_its_topic_names_and_encodes_back(
        self,
    ) -> None:
        codec = EventCodec()
        for stream_id, version, topic, class_version, occurred_at, _, payload in LEGACY:
            if topic in TOPICS.documents:
                assert isinstance(json.loads(payload), dict)
                continue
            event = codec.decode(stream_id, version, topic, class_version, occurred_at, payload)
            assert type(event) is TOPICS.class_of(topic)
            again = codec.encode(event)
            # An event whose class grew since is upcast on reading, and written as it is now.
            now_version = getattr(type(event), "class_version", 1)
            assert (again.topic, again.class_version) == (topic, max(class_version, now_version))
            # Byte for byte but for the order of sets (a rule set's channels).
            read_again = codec.decode(
                stream_id, version, topic, again.class_version, occurred_at, again.payload
            )
            assert read_again == event
            originator = json.loads(payload).get("originator_topic")
            assert json.loads(again.payload).get("originator_topic") == originator

    def test_every_stream_loads_into_its_aggregate(self) -> None:
        codec = EventCodec()
        streams: dict[UUID, list[Any]] = {}
        for stream_id, version, topic, class_version, occurred_at, _, payload in LEGACY:
            if topic not in TOPICS.documents:
                event = codec.decode(stream_id, version, topic, class_version, occurred_at, payload)
                streams.setdefault(stream_id, []).append(event)
        loaded = Counter()
        for stream_id, events in streams.items():
            if not isinstance(events[0], CanInitAggregate):
                continue  # a membership or a firing: built only by its events, never loaded
            aggregate = None
            for event in events:
                aggregate = event.mutate(aggregate)
            assert aggregate is not None
            assert aggregate.id == stream_id
            assert aggregate.version == len(events)
            loaded[type(aggregate).__name__] += 1
        assert set(loaded) == {
            "Customer",
            "Message",
            "RuleBook",
            "Template",
            "Signal",
            "Segment",
            "Trigger",
        }


class TestRebuildingFromALegacyLog:
    async def test_the_projections_read_the_whole_log_and_park_nothing(
        self, legacy: asyncpg.Pool, database_url: str
    ) -> None:
        stored = topics_of(LEGACY)
        container = make_container(
            # The keyword classifier: the intent model would be trained here first (a minute).
            Settings(
                database_url=database_url,
                clock="manual",
                default_region="GB",
                classifier="keywords",
            )
        )
        try:
            clock = await container.get(Clock)
            clock.set(max(row[4] for row in LEGACY))  # type: ignore[attr-defined]
            # What follows the log, as the worker runs it, without the outbound publisher (NATS).
            runner = await every_projection(
                container, lanes=[lane for lane in LANES if lane.name != "outbound"]
            )
            await runner.setup()
            assert await catch_up(runner, legacy) > 0
            assert runner.failing == {}
            assert await runner.parked() == []
        finally:
            await container.close()
        behind = await legacy.fetchval(
            "SELECT count(*) FROM projection_positions"
            " WHERE position < (SELECT max(position) FROM events)"
        )
        assert behind == 0
        after = Counter(row[0] for row in await legacy.fetch("SELECT topic FROM events"))
        # Attribution finds every received signal recorded or refused, the evaluator and the
        # matcher what they found then: nothing is appended, but the threads the conversations
        # process makes of the log's inbound messages (routed nowhere: no routing document), and
        # each message's classification recorded on its customer.
        threads = after - stored
        conversation = "domain.conversation.aggregate:Conversation."
        classified = "domain.customer.aggregate:Customer.MessageClassified"
        assert set(threads) == {f"{conversation}{kind}" for kind in _THREADED} | {classified}
        assert threads[f"{conversation}Started"] == threads[f"{conversation}MessageReceived"]
        assert threads[classified] == threads[f"{conversation}MessageReceived"]
        assert after - threads == stored
        counts = await legacy.fetchrow(
            """SELECT (SELECT count(*) FROM customer_directory) AS customers,
                      (SELECT count(*) FROM customer_signals) AS signals,
                      (SELECT count(*) FROM segment_members) AS members,
                      (SELECT count(*) FROM trigger_firings) AS firings"""
        )
        assert dict(counts) == {
            "customers": stored["domain.customer.aggregate:Customer.Registered"],
            # the customers' signals, and their classified messages kept beside them
            "signals": stored["domain.signals.aggregate:Signal.Recorded"] + threads[classified],
            "members": members_in(LEGACY),
            "firings": stored["domain.triggers.aggregate:Firing.Fired"],
        }
