"""kill -9 of the service while it dispatches 2,000 SMS: each reaches the provider once, and
every one ends `delivered` once the service is back."""

from __future__ import annotations

import asyncio
import collections
import json
import time
import uuid
from typing import TYPE_CHECKING

import asyncpg
import httpx
import pytest

from adapters.providers.fakes.twilio_server import FakeTwilio
from adapters.providers.fakes.webhooks import StatusCallbacks
from tests.e2e.conftest import _delete_streams
from tests.e2e.service import ChorusProcess

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

pytestmark = pytest.mark.e2e

MESSAGES = 2_000
CUSTOMERS = 20
WORKERS = 10  # concurrent requests, each on its own customers


@pytest.fixture
async def service(
    database_url: str, nats_url: str, tmp_path: Path
) -> AsyncIterator[tuple[ChorusProcess, FakeTwilio]]:
    chorus = ChorusProcess(
        database_url, nats_url, f"E2E_{uuid.uuid4().hex[:8].upper()}", tmp_path / "chorus.log"
    )
    callbacks = StatusCallbacks(url=f"{chorus.base_url}/v1/webhooks/sms", status="delivered")
    fake = FakeTwilio(callbacks=callbacks)
    fake.start()
    chorus.env["CHORUS_PROVIDERS"] = json.dumps(
        [
            {
                "name": "sms",
                "type": "twilio",
                "base_url": fake.base_url,
                "account_sid": fake.account_sid,
                "auth_token": fake.auth_token,
                "from_number": "+15005550006",
            }
        ]
    )
    chorus.env["CHORUS_DISPATCH_LEASE_SECONDS"] = "3"
    chorus.admin_key = chorus.chorus("keys", "create", "--role", "admin")  # type: ignore[attr-defined]
    try:
        yield chorus, fake
    finally:
        chorus.stop()
        fake.stop()
        await _delete_streams(chorus)


async def request_messages(chorus: ChorusProcess) -> list[str]:
    """2,000 transactional SMS with inline content, each body naming its message."""
    key = chorus.admin_key  # type: ignore[attr-defined]
    async with httpx.AsyncClient(
        base_url=chorus.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as http:
        customers = []
        for n in range(CUSTOMERS):
            answer = await http.put(
                "/v1/customers",
                json={
                    "identities": [
                        {"type": "phone", "value": f"+447700900{n:03d}", "verification": "verified"}
                    ]
                },
            )
            assert answer.status_code in (200, 201), answer.text
            customers.append(answer.json()["customer"]["id"])

        async def worker(w: int) -> list[str]:
            mine = customers[w::WORKERS]
            ids = []
            for n in range(w, MESSAGES, WORKERS):
                answer = await http.post(
                    "/v1/messages",
                    json={
                        "customer_id": mine[n % len(mine)],
                        "team": "orders",
                        "purpose": "transactional",
                        "channels": ["sms"],
                        "content": {"body": f"Order {n} has shipped"},
                    },
                )
                assert answer.status_code == 200, answer.text
                assert answer.json()["outcome"] == "send", answer.text
                ids.append(answer.json()["message_id"])
            return ids

        done = await asyncio.gather(*(worker(w) for w in range(WORKERS)))
    return [message_id for ids in done for message_id in ids]


async def statuses(database_url: str) -> collections.Counter[str]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT status, count(*) AS n FROM messages GROUP BY status")
        return collections.Counter({row["status"]: row["n"] for row in rows})
    finally:
        await conn.close()


class TestKillDuringDispatch:
    async def test_every_message_reaches_the_provider_once_and_ends_delivered_after_kill_9(
        self, service: tuple[ChorusProcess, FakeTwilio], database_url: str
    ) -> None:
        chorus, fake = service
        # Queue everything first, no dispatcher running, so the kill lands mid-dispatch.
        chorus.env["CHORUS_DISPATCH"] = "false"
        chorus.start()
        message_ids = await request_messages(chorus)
        assert len(set(message_ids)) == MESSAGES
        chorus.stop()

        # The provider answers 20 ms after recording each message: at the kill, some are
        # accepted by it and not yet recorded by Chorus.
        fake.hang(0.02, accept=True)
        chorus.env["CHORUS_DISPATCH"] = "true"
        chorus.start()
        deadline = time.monotonic() + 30
        while len(fake.received) < MESSAGES // 4 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        chorus.kill()
        killed_at = len(fake.received)
        assert 0 < killed_at < MESSAGES, "the kill did not land mid-dispatch"

        fake.hang(0)
        chorus.start()
        deadline = time.monotonic() + 40
        while (await statuses(database_url))["delivered"] < MESSAGES:
            assert time.monotonic() < deadline, (
                f"{await statuses(database_url)}; fake: {len(fake.received)} received, "
                f"{fake.duplicates} repeated, webhooks {fake.poster.counts()}"
            )
            await asyncio.sleep(0.2)

        # Each message reached the provider's effect once: one record per idempotency key,
        # and every body (one per message) exactly once. Sends repeated after the kill carried
        # the same key and were answered with the first one's sid (the fake's dedupe count).
        bodies = collections.Counter(form["Body"] for form in fake.received)
        assert len(fake.received) == MESSAGES
        assert fake.duplicates > 0, "no send was repeated: the kill hit no message in flight"
        assert bodies == {f"Order {n} has shipped": 1 for n in range(MESSAGES)}
        assert await statuses(database_url) == {"delivered": MESSAGES}
        conn = await asyncpg.connect(database_url)
        try:
            assert await conn.fetchval("SELECT count(*) FROM outbox") == 0
            providers = await conn.fetch("SELECT DISTINCT provider FROM messages")
            assert [row["provider"] for row in providers] == ["sms"]
        finally:
            await conn.close()
        key = chorus.admin_key  # type: ignore[attr-defined]
        async with httpx.AsyncClient(
            base_url=chorus.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=10
        ) as http:
            for message_id in message_ids[:: MESSAGES // 10]:
                view = (await http.get(f"/v1/messages/{message_id}")).json()
                assert view["status"] == "delivered", view
                assert [s["status"] for s in view["statuses"]] == ["queued", "delivered"]
