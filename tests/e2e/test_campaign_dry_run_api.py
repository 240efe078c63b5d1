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
    "variants": [
        {
            "channel": "email",
            "locale": "en",
            "subject": "Thanks",
            "body": "Thanks {{ customer.first_name }}",
        }
    ],
}
ORDERS: dict[str, Any] = {
    "entry": {"type": "signal", "signal": "order.placed"},
    "start": "an-hour-later",
    "steps": {
        "an-hour-later": {"type": "wait", "for": "1h", "next": "thanks"},
        "thanks": {
            "type": "send",
            "channels": ["email"],
            "template": "welcome",
            "purpose": "marketing",
            "team": "growth",
        },
    },
}
START = "2026-12-01T09:00:00Z"
PERIOD = {"from": "2026-12-01T08:00:00Z", "to": "2026-12-01T12:00:00Z"}
URL = "/v1/campaigns/orders/dry-run"


def client(chorus: ChorusProcess, key: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key or chorus.admin_key}"}  # type: ignore[attr-defined]
    return httpx.Client(base_url=chorus.base_url, headers=headers, timeout=30)


def signal(event_id: str, email: str) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": "order.placed",
        "occurred_at": START,
        "identities": [{"type": "email", "value": email}],
    }


class TestCampaignDryRunApi:
    def test_a_draft_is_played_over_the_recorded_signals_and_nothing_is_sent(
        self, chorus: ChorusProcess
    ) -> None:
        marketer = chorus.chorus("keys", "create", "--role", "marketer")
        with client(chorus, marketer) as http, client(chorus) as admin:
            admin.post("/v1/admin/clock", json={"set": START}).raise_for_status()
            http.put("/v1/templates/welcome", json=WELCOME).raise_for_status()
            made = http.post(
                "/v1/campaigns", json={"key": "orders", "name": "Orders", "journey": ORDERS}
            )
            assert made.status_code == 201, made.text
            for i, email in enumerate(("ana@example.org", "bo@example.org")):
                customer = {
                    "identities": [{"type": "email", "value": email}],
                    "profile": {"first_name": email.split("@")[0].title()},
                }
                http.put("/v1/customers", json=customer).raise_for_status()
                admin.post(
                    "/v1/events?wait=attributed", json={"signals": [signal(f"o{i}", email)]}
                ).raise_for_status()
            played = http.post(URL, json=PERIOD)
            assert played.status_code == 200, played.text
            body = played.json()
            assert body["entered"]["total"] == 2
            assert body["steps"] == {
                "an-hour-later": {"reached": 2, "held": 0},
                "thanks": {"reached": 2, "held": 0},
            }
            # Nobody opted in to marketing email: the rules would have suppressed both.
            assert body["sends"]["suppressed"] == 2
            thanks = body["sends"]["by_step"]["thanks"]
            assert thanks["suppressed_by"]["consent.email.marketing"] == 2
            assert thanks["not_sent"] == {}
            assert body["assumptions"]
            tried = {**ORDERS, "steps": {"thanks": ORDERS["steps"]["thanks"]}, "start": "thanks"}
            again = http.post(URL, json={**PERIOD, "journey": tried, "sample_limit": 1})
            assert again.status_code == 200, again.text
            assert (again.json()["tried"], again.json()["customers"]) == (
                True,
                {"played": 1, "sample_full": True},
            )
            assert again.json()["steps"] == {"thanks": {"reached": 1, "held": 0}}
            assert http.get("/v1/campaigns/orders").json()["status"] == "draft"

    def test_bad_input_is_refused_naming_the_field(self, chorus: ChorusProcess) -> None:
        with client(chorus) as http:
            http.put("/v1/templates/welcome", json=WELCOME).raise_for_status()
            http.post(
                "/v1/campaigns", json={"key": "orders", "name": "Orders", "journey": ORDERS}
            ).raise_for_status()
            cases: list[tuple[dict[str, Any], int, str]] = [
                ({"from": PERIOD["from"]}, 400, "$.to"),
                ({**PERIOD, "sample_limit": 0}, 400, "$.sample_limit"),
                ({**PERIOD, "from": "2026-12-01T08:00:00"}, 422, "$.from"),
                ({**PERIOD, "to": "2026-06-01T08:00:00Z"}, 422, "$.to"),
                ({**PERIOD, "to": "2027-06-01T08:00:00Z"}, 422, "$.to"),
                (
                    {**PERIOD, "journey": {**ORDERS, "start": "nowhere"}},
                    422,
                    "$.journey.start",
                ),
            ]
            for body, status, field in cases:
                answer = http.post(URL, json=body)
                assert answer.status_code == status, (body, answer.text)
                assert field in [e["field"] for e in answer.json()["errors"]], answer.text
            texts = [
                (
                    json.dumps({**PERIOD, "sample_limit": 1}).replace(" 1}", " 1e400}"),
                    "$.sample_limit",
                ),
                (
                    json.dumps({**PERIOD, "journey": ORDERS}).replace(
                        '"for": "1h"', '"for": "1h", "priority": 1e400'
                    ),
                    "$.journey.steps.an-hour-later.priority",
                ),
            ]
            for text, field in texts:  # a number too large to be finite, named by its path
                answer = http.post(URL, content=text, headers={"Content-Type": "application/json"})
                assert answer.status_code == 400, answer.text
                assert [e["field"] for e in answer.json()["errors"]] == [field], answer.text
            nul = {
                **ORDERS,
                "entry": {"type": "signal", "signal": "order\u0000placed"},
                "steps": {**ORDERS["steps"], "orphan": {"type": "exit", "reason": "x\u0000"}},
            }
            answer = http.post(URL, json={**PERIOD, "journey": nul})
            assert answer.status_code == 400, answer.text
            assert [e["field"] for e in answer.json()["errors"]] == [
                "$.journey.entry.signal",
                "$.journey.steps.orphan.reason",
                "$.journey.steps.orphan",
            ]
            assert http.post("/v1/campaigns/nope/dry-run", json=PERIOD).status_code == 404
            service = chorus.chorus("keys", "create", "--role", "service")
            with client(chorus, service) as other:
                assert other.post(URL, json=PERIOD).status_code == 403
