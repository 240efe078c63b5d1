"""Providers come from the environment; each start whose providers changed records them in the
event log, by `environment`, with no secret: an auditor sees when they changed."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    from tests.e2e.service import ChorusProcess

pytestmark = pytest.mark.e2e

TOKEN = "twilio-token-3f9a-never-in-the-log"


def providers(priority: int) -> str:
    return json.dumps(
        [
            {
                "name": "sms",
                "type": "twilio",
                "priority": priority,
                "account_sid": "AC0123",
                "auth_token": TOKEN,
                "from_number": "+15005550001",
                "base_url": "http://127.0.0.1:9",
            }
        ]
    )


def configured(chorus: ChorusProcess, at_least: int) -> list[dict[str, Any]]:
    """The `Providers.Configured` lines once at least that many are readable (the log's
    horizon waits for every transaction of a shared server to end)."""
    headers = {"Authorization": f"Bearer {chorus.admin_key}"}  # type: ignore[attr-defined]
    deadline = time.monotonic() + 20
    while True:
        answer = httpx.get(
            f"{chorus.base_url}/v1/audit/events",
            params={"type": "Providers.Configured"},
            headers=headers,
        )
        assert answer.status_code == 200, answer.text
        found = [json.loads(line) for line in answer.text.splitlines() if line]
        if len(found) >= at_least or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def restart(chorus: ChorusProcess, config: str) -> None:
    chorus.stop()
    chorus.env["CHORUS_PROVIDERS"] = config
    chorus.start()


class TestProviderChanges:
    def test_a_start_with_changed_providers_records_them_once_without_secrets(
        self, chorus: ChorusProcess
    ) -> None:
        restart(chorus, providers(10))
        assert len(configured(chorus, 1)) == 1
        restart(chorus, providers(10))  # the same: nothing new
        restart(chorus, providers(20))
        lines = configured(chorus, 2)
        assert [line["payload"]["providers"][0]["priority"] for line in lines] == [10, 20]
        assert {line["payload"]["by"] for line in lines} == {"environment"}
        assert lines[0]["payload"]["providers"][0]["channel"] == "sms"
        assert lines[0]["payload"]["providers"][0]["base_url"] == "http://127.0.0.1:9"
        assert TOKEN not in json.dumps(lines)
