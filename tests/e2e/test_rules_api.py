from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from tests.e2e.service import ChorusProcess

pytestmark = pytest.mark.e2e

# The rule set is the service's: a test that publishes one has a service of its own
# (`chorus`); the tests that only read it and have drafts refused or tried share one
# (`shared_chorus`), on which no rule set is ever published.

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
            shown = http.get("/v1/rules").json()
            assert shown["rules"]["caps"][0]["id"] == "cap.daily"
            identities = [
                {"type": "email", "value": "r@example.org"},
                {"type": "phone", "value": "+447700900111"},
            ]
            made = http.put("/v1/customers", json={"identities": identities}).json()
            who = made["customer"]["id"]
            body = {
                "customer_id": who,
                "team": "growth",
                "purpose": "service",
                "channels": ["email"],
            }
            first = http.post("/v1/messages", json=body).json()
            second = http.post("/v1/messages", json=body).json()
            promo = {**body, "purpose": "marketing", "channels": ["sms"]}
            sms = http.post("/v1/messages", json=promo).json()
        assert first["outcome"] == "send"
        assert first["rule_set_version"] == 2
        assert second["outcome"] == "defer"
        assert second["fired"][-1]["rule_id"] == "cap.daily"
        # The document names no channel: each keeps its built-in policy, shown and applied.
        assert "channels" not in shown["rules"]
        assert shown["channels_in_force"]["sms"] == {
            "consent": {"marketing": "opt_in", "service": "opt_in"},
            "session_window": None,
            "requires_verified_identity": False,
            "hard_opt_out": True,
            "cost": 0.0079,
        }
        assert shown["channels_in_force"]["whatsapp"]["session_window"] == "24h"
        assert sms["outcome"] == "suppress"
        assert sms["fired"][0]["rule_id"] == "consent.sms.marketing"

    def test_a_channel_named_for_its_tone_keeps_its_opt_in_and_reads_back_as_published(
        self, chorus: ChorusProcess
    ) -> None:
        tone = {"max_length": 120, "max_links": 1}
        document = {
            "channels": {"sms": {"tone": tone}, "whatsapp": {"session_window": None}},
        }
        with client(chorus) as http:
            published = http.put("/v1/rules", json=document)
            assert published.status_code == 200, published.text
            shown = http.get("/v1/rules").json()
            again = http.put("/v1/rules", json=shown["rules"])
            assert again.status_code == 200, again.text
            phone = [{"type": "phone", "value": "+447700900222"}]
            who = http.put("/v1/customers", json={"identities": phone}).json()["customer"]["id"]
            promo = {
                "customer_id": who,
                "team": "growth",
                "purpose": "marketing",
                "channels": ["sms"],
            }
            sms = http.post("/v1/messages", json=promo).json()
        assert shown["rules"]["channels"] == document["channels"]
        assert again.json()["version"] == shown["version"]  # the same rule set: nothing new
        in_force = shown["channels_in_force"]
        assert in_force["sms"]["consent"] == {"marketing": "opt_in", "service": "opt_in"}
        assert in_force["sms"]["hard_opt_out"] is True
        assert in_force["sms"]["tone"] == tone
        assert in_force["whatsapp"]["session_window"] is None
        assert in_force["whatsapp"]["hard_opt_out"] is True
        assert sms["outcome"] == "suppress"
        assert sms["fired"][0]["rule_id"] == "consent.sms.marketing"

    def test_an_invalid_rule_set_is_refused_with_every_path_and_nothing_changes(
        self, shared_chorus: ChorusProcess
    ) -> None:
        chorus = shared_chorus
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


class TestSimulatingOverHttp:
    def test_a_draft_is_tried_on_history_before_it_is_published(
        self, chorus: ChorusProcess
    ) -> None:
        with client(chorus) as http:
            http.post("/v1/admin/clock", json={"set": "2026-11-27T10:00:00Z"}).raise_for_status()
            http.put("/v1/rules", json=ONE_A_DAY).raise_for_status()
            who = http.put(
                "/v1/customers", json={"identities": [{"type": "email", "value": "s@example.org"}]}
            ).json()["customer"]["id"]
            body = {
                "customer_id": who,
                "team": "growth",
                "purpose": "service",
                "channels": ["email"],
            }
            for _ in range(3):
                http.post("/v1/messages", json=body).raise_for_status()
            draft = {"caps": [{"id": "cap.daily", "limit": 3, "window": "1d"}]}
            answer = http.post(
                "/v1/rules/simulate", json={"rules": draft, "since": "2026-11-27T00:00:00Z"}
            )
            assert answer.status_code == 200
            report = answer.json()
            assert report["decisions"] == 3
            assert report["changed"] == 2
            assert report["by_outcome"] == {"defer -> send": 2}
            assert report["examples"][0]["draft"]["outcome"] == "send"
            assert http.get("/v1/rules").json()["version"] == 2  # nothing was published

    def test_an_invalid_draft_names_the_path_inside_rules(
        self, shared_chorus: ChorusProcess
    ) -> None:
        with client(shared_chorus) as http:
            answer = http.post(
                "/v1/rules/simulate",
                json={
                    "rules": {"caps": [{"id": "x", "limit": -1, "window": "1d"}]},
                    "since": "2026-11-27T00:00:00Z",
                },
            )
        assert answer.status_code == 422
        assert answer.json()["errors"][0]["field"].startswith("$.rules.caps[0]")
