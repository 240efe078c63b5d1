from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    from tests.e2e.service import ChorusProcess

pytestmark = pytest.mark.e2e

WELCOME: dict[str, Any] = {
    "default_locale": "en",
    "variants": [{"channel": "sms", "locale": "en", "body": "Thanks {{ customer.first_name }}"}],
}
FOLLOW_UP: dict[str, Any] = {
    "entry": {"type": "signal", "signal": "order.placed"},
    "start": "a-day-later",
    "steps": {
        "a-day-later": {"type": "wait", "for": "1d", "next": "thanks"},
        "thanks": {
            "type": "send",
            "channels": ["sms"],
            "template": "welcome",
            "purpose": "marketing",
            "team": "growth",
        },
    },
    "goal": {"signal": "purchase", "within": "7d"},
}
CAMPAIGN: dict[str, Any] = {
    "key": "order-follow-up",
    "name": "Order follow-up",
    "journey": FOLLOW_UP,
}


def client(chorus: ChorusProcess, key: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key or chorus.admin_key}"}  # type: ignore[attr-defined]
    return httpx.Client(base_url=chorus.base_url, headers=headers, timeout=30)


def edited(wait: str) -> dict[str, Any]:
    steps = {
        **FOLLOW_UP["steps"],
        "a-day-later": {**FOLLOW_UP["steps"]["a-day-later"], "for": wait},
    }
    return {"name": "Order follow-up", "journey": {**FOLLOW_UP, "steps": steps}}


