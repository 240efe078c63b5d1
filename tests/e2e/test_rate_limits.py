"""Rate limits over HTTP and NATS: a key over its limit is refused at once, and the others never
notice; a key's NATS messages spend the budget its HTTP requests spend."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import TYPE_CHECKING, NamedTuple

import httpx
import nats
import pytest

from tests.e2e.conftest import _delete_streams, create_admin_key
from tests.e2e.service import ChorusProcess

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from tests.servers import TestDatabases

pytestmark = pytest.mark.e2e

READS_A_MINUTE = 600  # ten a second
READ_BURST = 20
SENDS_BURST = 3
INGEST_BURST = 3


@pytest.fixture(scope="class")
async def limited(
    databases: TestDatabases, nats_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ChorusProcess]:
    """A service with small read and send limits, for one class: each of its tests spends the
    budgets of keys of its own (`keys`), and limits are per key."""
    database_url = await databases.create()
    stream = f"E2E_{uuid.uuid4().hex[:8].upper()}"
    log_path = tmp_path_factory.mktemp("chorus") / "chorus.log"
    service = ChorusProcess(database_url, nats_url, stream, log_path)
    service.env |= {
        "CHORUS_RATE_LIMIT_READ": str(READS_A_MINUTE),
        "CHORUS_RATE_LIMIT_READ_BURST": str(READ_BURST),
        "CHORUS_RATE_LIMIT_SEND": "60",
        "CHORUS_RATE_LIMIT_SEND_BURST": str(SENDS_BURST),
        "CHORUS_RATE_LIMIT_INGEST": "60",
        "CHORUS_RATE_LIMIT_INGEST_BURST": str(INGEST_BURST),
    }
    service.admin_key = await create_admin_key(database_url)  # type: ignore[attr-defined]
    service.start()
    try:
        yield service
    finally:
        service.stop()
        await _delete_streams(service)
    await databases.drop(database_url)


class Keys(NamedTuple):
    """Two admin keys of one test's own, their buckets full: `noisy` spends, `quiet` watches."""

    noisy: str
    quiet: str


@pytest.fixture
def keys(limited: ChorusProcess) -> Keys:
    return Keys(limited.key("admin"), limited.key("admin"))


def as_key(service: ChorusProcess, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=service.base_url,
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
        limits=httpx.Limits(max_connections=20),
    )


async def timed_get(http: httpx.AsyncClient, path: str) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    answer = await http.get(path)
    return answer, time.perf_counter() - started


async def exhaust_reads(http: httpx.AsyncClient) -> None:
    """Spends a key's read bucket, faster than it refills."""
    while True:
        answers = await asyncio.gather(*(http.get("/v1/templates") for _ in range(READ_BURST)))
        if any(a.status_code == 429 for a in answers):
            return


