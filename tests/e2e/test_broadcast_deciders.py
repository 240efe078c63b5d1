"""A running service starts its decider processes at its first broadcast of a few hundred
(ADR 0028): every member enrolled, every send decided and queued once, at the manual clock's
time, and the deciders running beside the service afterwards."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import uuid4

import asyncpg
import httpx
import pytest

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.e2e.service import ChorusProcess

pytestmark = pytest.mark.e2e

MEMBERS = 240  # more than a batch a decider takes (200), fewer than a slice
NEWS: dict[str, Any] = {
    "default_locale": "en",
    "variants": [
        {
            "channel": "email",
            "locale": "en",
            "subject": "News",
            "body": "Hi {{ customer.first_name }}",
        }
    ],
}


def _client(chorus: ChorusProcess) -> httpx.Client:
    headers = {"Authorization": f"Bearer {chorus.admin_key}"}  # type: ignore[attr-defined]
    return httpx.Client(base_url=chorus.base_url, headers=headers, timeout=30)


def _eventually(probe: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := probe()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.2)
    return found


def _query(database_url: str, sql: str) -> list[asyncpg.Record]:
    async def fetch() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(database_url)
        try:
            return list(await conn.fetch(sql))
        finally:
            await conn.close()

    return asyncio.run(fetch())


def _deciders(pid: int) -> list[int]:
    """The service's children that are spawned interpreters (its projection worker is not)."""
    children = [
        int(child)
        for task in Path(f"/proc/{pid}/task").glob("*/children")
        for child in task.read_text().split()
    ]
    return [
        child for child in children if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()
    ]


class TestBroadcastDeciders:
    def test_a_broadcast_of_hundreds_starts_the_services_deciders_and_goes_out_once(
        self, chorus: ChorusProcess, database_url: str
    ) -> None:
        cohort = f"cohort-{uuid4().hex[:8]}"
        with _client(chorus) as http:
            for n in range(MEMBERS):
                http.put(
                    "/v1/customers",
                    json={
                        "identities": [
                            {
                                "type": "email",
                                "value": f"b{n}@example.org",
                                "verification": "verified",
                            }
                        ],
                        "profile": {"first_name": f"B{n}", "time_zone": "Europe/Lisbon"},
                        "attributes": {"cohort": cohort},
                    },
                ).raise_for_status()
            condition = {"type": "attribute", "name": "cohort", "op": "eq", "value": cohort}
            http.post(
                "/v1/segments", json={"key": cohort, "name": cohort, "condition": condition}
            ).raise_for_status()
            _eventually(
                lambda: next(
                    s["members"] for s in http.get("/v1/segments").json()["items"]
                    if s["key"] == cohort
                ) == MEMBERS,
                "every customer in the segment",
            )  # fmt: skip
            http.put("/v1/templates/news", json=NEWS).raise_for_status()
            now = datetime.fromisoformat(http.post("/v1/admin/clock", json={}).json()["now"])
            journey = {
                "entry": {
                    "type": "schedule",
                    "segment": cohort,
                    "at": (now + timedelta(minutes=1)).isoformat(),
                },
                "start": "news",
                "steps": {
                    "news": {
                        "type": "send",
                        "channels": ["email"],
                        "template": "news",
                        "purpose": "service",
                        "team": "growth",
                    }
                },
            }
            created = http.post(
                "/v1/campaigns", json={"key": cohort, "name": "News", "journey": journey}
            )
            assert created.status_code == 201, created.text
            http.post(f"/v1/campaigns/{cohort}/activate").raise_for_status()
            assert _deciders(chorus.process.pid) == []
            # The schedule worker takes the campaign up (its next run, a minute on), then the
            # clock passes that minute.
            _eventually(
                lambda: _query(database_url, "SELECT due_at FROM campaign_schedules"),
                "the schedule taken up",
            )
            moved = http.post("/v1/admin/clock", json={"advance_seconds": 120}).json()["now"]
            _eventually(
                lambda: _query(database_url, "SELECT count(*) FROM decisions")[0][0] == MEMBERS,
                "every send decided",
            )
        # The first big batch started both deciders (and was decided while they started).
        _eventually(lambda: len(_deciders(chorus.process.pid)) == 2, "the deciders running")
        allowed = _query(
            database_url,
            """SELECT count(DISTINCT subject_id), min(occurred_at), max(occurred_at) FROM events
               WHERE topic LIKE '%:Customer.MessageAllowed'""",
        )[0]
        assert allowed[0] == MEMBERS
        assert allowed[1] == allowed[2] == datetime.fromisoformat(moved)
        queued = _query(database_url, "SELECT count(*) FROM messages")[0][0]
        assert queued == MEMBERS