class TestCampaignsApi:
    def test_a_campaign_is_drafted_published_in_versions_and_taken_through_its_life(
        self, chorus: ChorusProcess
    ) -> None:
        marketer = chorus.key("marketer")
        with client(chorus, marketer) as http:
            http.put("/v1/templates/welcome", json=WELCOME).raise_for_status()
            created = http.post("/v1/campaigns", json=CAMPAIGN)
            assert created.status_code == 201, created.text
            body = created.json()
            assert created.headers["location"] == "/v1/campaigns/order-follow-up"
            assert (body["status"], body["version"], body["journey"]) == ("draft", 1, FOLLOW_UP)
            assert [v["version"] for v in body["versions"]] == [1]
            assert "marketer key" in body["versions"][0]["by"]
            again = http.post("/v1/campaigns", json=CAMPAIGN)
            assert (again.status_code, again.json()["version"]) == (200, 1)
            clash = http.post("/v1/campaigns", json={**CAMPAIGN, "name": "Another"})
            assert (clash.status_code, clash.json()["type"].split("/")[-1]) == (
                409,
                "campaign-exists",
            )

            live = http.post("/v1/campaigns/order-follow-up/activate")
            assert (live.status_code, live.json()["status"]) == (200, "active")
            by_id = f"/v1/campaigns/{body['id']}"
            move = {"moves": [{"from": "a-day-later", "to": "a-day-later", "from_version": 1}]}
            published = http.put(by_id, json={**edited("2d"), "migration": move})
            assert published.status_code == 200, published.text
            assert [v["version"] for v in published.json()["versions"]] == [1, 2]
            retried = http.put(by_id, json={**edited("2d"), "migration": move})
            assert retried.json()["version"] == 2

            assert http.post(by_id + "/pause").json()["status"] == "paused"
            refused = http.post(by_id + "/activate")
            assert refused.status_code == 409
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert refused.json()["campaign_status"] == "paused"
            assert http.post(by_id + "/resume").json()["status"] == "active"

            listed = http.get("/v1/campaigns", params={"status": "active"}).json()
            assert [c["key"] for c in listed["items"]] == ["order-follow-up"]
            assert listed["next_cursor"] is None
            assert http.get("/v1/campaigns", params={"status": "draft"}).json()["items"] == []

            no_reason = http.post(by_id + "/archive", json={})
            assert no_reason.status_code == 400
            assert "field `reason`" in no_reason.json()["errors"][0]["reason"]
            archived = http.post(by_id + "/archive", json={"reason": "season over"})
            assert archived.json()["status"] == "archived"
            assert http.put(by_id, json=edited("3d")).status_code == 409

    def test_control_characters_are_a_400_naming_each_with_every_other_fault(
        self, chorus: ChorusProcess
    ) -> None:
        """And the journey's other faults come in the same answer; nothing is stored."""
        journey = {
            **FOLLOW_UP,
            "entry": {"type": "signal", "signal": "order\u0000placed"},
            "steps": {
                **FOLLOW_UP["steps"],
                "a-day-later": {
                    "type": "wait_for_signal",
                    "signal": "purchase",
                    "where": [{"property": "sku\u0000", "op": "eq", "value": "a\u0000"}],
                    "timeout": "1d",
                    "on_signal": "bye",
                    "on_timeout": "thanks",
                },
                "bye": {"type": "exit", "reason": "bought\u0000"},
                "orphan": {**FOLLOW_UP["steps"]["thanks"], "template": "nope", "channels": []},
            },
        }
        nul = "holds the control character U+0000"
        with client(chorus) as http:
            http.put("/v1/templates/welcome", json=WELCOME).raise_for_status()
            answer = http.post("/v1/campaigns", json={**CAMPAIGN, "journey": journey})
            assert answer.status_code == 400, answer.text
            assert answer.json()["type"].endswith("/invalid-request")
            errors = [(e["field"], e["reason"]) for e in answer.json()["errors"]]
            steps = "$.journey.steps"
            assert [field for field, _ in errors] == [
                "$.journey.entry.signal",
                f"{steps}.a-day-later.where[0].property",
                f"{steps}.a-day-later.where[0].value",
                f"{steps}.bye.reason",
                f"{steps}.orphan.channels",
                f"{steps}.orphan.template",
                f"{steps}.orphan",
            ]
            assert all(reason.startswith(nul) for _, reason in errors[:4]), errors
            assert http.get("/v1/campaigns/order-follow-up").status_code == 404

            named = http.post("/v1/campaigns", json={**CAMPAIGN, "name": "a\u0000b", "key": 5})
            assert named.status_code == 400, named.text
            assert [e["field"] for e in named.json()["errors"]] == ["$.name"]

            assert http.post("/v1/campaigns", json=CAMPAIGN).status_code == 201
            edit = edited("1d")
            edit["journey"]["steps"]["thanks"] = {
                **FOLLOW_UP["steps"]["thanks"],
                "template": "nope",
                "team": "gro\u0007wth",
            }
            answer = http.put("/v1/campaigns/order-follow-up", json=edit)
            assert answer.status_code == 400, answer.text
            assert [e["field"] for e in answer.json()["errors"]] == [
                f"{steps}.thanks.team",
                f"{steps}.thanks.template",
            ]
            stored = http.get("/v1/campaigns/order-follow-up").json()
            assert stored["journey"]["steps"]["thanks"]["template"] == "welcome"
            archive = http.post("/v1/campaigns/order-follow-up/archive", json={"reason": "a\u0000"})
            assert archive.status_code == 400, archive.text
            assert [e["field"] for e in archive.json()["errors"]] == ["$.reason"]
            assert http.get("/v1/campaigns/order-follow-up").json()["status"] == "draft"

    def test_a_refused_journey_is_a_422_naming_each_path_and_stores_nothing(
        self, chorus: ChorusProcess
    ) -> None:
        """And auditors read campaigns but may not write them."""
        journey = {
            **FOLLOW_UP,
            "steps": {
                **FOLLOW_UP["steps"],
                "thanks": {**FOLLOW_UP["steps"]["thanks"], "template": "nope", "channels": []},
            },
        }
        with client(chorus) as http:
            answer = http.post("/v1/campaigns", json={**CAMPAIGN, "journey": journey})
            assert answer.status_code == 422, answer.text
            problem = answer.json()
            assert problem["type"].endswith("/invalid-journey")
            fields = {error["field"] for error in problem["errors"]}
            assert fields == {"$.journey.steps.thanks.channels", "$.journey.steps.thanks.template"}
            assert http.get("/v1/campaigns/order-follow-up").status_code == 404
            assert http.get("/v1/campaigns").json()["items"] == []

            bad_type = {**FOLLOW_UP, "entry": {"type": "someday"}}
            answer = http.post("/v1/campaigns", json={**CAMPAIGN, "journey": bad_type})
            assert answer.status_code == 422
            assert answer.json()["errors"][0]["field"] == "$.journey.entry.type"

            broken_step = {
                **FOLLOW_UP,
                "steps": {
                    "a-day-later": {"type": "wait", "for": 1, "next": "thanks"},
                    "thanks": {**FOLLOW_UP["steps"]["thanks"], "template": "nope"},
                },
            }
            answer = http.post("/v1/campaigns", json={**CAMPAIGN, "journey": broken_step})
            assert answer.status_code == 422
            assert [error["field"] for error in answer.json()["errors"]] == [
                "$.journey.steps.a-day-later.for",
                "$.journey.steps.thanks.template",
            ]
            wrong_type = {
                **FOLLOW_UP,
                "steps": {
                    **FOLLOW_UP["steps"],
                    "thanks": {
                        **FOLLOW_UP["steps"]["thanks"],
                        "template": "nope",
                        "channels": [],
                        "priority": "high",
                    },
                },
                "policies": {"re_entry": "sometimes", "cool_down": "forever"},
            }
            answer = http.post("/v1/campaigns", json={**CAMPAIGN, "journey": wrong_type})
            assert answer.status_code == 422, answer.text
            assert sorted(error["field"] for error in answer.json()["errors"]) == [
                "$.journey.policies.cool_down",
                "$.journey.policies.re_entry",
                "$.journey.steps.thanks.channels",
                "$.journey.steps.thanks.priority",
                "$.journey.steps.thanks.template",
            ]
            too_large = http.post(
                "/v1/campaigns",
                content=json.dumps({**CAMPAIGN, "journey": journey}).replace(
                    '"for": "1d"', '"for": "1d", "priority": 1e400'
                ),
                headers={"Content-Type": "application/json"},
            )
            assert too_large.status_code == 400, too_large.text
            assert too_large.json()["errors"][0]["field"] == "$.journey.steps.a-day-later.priority"

            nul = http.post("/v1/campaigns", json={**CAMPAIGN, "name": "a\u0000b"})
            assert nul.status_code == 400
            assert nul.json()["errors"][0]["field"] == "$.name"
            cursor = http.get("/v1/campaigns", params={"after": "AA"})
            assert (cursor.status_code, cursor.json()["errors"][0]["field"]) == (400, "query.after")

            http.put("/v1/templates/welcome", json=WELCOME).raise_for_status()
            assert http.post("/v1/campaigns", json=CAMPAIGN).status_code == 201
        auditor = chorus.key("auditor")
        with client(chorus, auditor) as http:
            assert http.get("/v1/campaigns/order-follow-up").status_code == 200
            assert http.get("/v1/campaigns").status_code == 200
            assert http.post("/v1/campaigns", json=CAMPAIGN).status_code == 403
            assert http.post("/v1/campaigns/order-follow-up/activate").status_code == 403
