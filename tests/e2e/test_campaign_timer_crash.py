"""kill -9 of the service while 5,000 campaign timers are due: once it is back, every timer has
fired once, and each enrollment took its next step exactly once, counted in the event store."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import asyncpg
import httpx
import pytest

if TYPE_CHECKING:
    from tests.e2e.service import ChorusProcess

pytestmark = pytest.mark.e2e

ENROLLMENTS = 5_000
BATCH = 1_000
WAITING: dict[str, Any] = {
    "key": "an-hour-later",
    "name": "An hour later",
    "journey": {
        "entry": {"type": "signal", "signal": "order.placed"},
        "start": "an-hour",
        "steps": {
            "an-hour": {"type": "wait", "for": "1h", "next": "after"},
            "after": {"type": "exit", "reason": "waited an hour"},
        },
    },
}
# The enrollments' events in the log, by stream: what the timers made each take, counted where
# it was recorded rather than in a read model.
_TAKEN = """
SELECT stream_id, count(*) FILTER (WHERE topic = $1 AND step = 'after') AS took,
       count(*) FILTER (WHERE topic = $2) AS exited
FROM (SELECT stream_id, topic, convert_from(payload, 'UTF8')::jsonb ->> 'step' AS step
      FROM events WHERE topic = ANY(ARRAY[$1, $2])) AS enrollment_events
GROUP BY stream_id
"""
_STEP_TAKEN = "domain.campaign.enrollment:Enrollment.StepTaken"
_EXITED = "domain.campaign.enrollment:Enrollment.Exited"


def _orders(start: int) -> dict[str, Any]:
    return {
        "signals": [
            {
                "id": f"order-{n}",
                "type": "order.placed",
                "occurred_at": "2026-12-05T10:00:00Z",
                "identities": [{"type": "email", "value": f"buyer{n}@example.org"}],
            }
            for n in range(start, start + BATCH)
        ]
    }


async def _timers(conn: asyncpg.Connection) -> int:
    count: int = await conn.fetchval("SELECT count(*) FROM campaign_timers")
    return count


async def _until(probe: Any, within: float, every: float = 0.1) -> Any:
    deadline = time.monotonic() + within
    while True:
        found = await probe()
        if found or time.monotonic() > deadline:
            return found
        await asyncio.sleep(every)


class TestKillWhileTimersFire:
    async def test_every_due_timer_fires_once_across_a_kill_9_of_the_service(
        self, chorus: ChorusProcess, database_url: str
    ) -> None:
        headers = {"Authorization": f"Bearer {chorus.admin_key}"}  # type: ignore[attr-defined]
        conn = await asyncpg.connect(database_url)
        try:
            async with httpx.AsyncClient(
                base_url=chorus.base_url, headers=headers, timeout=60
            ) as http:
                (await http.post("/v1/campaigns", json=WAITING)).raise_for_status()
                (await http.post("/v1/campaigns/an-hour-later/activate")).raise_for_status()
                for start in range(0, ENROLLMENTS, BATCH):
                    (await http.post("/v1/events", json=_orders(start))).raise_for_status()

                async def all_waiting() -> bool:
                    return await _timers(conn) == ENROLLMENTS

                assert await _until(all_waiting, within=120), await _timers(conn)
                moved = await http.post("/v1/admin/clock", json={"advance_seconds": 7200})
                moved.raise_for_status()

            async def some_fired() -> bool:
                return await _timers(conn) < ENROLLMENTS

            assert await _until(some_fired, within=30, every=0.005)
            chorus.kill()
            left = await _timers(conn)
            assert 0 < left < ENROLLMENTS, f"{left} timers left at the kill: nothing proven"

            chorus.start()

            async def all_fired() -> bool:
                return await _timers(conn) == 0

            assert await _until(all_fired, within=120), await _timers(conn)
            rows = await conn.fetch(_TAKEN, _STEP_TAKEN, _EXITED)
        finally:
            await conn.close()

        assert len(rows) == ENROLLMENTS
        assert {(row["took"], row["exited"]) for row in rows} == {(1, 1)}
