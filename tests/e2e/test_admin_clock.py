from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from tests.e2e.service import ChorusProcess

pytestmark = pytest.mark.e2e


def client(chorus: ChorusProcess) -> httpx.Client:
    headers = {"Authorization": f"Bearer {chorus.admin_key}"}  # type: ignore[attr-defined]
    return httpx.Client(base_url=chorus.base_url, headers=headers, timeout=30)


class TestTheManualClock:
    def test_a_restart_resumes_the_manual_clock_where_it_stood(self, chorus: ChorusProcess) -> None:
        with client(chorus) as http:
            http.post("/v1/admin/clock", json={"set": "2030-01-01T00:00:00Z"}).raise_for_status()
            http.post("/v1/admin/clock", json={"advance_seconds": 90}).raise_for_status()
        chorus.stop()
        chorus.start()
        with client(chorus) as http:
            answer = http.post("/v1/admin/clock", json={})
        assert answer.status_code == 200
        assert answer.json()["now"] == "2030-01-01T00:01:30Z"
