from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import asyncpg
import msgspec
import nats
import pytest

if TYPE_CHECKING:
    from tests.e2e.service import ChorusProcess

pytestmark = pytest.mark.e2e

SIGNALS = 3000


def _signal(n: int) -> bytes:
    return msgspec.json.encode(
        {
            "id": f"crash-{n}",
            "type": "page.viewed",
            "occurred_at": "2026-11-27T10:00:00Z",
            "identities": [{"type": "email", "value": f"user{n % 300}@example.org"}],
            "properties": {"n": n},
        }
    )


async def _count(database_url: str) -> tuple[int, int]:
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow(
            """SELECT count(*) AS total, count(DISTINCT stream_id) AS distinct_signals
               FROM events WHERE topic LIKE '%:Signal.Recorded'"""
        )
        assert row is not None
        return int(row["total"]), int(row["distinct_signals"])
    finally:
        await conn.close()


class TestKillDuringNatsIngestion:
    async def test_every_acknowledged_signal_is_stored_exactly_once_after_kill_9(
        self, chorus: ChorusProcess, database_url: str
    ) -> None:
        nc = await nats.connect(chorus.nats_url)
        js = nc.jetstream()
        subject = f"{chorus.subject_prefix}.signals.web"
        acks = await asyncio.gather(
            *(
                js.publish(subject, _signal(n), headers={"Nats-Msg-Id": f"crash-{n}"})
                for n in range(SIGNALS)
            )
        )
        await nc.close()
        assert len(acks) == SIGNALS  # every publish was acknowledged by JetStream

        deadline = time.monotonic() + 30
        while (await _count(database_url))[0] == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        chorus.kill()
        killed_at, _ = await _count(database_url)
        assert killed_at < SIGNALS, "ingestion finished before the kill; the test proves nothing"

        chorus.start()
        deadline = time.monotonic() + 60
        while (await _count(database_url))[0] < SIGNALS and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        await asyncio.sleep(1)  # any late redelivery would show up as an extra row
        assert await _count(database_url) == (SIGNALS, SIGNALS)
