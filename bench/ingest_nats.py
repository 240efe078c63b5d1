"""Signals published to JetStream, timed until the service has committed every one of them."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncpg
import nats
from nats.js.errors import NotFoundError

from domain.signals.aggregate import signal_id_for
from domain.signals.intake import RECEIVED_TOPIC, intake_id_for

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence
    from uuid import UUID

__all__ = [
    "NatsRun",
    "delete_streams",
    "horizon",
    "publish_and_wait",
    "received",
    "recorded",
    "wait_for",
]

# Counts read the log from `since` on (an xid8, by the global log's index), not the whole
# table: a full count of a few hundred thousand events costs PostgreSQL ~50 ms of the CPU it
# shares with what is measured, on every poll.
_HORIZON = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text"
_RECORDED = """
SELECT count(*) FROM events
WHERE transaction_id >= $1::text::xid8 AND topic LIKE '%:Signal.Recorded'
"""
_RECEIVED = "SELECT count(*) FROM events WHERE transaction_id >= $1::text::xid8 AND topic = $2"
_PRESENT = "SELECT count(*) FROM events WHERE stream_id = ANY($1::uuid[]) AND version = 1"
_TAIL = 500
_POLL = 0.05
_TIMEOUT = 600.0


@dataclass(frozen=True, slots=True)
class NatsRun:
    signals: int
    messages: int
    publish_seconds: float
    commit_seconds: float
    left_after_publish: int  # signals not yet committed when the last ack came back
    seconds_after_publish: float
    attributed_seconds: float  # until every one is on its customer (see publish_and_wait)

    @property
    def attributed_per_s(self) -> float:
        return self.signals / self.attributed_seconds


async def horizon(conn: asyncpg.Connection) -> str:
    """Where counting may start: no transaction still to commit began before it."""
    since: str = await conn.fetchval(_HORIZON)
    return since


async def recorded(conn: asyncpg.Connection, since: str = "0") -> int:
    """Signals attributed to their customers (in transactions from `since` on)."""
    count: int = await conn.fetchval(_RECORDED, since)
    return count


async def received(conn: asyncpg.Connection, since: str = "0") -> int:
    """Signals committed by intake (in transactions from `since` on)."""
    count: int = await conn.fetchval(_RECEIVED, since, RECEIVED_TOPIC)
    return count


async def wait_for(
    conn: asyncpg.Connection,
    expected: int,
    tail: list[UUID],
    count: Callable[[asyncpg.Connection, str], Awaitable[int]],
    since: str = "0",
) -> None:
    """Polls until `count` (from `since` on) reaches `expected`.

    The poll first probes, by primary key, the streams of the last `_TAIL` signals published,
    and counts only once those are in.
    """
    deadline = time.perf_counter() + _TIMEOUT
    while time.perf_counter() < deadline:
        present = await conn.fetchval(_PRESENT, tail) == len(tail)
        if present and await count(conn, since) >= expected:
            return
        await asyncio.sleep(_POLL)
    found = await count(conn, since)
    raise RuntimeError(f"only {found} of {expected} signals after {_TIMEOUT}s")


async def publish_and_wait(
    nats_url: str,
    dsn: str,
    subject: str,
    messages: Sequence[tuple[str, bytes]],
    signal_ids: Sequence[str],
    before_attribution: Callable[[], None] | None = None,
) -> NatsRun:
    """Publishes with acks in flight (publish_async), then waits for every commit of the
    signals `signal_ids` the messages carry, and then for every attribution (timed from
    `before_attribution`, when given: it resumes a paused projection worker)."""
    tail = [intake_id_for(event_id) for event_id in signal_ids[-_TAIL:]]
    attributed_tail = [signal_id_for(event_id) for event_id in signal_ids[-_TAIL:]]
    conn = await asyncpg.connect(dsn)
    nc = await nats.connect(nats_url, name="chorus-bench")
    try:
        js = nc.jetstream(publish_async_max_pending=4000)
        since = await horizon(conn)
        expected = await received(conn, since) + len(signal_ids)
        expected_attributed = await recorded(conn, since) + len(signal_ids)
        started = time.perf_counter()
        acks = [
            await js.publish_async(subject, data, headers={"Nats-Msg-Id": msg_id})
            for msg_id, data in messages
        ]
        duplicates = sum(1 for ack in await asyncio.gather(*acks) if ack.duplicate)
        published = time.perf_counter()
        if duplicates:
            raise RuntimeError(f"JetStream dropped {duplicates} messages as duplicates")
        left = expected - await received(conn, since)
        counted = time.perf_counter()
        await wait_for(conn, expected, tail, received, since)
        done = time.perf_counter()
        attributing = started
        if before_attribution is not None:
            attributing = time.perf_counter()
            before_attribution()
        await wait_for(conn, expected_attributed, attributed_tail, recorded, since)
        attributed = time.perf_counter()
    finally:
        await nc.close()
        await conn.close()
    return NatsRun(
        len(signal_ids),
        len(messages),
        published - started,
        done - started,
        left,
        max(done - counted, 1e-9),
        attributed - attributing,
    )


async def delete_streams(nats_url: str, *streams: str) -> None:
    nc = await nats.connect(nats_url, name="chorus-bench")
    try:
        js = nc.jetstream()
        for stream in streams:
            with contextlib.suppress(NotFoundError):
                await js.delete_stream(stream)
    finally:
        await nc.close()
