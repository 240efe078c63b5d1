from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from tests.e2e.service import ChorusProcess

pytestmark = pytest.mark.e2e

ONE_A_DAY = {
    "default_time_zone": "Europe/London",
    "caps": [{"id": "cap.daily", "limit": 1, "window": "1d"}],
}


def client(chorus: ChorusProcess) -> httpx.Client:
    headers = {"Authorization": f"Bearer {chorus.admin_key}"}  # type: ignore[attr-defined]
    return httpx.Client(base_url=chorus.base_url, headers=headers, timeout=30)


class TestPublishingRules:
    def test_a_published_version_is_cited_by_the_next_decisions(
        self, chorus: ChorusProcess
    ) -> None:
        with client(chorus) as http:
            assert http.get("/v1/rules").json()["version"] == 1
            published = http.put("/v1/rules", json=ONE_A_DAY)
            assert published.status_code == 200
            assert published.json()["version"] == 2
            assert "admin" in published.json()["author"]
            assert http.get("/v1/rules").json()["rules"]["caps"][0]["id"] == "cap.daily"
            who = http.put(
                "/v1/customers", json={"identities": [{"type": "email", "value": "r@example.org"}]}
            ).json()["customer"]["id"]
            body = {
                "customer_id": who,
                "team": "growth",
                "purpose": "service",
                "channels": ["email"],
            }
            first = http.post("/v1/messages", json=body).json()
            second = http.post("/v1/messages", json=body).json()
        assert first["outcome"] == "send"
        assert first["rule_set_version"] == 2
        assert second["outcome"] == "defer"
        assert second["fired"][-1]["rule_id"] == "cap.daily"

    def test_an_invalid_rule_set_is_refused_with_every_path_and_nothing_changes(
        self, chorus: ChorusProcess
    ) -> None:
        bad = {
            "default_time_zone": "Mars/Base",
            "caps": [{"id": "cap.a", "limit": 1, "window": "1d", "reserved": 2}],
        }
        with client(chorus) as http:
            answer = http.put("/v1/rules", json=bad)
            assert answer.status_code == 422
            fields = {e["field"] for e in answer.json()["errors"]}
            assert {"$.default_time_zone", "$.caps[0].reserved"} <= fields
            assert http.get("/v1/rules").json()["version"] == 1
