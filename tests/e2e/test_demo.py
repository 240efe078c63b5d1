"""`chorus demo` as a new user runs it: on its own embedded servers, with its fake providers."""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.e2e.demo import DemoProcess

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.e2e

IDLE_SECONDS = 10


def errors_in(log: str) -> list[str]:
    """Log lines at error level or above, and any traceback printed outside the JSON logs."""
    found = []
    for line in log.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            if "Traceback" in line:
                found.append(line)
            continue
        if isinstance(entry, dict) and entry.get("level") in ("error", "critical", "exception"):
            found.append(line[:2000])
    return found


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoProcess]:
    """One demo for the module; the idle test comes first, before anything is sent."""
    started = DemoProcess(tmp_path_factory.mktemp("demo") / "demo.log")
    try:
        started.start()
        yield started
    finally:
        started.stop()


class TestAnIdleDemo:
    def test_an_idle_demo_logs_nothing_at_error_level(self, demo: DemoProcess) -> None:
        time.sleep(IDLE_SECONDS)
        assert errors_in(demo.log()) == []


def breaker_states(demo: DemoProcess) -> dict[str, float]:
    text = httpx.get(demo.base_url + "/metrics", timeout=10).text
    found = re.findall(r'^chorus_provider_breaker_state\{provider="([^"]+)"\} (\S+)$', text, re.M)
    return {provider: float(value) for provider, value in found}


class TestTheDemoOnMetrics:
    def test_each_providers_breaker_is_a_gauge_that_opens_on_failures(
        self, demo: DemoProcess
    ) -> None:
        assert breaker_states(demo) == {
            "twilio": 0,
            "twilio-backup": 0,
            "whatsapp_cloud": 0,
            "email_api": 0,
            "fcm": 0,
            "smtp": 0,
        }
        control = demo.environment()["FAKE_TWILIO_CONTROL_URL"]
        httpx.post(control + "/fail", json={"count": 5}, timeout=10).raise_for_status()
        headers = {"Authorization": f"Bearer {demo.admin_key}"}
        with httpx.Client(base_url=demo.base_url, headers=headers, timeout=30) as http:
            for n in range(5):  # the breaker opens after 5 failures in a row (the default)
                http.post(
                    "/v1/messages",
                    json={
                        "identity": "phone:+447700900123",
                        "team": "support",
                        "purpose": "transactional",
                        "channels": ["sms"],
                        "content": {"body": f"Update {n}"},
                    },
                ).raise_for_status()
        deadline = time.monotonic() + 20
        while breaker_states(demo)["twilio"] != 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert breaker_states(demo)["twilio"] == 2
        assert breaker_states(demo)["twilio-backup"] == 0
