"""`chorus serve` with the system clock: intake answers, the worker process attributes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import httpx
import nats
import pytest

from tests.e2e.conftest import prepared_chorus
from tests.e2e.service import ChorusProcess

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from tests.servers import TestDatabases

pytestmark = pytest.mark.e2e


@contextlib.asynccontextmanager
async def _not_started(
    database_url: str, nats_url: str, log_path: Path
) -> AsyncIterator[ChorusProcess]:
    """A service on the system clock with an admin key, for its user to start (once the
    database holds what the test wants there first, or with its own environment)."""
    async with prepared_chorus(database_url, nats_url, log_path) as service:
        service.env["CHORUS_CLOCK"] = "system"
        yield service


@pytest.fixture
async def chorus(database_url: str, nats_url: str, tmp_path: Path) -> AsyncIterator[ChorusProcess]:
    """The test's own service on the system clock, on `database_url`, not started yet: the
    test starts it (`_started`), so it never starts once on the manual clock only to restart."""
    async with _not_started(database_url, nats_url, tmp_path / "chorus.log") as service:
        yield service


@pytest.fixture(scope="class")
async def attributing(
    databases: TestDatabases, nats_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ChorusProcess]:
    """One running service on the system clock for a class whose tests each send signals of
    their own (ids and emails) and change nothing the others read."""
    database_url = await databases.create()
    log_path = tmp_path_factory.mktemp("chorus") / "chorus.log"
    async with _not_started(database_url, nats_url, log_path) as service:
        service.start()
        yield service
    await databases.drop(database_url)


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _worker_of(chorus: ChorusProcess) -> int:
    assert chorus.process is not None
    for child in _children(chorus.process.pid):
        if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
            return child
    raise AssertionError("chorus serve has no projection worker process")


def _client(chorus: ChorusProcess) -> httpx.Client:
    headers = {"Authorization": f"Bearer {chorus.admin_key}"}  # type: ignore[attr-defined]
    return httpx.Client(base_url=chorus.base_url, headers=headers, timeout=30)


def _started(chorus: ChorusProcess) -> httpx.Client:
    chorus.start()
    return _client(chorus)


def _signal(event_id: str, email: str) -> dict[str, object]:
    return {
        "id": event_id,
        "type": "page.viewed",
        "occurred_at": "2026-11-27T10:00:00Z",
        "identities": [{"type": "email", "value": email}],
    }


class TestIntakeThenAttribution:
    def test_signals_are_accepted_at_once_and_reach_their_customer_in_the_worker(
        self, attributing: ChorusProcess
    ) -> None:
        with _client(attributing) as http:
            answer = http.post(
                "/v1/events",
                json={"signals": [_signal("w-1", "wen@example.org"), _signal("w-1", "x@y.org")]},
            )
            assert answer.status_code == 202
            body = answer.json()
            assert (body["accepted"], body["duplicates"]) == (1, 1)
            assert [r["status"] for r in body["results"]] == ["accepted", "duplicate"]
            assert "customer_id" not in body["results"][0]
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                found = http.get("/v1/customers", params={"identity": "email:wen@example.org"})
                if found.status_code == 200:
                    break
                time.sleep(0.05)
            assert found.status_code == 200
            again = http.post(
                "/v1/events?wait=attributed", json={"signals": [_signal("w-1", "wen@example.org")]}
            )
            assert again.status_code == 200
            [result] = again.json()["results"]
            assert result["status"] == "duplicate"
            assert result["customer_id"] == found.json()["id"]

    def test_the_services_metrics_include_what_its_worker_process_did(
        self, attributing: ChorusProcess
    ) -> None:
        with _client(attributing) as http:
            signals = [_signal(f"m-{n}", f"m{n}@example.org") for n in range(3)]
            answer = http.post("/v1/events?wait=attributed", json={"signals": signals})
            assert answer.status_code == 200
            # The worker counts a page after its customers are committed, and the answer may
            # come between the two: the count is looked for until it shows.
            deadline = time.monotonic() + 10
            while True:
                metrics = http.get("/metrics").text
                attributed = [
                    float(line.split()[-1])
                    for line in metrics.splitlines()
                    if line.startswith(
                        'chorus_projection_events_total{projection="signal_attribution"}'
                    )
                ]
                if (attributed and attributed[0] >= 3) or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        assert attributed, metrics[-2000:]
        assert attributed[0] >= 3
        assert 'chorus_signals_total{outcome="accepted",transport="http"}' in metrics
        assert 'chorus_projection_failing{projection="signal_attribution"} 0.0' in metrics

    def test_a_stop_signal_takes_effect_before_the_answer(self, attributing: ChorusProcess) -> None:
        with _client(attributing) as http:
            stop = {
                **_signal("stop-1", "sal@example.org"),
                "type": "consent.withdrawn",
                "properties": {"channel": "email", "purpose": "marketing"},
            }
            assert http.post("/v1/events", json={"signals": [stop]}).status_code == 202
            found = http.get("/v1/customers", params={"identity": "email:sal@example.org"})
            assert found.status_code == 200
            [consent] = found.json()["consents"]
            assert (consent["channel"], consent["purpose"], consent["granted"]) == (
                "email",
                "marketing",
                False,
            )


# A fault the test can put in and take out while the service runs: the directory refuses one
# customer's row, as it would an event it cannot store.
_REFUSE_BLOCKED = """
CREATE FUNCTION refuse_blocked() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF 'email:blocked@example.org' = ANY(NEW.identities) THEN
        RAISE EXCEPTION 'the directory cannot hold this customer';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER refuse_blocked BEFORE INSERT OR UPDATE ON customer_directory
    FOR EACH ROW EXECUTE FUNCTION refuse_blocked();