class TestAKeyOverItsLimit:
    async def test_it_gets_429_with_retry_after_and_a_problem_body(
        self, limited: ChorusProcess, keys: Keys
    ) -> None:
        async with as_key(limited, keys.noisy) as noisy:
            answers = await asyncio.gather(
                *(noisy.get("/v1/templates") for _ in range(READ_BURST + 20))
            )
        statuses = [a.status_code for a in answers]
        # The burst passes, and at most what refilled while the requests were on their way.
        assert READ_BURST <= statuses.count(200) < READ_BURST + 20
        assert set(statuses) == {200, 429}
        refused = answers[statuses.index(429)]
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert 1 <= int(refused.headers["retry-after"]) <= 1 + 60 / READS_A_MINUTE
        body = refused.json()
        assert body["type"] == "https://chorus.dev/problems/rate-limited"
        assert body["status"] == 429
        assert body["route_class"] == "read"
        assert body["retry_after"] == int(refused.headers["retry-after"])
        assert "600 read requests a minute" in body["detail"]

    async def test_it_may_go_on_once_the_wait_is_over(
        self, limited: ChorusProcess, keys: Keys
    ) -> None:
        async with as_key(limited, keys.noisy) as noisy:
            await exhaust_reads(noisy)
            await asyncio.sleep(60 / READS_A_MINUTE + 0.05)
            assert (await noisy.get("/v1/templates")).status_code == 200

    async def test_its_other_route_classes_keep_their_own_limits(
        self, limited: ChorusProcess, keys: Keys
    ) -> None:
        async with as_key(limited, keys.noisy) as noisy:
            await exhaust_reads(noisy)
            sends = await asyncio.gather(
                *(noisy.post("/v1/messages", json={}) for _ in range(SENDS_BURST + 1))
            )
        statuses = [a.status_code for a in sends]
        # An empty send is refused as invalid, but only after it passed the limit.
        assert sorted(statuses) == [400] * SENDS_BURST + [429]
        assert sends[statuses.index(429)].json()["route_class"] == "send"

    async def test_refusals_are_counted_by_route_class_and_probes_never_limited(
        self, limited: ChorusProcess, keys: Keys
    ) -> None:
        async with as_key(limited, keys.noisy) as noisy:
            # The class's other tests were refused on this service before: the count grows.
            before = sample((await noisy.get("/metrics")).text, "read")
            reads = await asyncio.gather(
                *(noisy.get("/v1/templates") for _ in range(READ_BURST + 10))
            )
            probes = [await noisy.get("/health") for _ in range(READ_BURST + 3)]
            metrics = (await noisy.get("/metrics")).text
        refused = [a.status_code for a in reads].count(429)
        assert refused >= 3
        assert {p.status_code for p in probes} == {200}
        counted = [
            line
            for line in metrics.splitlines()
            if line.startswith('chorus_rate_limited_total{route_class="read"}')
        ]
        assert counted
        assert float(counted[0].rpartition(" ")[2]) - before == refused


class TestAnotherKeyMeanwhile:
    async def test_it_passes_at_full_speed_while_a_key_is_refused(
        self, limited: ChorusProcess, keys: Keys
    ) -> None:
        async with (
            as_key(limited, keys.noisy) as noisy,
            as_key(limited, keys.quiet) as quiet,
        ):
            # How fast the quiet key is answered with nobody else about.
            alone = [await timed_get(quiet, "/v1/templates") for _ in range(5)]
            await asyncio.sleep(READ_BURST * 60 / READS_A_MINUTE)  # its bucket full again
            slowest_alone = max(seconds for _, seconds in alone)

            storm_over = asyncio.Event()

            async def storm() -> list[int]:
                statuses = []
                while not storm_over.is_set():
                    batch = await asyncio.gather(*(noisy.get("/v1/templates") for _ in range(10)))
                    statuses += [a.status_code for a in batch]
                return statuses

            storming = asyncio.create_task(storm())
            await exhaust_reads(noisy)  # the noisy key is being refused from here on
            meanwhile = [await timed_get(quiet, "/v1/templates") for _ in range(READ_BURST)]
            storm_over.set()
            noisy_statuses = await storming

        assert noisy_statuses.count(429) > len(meanwhile)
        assert [a.status_code for a, _ in meanwhile] == [200] * READ_BURST
        slowest = max(seconds for _, seconds in meanwhile)
        # Sharing two cores with the storm costs some, but nothing like a limiter's wait.
        assert slowest < max(0.5, 10 * slowest_alone), (slowest, slowest_alone)


class TestProvidersWebhooks:
    async def test_they_count_per_provider_and_address_apart_from_any_key(
        self, limited: ChorusProcess, keys: Keys
    ) -> None:
        async with (
            httpx.AsyncClient(base_url=limited.base_url, timeout=30) as provider,
            as_key(limited, keys.quiet) as quiet,
        ):
            first = await asyncio.gather(
                *(provider.post("/v1/webhooks/fake-sms", json={}) for _ in range(INGEST_BURST + 1))
            )
            other = await provider.post("/v1/webhooks/fake-email", json={})
            keyed = await quiet.post("/v1/events", json={})
        refused = [a for a in first if a.status_code == 429]
        assert len(refused) == 1
        assert refused[0].json()["route_class"] == "ingest"
        assert other.status_code != 429
        assert keyed.status_code != 429


def sample(metrics: str, route_class: str) -> float:
    prefix = f'chorus_rate_limited_total{{route_class="{route_class}"}}'
    found = [line for line in metrics.splitlines() if line.startswith(prefix)]
    return float(found[0].rpartition(" ")[2]) if found else 0.0


