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

SIGNALS = 20_000
CUSTOMERS = 2_000


def _batch(start: int) -> dict[str, Any]:
    return {
        "signals": [
            {
                "id": f"catch-up-{n}",
                "type": "page.viewed",
                "occurred_at": "2026-11-27T10:00:00Z",
                "identities": [{"type": "email", "value": f"user{n % CUSTOMERS}@example.org"}],
                "properties": {"n": n},
            }
            for n in range(start, start + 1000)
        ]
    }


async def _applied(conn: asyncpg.Connection) -> tuple[int, int, int]:
    """Signals in the read model, the sum of its counters, and directory rows."""
    row = await conn.fetchrow(
        """SELECT (SELECT count(*) FROM customer_signals) AS signals,
                  (SELECT coalesce(sum(count), 0) FROM signal_counters) AS counted,
                  (SELECT count(*) FROM customer_directory) AS customers"""
    )
    assert row is not None
    return int(row["signals"]), int(row["counted"]), int(row["customers"])


class TestKillDuringCatchUp:
    async def test_a_projection_killed_mid_catch_up_skips_nothing_and_applies_nothing_twice(
        self, chorus: ChorusProcess, database_url: str
    ) -> None:
        # Write the history with no read models following, so the restart has it to catch up.
        chorus.stop()
        chorus.env["CHORUS_PROJECTIONS"] = "0"
        chorus.env["CHORUS_CLOCK"] = "system"  # the projection worker in its own process
        chorus.start()
        headers = {"Authorization": f"Bearer {chorus.admin_key}"}  # type: ignore[attr-defined]
        async with httpx.AsyncClient(base_url=chorus.base_url, headers=headers, timeout=60) as http:
            for start in range(0, SIGNALS, 1000):
                (await http.post("/v1/events", json=_batch(start))).raise_for_status()
        chorus.stop()

        conn = await asyncpg.connect(database_url)
        try:
            assert await _applied(conn) == (0, 0, 0)
            chorus.env["CHORUS_PROJECTIONS"] = "1"
            chorus.start()
            deadline = time.monotonic() + 60
            while (await _applied(conn))[0] == 0 and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            chorus.kill()
            killed_at = await _applied(conn)
            assert killed_at[0] < SIGNALS, "catch-up finished before the kill; nothing proven"

            chorus.start()
            deadline = time.monotonic() + 120
            while (await _applied(conn))[0] < SIGNALS and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            await asyncio.sleep(0.5)
            assert await _applied(conn) == (SIGNALS, SIGNALS, CUSTOMERS)
        finally:
            await conn.close()