"""
_FIXED = "DROP TRIGGER refuse_blocked ON customer_directory"


def _sql(database_url: str, query: str, *args: object) -> object:
    """The first value of a query's answer, or the status of a script of statements."""

    async def run() -> object:
        conn = await asyncpg.connect(database_url)
        try:
            return await (conn.fetchval(query, *args) if args else conn.execute(query))
        finally:
            await conn.close()

    return asyncio.run(run())


def _ready_until(
    http: httpx.Client, status: int, saying: str = "", seconds: float = 15
) -> dict[str, object]:
    deadline = time.monotonic() + seconds
    while True:
        answer = http.get("/ready")
        if (answer.status_code == status and saying in answer.text) or time.monotonic() > deadline:
            assert saying in answer.text
            assert answer.status_code == status, answer.text
            body: dict[str, object] = answer.json()
            return body
        time.sleep(0.1)


def _in_directory(database_url: str, email: str) -> object:
    return _sql(
        database_url,
        "SELECT count(*) FROM customer_directory WHERE $1 = ANY(identities)",
        f"email:{email}",
    )


class TestReadinessTellsOfStuckProjections:
    def test_ready_is_503_naming_a_parked_event_until_a_retry_applies_it(
        self, chorus: ChorusProcess, database_url: str
    ) -> None:
        _sql(database_url, _REFUSE_BLOCKED)
        with _started(chorus) as http:
            assert http.get("/ready").status_code == 200
            blocked = http.post(
                "/v1/events", json={"signals": [_signal("p-1", "blocked@example.org")]}
            )
            assert blocked.status_code == 202
            checks = _ready_until(http, 503, saying="event(s) parked")["checks"]
            assert isinstance(checks, dict)
            assert checks["projections"].startswith("stuck: customer_directory 1 event(s) parked")
            gauge = 'chorus_projection_parked_events{projection="customer_directory"} 1.0'
            deadline = time.monotonic() + 5  # the worker counts them every second
            while gauge not in (metrics := http.get("/metrics").text):
                assert time.monotonic() < deadline, metrics[-2000:]
                time.sleep(0.1)

            clean = http.post(
                "/v1/events?wait=attributed",
                json={"signals": [_signal("p-2", "clean@example.org")]},
            )
            assert clean.status_code == 200
            assert clean.json()["results"][0]["status"] == "recorded"
            deadline = time.monotonic() + 10
            while not _in_directory(database_url, "clean@example.org"):
                assert time.monotonic() < deadline, "the directory stopped at the parked event"
                time.sleep(0.05)
            assert http.get("/ready").status_code == 503

            _sql(database_url, _FIXED)
            retried = chorus.chorus("projections", "retry", "customer_directory")
            assert retried.startswith("applied 1 parked event(s) of customer_directory")
            assert _ready_until(http, 200)["checks"]["projections"] == "ok"  # type: ignore[index]
            assert _in_directory(database_url, "blocked@example.org") == 1

    def test_ready_is_503_while_a_projection_fails_and_200_once_it_moves(
        self, chorus: ChorusProcess, database_url: str
    ) -> None:
        chorus.env["CHORUS_PROJECTION_ATTEMPTS"] = "1000000"  # it fails, and fails again
        _sql(database_url, _REFUSE_BLOCKED)
        with _started(chorus) as http:
            blocked = http.post(
                "/v1/events", json={"signals": [_signal("f-1", "blocked@example.org")]}
            )
            assert blocked.status_code == 202
            body = _ready_until(http, 503)
            problem = body["checks"]["projections"]  # type: ignore[index]
            assert problem.startswith("stuck: customer_directory failing since")
            assert "the directory cannot hold this customer" in problem

            _sql(database_url, _FIXED)
            assert _ready_until(http, 200)["checks"]["projections"] == "ok"  # type: ignore[index]
            assert _in_directory(database_url, "blocked@example.org") == 1
            parked = _sql(
                database_url,
                "SELECT count(*) FROM parked_events WHERE projection = $1",
                "customer_directory",
            )
            assert parked == 0


class TestWorkerProcess:
    def test_the_worker_stops_by_itself_when_the_service_is_killed(
        self, chorus: ChorusProcess
    ) -> None:
        _started(chorus).close()
        worker = _worker_of(chorus)
        assert chorus.process is not None
        os.kill(chorus.process.pid, signal.SIGKILL)  # the service only, not its group
        chorus.process.wait(10)
        deadline = time.monotonic() + 10
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(worker), "the worker outlived the service"


class TestCommitBell:
    @pytest.mark.parametrize("clock", ["manual", "system"])
    async def test_one_commit_wakes_the_projections_once_not_forever(
        self, chorus: ChorusProcess, clock: str
    ) -> None:
        # With the manual clock the projections run in the service's own process, whose bell
        # also relays commits over NATS: what comes back must not be relayed again.
        chorus.env["CHORUS_CLOCK"] = clock
        chorus.start()
        nc = await nats.connect(chorus.nats_url)
        relayed = 0

        async def count(msg: object) -> None:
            nonlocal relayed
            relayed += 1

        try:
            await nc.subscribe(f"{chorus.subject_prefix}.internal.commits", cb=count)
            await nc.flush()
            headers = {"Authorization": f"Bearer {chorus.admin_key}"}  # type: ignore[attr-defined]
            async with httpx.AsyncClient(base_url=chorus.base_url, headers=headers) as http:
                answer = await http.put(
                    "/v1/customers",
                    json={"identities": [{"type": "email", "value": "bell@example.org"}]},
                )
                assert answer.status_code == 201, answer.text
            await asyncio.sleep(2)
        finally:
            await nc.close()
        assert 1 <= relayed <= 5, relayed