class TestOverNats:
    """A key's NATS messages spend the budget its HTTP requests spend (ADR 0022, amended)."""

    async def test_a_key_spent_over_http_gets_429_replies_over_nats_and_another_key_is_decided(
        self, limited: ChorusProcess, keys: Keys
    ) -> None:
        subject = f"{limited.subject_prefix}.cmd.messages.send"
        nc = await nats.connect(limited.nats_url)
        try:
            async with (
                as_key(limited, keys.noisy) as noisy,
                as_key(limited, keys.quiet) as quiet,
            ):
                made = await quiet.put(
                    "/v1/customers",
                    json={"identities": [{"type": "email", "value": "rate@example.org"}]},
                )
                made.raise_for_status()
                body = {
                    "customer_id": made.json()["customer"]["id"],
                    "team": "billing",
                    "purpose": "transactional",
                    "channels": ["email"],
                }
                # Its send budget spent over HTTP (each refused as invalid after it counted).
                spent = await asyncio.gather(
                    *(noisy.post("/v1/messages", json={}) for _ in range(SENDS_BURST))
                )
                assert {a.status_code for a in spent} == {400}

                async def command(key: str, n: int) -> tuple[int, dict[str, object]]:
                    headers = {"Chorus-Key": key, "Idempotency-Key": f"{key[-6:]}-{n}"}
                    reply = await nc.request(
                        subject, json.dumps(body).encode(), timeout=10, headers=headers
                    )
                    assert reply.headers is not None
                    return int(reply.headers["Chorus-Status"]), json.loads(reply.data)

                burst = await asyncio.gather(
                    *(command(keys.noisy, n) for n in range(SENDS_BURST + 2))
                )
                other = await command(keys.quiet, 0)
                metrics = (await quiet.get("/metrics")).text
        finally:
            await nc.close()
        statuses = [status for status, _ in burst]
        # Refused, bar what refilled (one a second) while the commands were on their way.
        assert statuses.count(429) >= len(statuses) - 1, statuses
        refused = next(answer for status, answer in burst if status == 429)
        assert refused["type"] == "https://chorus.dev/problems/rate-limited"
        assert refused["route_class"] == "send"
        assert refused["retry_after"] == 1
        assert other[0] == 200, other
        assert sample(metrics, "send") >= statuses.count(429)

    async def test_a_keys_signals_over_its_ingest_limit_are_dead_lettered_with_the_reason(
        self, limited: ChorusProcess, keys: Keys
    ) -> None:
        nc = await nats.connect(limited.nats_url)
        try:
            js = nc.jetstream()

            def signal(event_id: str) -> bytes:
                return json.dumps(
                    {
                        "id": event_id,
                        "type": "order.placed",
                        "occurred_at": "2026-03-01T10:00:00Z",
                        "identities": [{"type": "email", "value": "sig@example.org"}],
                    }
                ).encode()

            subject = f"{limited.subject_prefix}.signals.orders"
            noisy, quiet = keys
            for n in range(INGEST_BURST + 3):
                await js.publish(subject, signal(f"noisy-{n}"), headers={"Chorus-Key": noisy})
            await js.publish(subject, signal("quiet-0"), headers={"Chorus-Key": quiet})
            deadline = time.monotonic() + 20
            letters: list[object] = []
            while time.monotonic() < deadline:
                info = await js.stream_info(limited.dead_letter_stream)
                if info.state.messages >= 2:
                    await asyncio.sleep(1)  # any others the fetch refused too
                    info = await js.stream_info(limited.dead_letter_stream)
                    letters = [
                        await js.get_msg(limited.dead_letter_stream, seq)
                        for seq in range(1, info.state.messages + 1)
                    ]
                    break
                await asyncio.sleep(0.1)
        finally:
            await nc.close()
        refused = {
            json.loads(letter.data)["id"]: (letter.headers or {})["Chorus-Reason"]  # type: ignore[attr-defined]
            for letter in letters
        }
        assert 2 <= len(refused) <= 3, refused
        assert all(event_id.startswith("noisy-") for event_id in refused)
        assert all(reason.startswith("429 rate-limited: ") for reason in refused.values())
