"""`chorus serve` with the system clock: intake answers, the worker process attributes."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from tests.e2e.service import ChorusProcess

pytestmark = pytest.mark.e2e


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


def _on_system_clock(chorus: ChorusProcess) -> httpx.Client:
    chorus.stop()
    chorus.env["CHORUS_CLOCK"] = "system"
    chorus.start()
    headers = {"Authorization": f"Bearer {chorus.admin_key}"}  # type: ignore[attr-defined]
    return httpx.Client(base_url=chorus.base_url, headers=headers, timeout=30)


def _signal(event_id: str, email: str) -> dict[str, object]:
    return {
        "id": event_id,
        "type": "page.viewed",
        "occurred_at": "2026-11-27T10:00:00Z",
        "identities": [{"type": "email", "value": email}],
    }


class TestIntakeThenAttribution:
    def test_signals_are_accepted_at_once_and_reach_their_customer_in_the_worker(
        self, chorus: ChorusProcess
    ) -> None:
        with _on_system_clock(chorus) as http:
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
        self, chorus: ChorusProcess
    ) -> None:
        with _on_system_clock(chorus) as http:
            signals = [_signal(f"m-{n}", f"m{n}@example.org") for n in range(3)]
            answer = http.post("/v1/events?wait=attributed", json={"signals": signals})
            assert answer.status_code == 200
            metrics = http.get("/metrics").text
        attributed = [
            line
            for line in metrics.splitlines()
            if line.startswith('chorus_projection_events_total{projection="signal_attribution"}')
        ]
        assert attributed, metrics[-2000:]
        assert float(attributed[0].split()[-1]) >= 3
        assert 'chorus_signals_total{outcome="accepted",transport="http"}' in metrics
        assert 'chorus_projection_failing{projection="signal_attribution"} 0.0' in metrics

    def test_a_stop_signal_takes_effect_before_the_answer(self, chorus: ChorusProcess) -> None:
        with _on_system_clock(chorus) as http:
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


class TestWorkerProcess:
    def test_the_worker_stops_by_itself_when_the_service_is_killed(
        self, chorus: ChorusProcess
    ) -> None:
        _on_system_clock(chorus).close()
        worker = _worker_of(chorus)
        assert chorus.process is not None
        os.kill(chorus.process.pid, signal.SIGKILL)  # the service only, not its group
        chorus.process.wait(10)
        deadline = time.monotonic() + 10
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(worker), "the worker outlived the service"
