"""Enrollments over HTTP: a customer entered through the API (idempotent with a key), the
campaign's enrollments a page at a time, and the journeys a customer is in."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.e2e.test_campaigns_api import WELCOME, client
from tests.e2e.test_segments_api import wait_for

if TYPE_CHECKING:
    from tests.e2e.service import ChorusProcess

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def chorus(shared_chorus: ChorusProcess) -> ChorusProcess:
    """The module's tests share one service: each has its own campaign and customers."""
    return shared_chorus


BY_API: dict[str, Any] = {
    "key": "vip-welcome",
    "name": "VIP welcome",
    "journey": {
        "entry": {"type": "api"},
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
    },
}


def customer(http: httpx.Client, email: str) -> str:
    body = {"identities": [{"type": "email", "value": email}], "profile": {"first_name": "Ana"}}
    answer = http.put("/v1/customers", json=body)
    answer.raise_for_status()
    found: str = answer.json()["customer"]["id"]
    return found


class TestEnrollmentsApi:
    def test_customers_enter_by_api_and_are_listed_where_they_are_and_why(
        self, chorus: ChorusProcess
    ) -> None:
        marketer = chorus.key("marketer")
        auditor = chorus.key("auditor")
        with client(chorus, marketer) as http:
            http.put("/v1/templates/welcome", json=WELCOME).raise_for_status()
            http.post("/v1/campaigns", json=BY_API).raise_for_status()
            http.post("/v1/campaigns/vip-welcome/activate").raise_for_status()
            ana = customer(http, "ana@example.org")
            bo = customer(http, "bo@example.org")

            path = "/v1/campaigns/vip-welcome/enrollments"
            made = http.post(path, json={"customer_id": ana}, headers={"Idempotency-Key": "k-1"})
            assert made.status_code == 201, made.text
            again = http.post(path, json={"customer_id": ana}, headers={"Idempotency-Key": "k-1"})
            assert (again.status_code, again.json()) == (201, made.json())
            assert again.headers["chorus-repeated"] == "true"
            refused = http.post(path, json={"customer_id": ana})
            assert refused.status_code == 409
            problem = refused.json()
            assert problem["type"].endswith("/enrollment-refused")
            assert problem["errors"][0]["field"] == "customer_id"
            assert "already in the journey" in problem["detail"]
            assert http.post(path, json={"customer_id": bo}).status_code == 201
            missing = http.post(path, json={"customer_id": "6f1d2c9e-8a10-4e55-9a43-0b4e7a523f0c"})
            assert missing.status_code == 404
            no_body = http.post(path, json={})
            assert no_body.status_code == 400
            assert "customer_id" in no_body.text

            def listed() -> list[dict[str, Any]]:
                items: list[dict[str, Any]] = http.get(path).json()["items"]
                return items if all(i["step"] for i in items) and len(items) == 2 else []

            assert wait_for(listed)
            first = http.get(path, params={"limit": 1}).json()
            assert [i["customer_id"] for i in first["items"]] == [bo]
            rest = http.get(path, params={"limit": 1, "after": first["next_cursor"]}).json()
            assert [i["customer_id"] for i in rest["items"]] == [ana]
            assert rest["next_cursor"] is None
            waiting = http.get(path, params={"status": "active", "step": "a-day-later"}).json()
            assert len(waiting["items"]) == 2
            assert http.get(path, params={"status": "converted"}).json()["items"] == []
            bad = http.get(path, params={"after": "nope"})
            assert (bad.status_code, bad.json()["errors"][0]["field"]) == (400, "query.after")

        with client(chorus, auditor) as http:
            mine = http.get(f"/v1/customers/{ana}/campaigns").json()
            (journey,) = mine["items"]
            assert (journey["campaign"], journey["status"], journey["step"]) == (
                "vip-welcome",
                "active",
                "a-day-later",
            )
            assert journey["reason"]
            assert journey["waiting_for"] == "time"
            assert journey["source"] == "api:k-1"
            assert http.post(path, json={"customer_id": ana}).status_code == 403

    def test_entries_at_once_past_the_cap_are_refused_as_one_after_it_is(
        self, chorus: ChorusProcess
    ) -> None:
        marketer = chorus.key("marketer")
        capped = {
            **BY_API,
            "key": "two-only",
            "journey": {**BY_API["journey"], "policies": {"enrollment_cap": 2}},
        }
        path = "/v1/campaigns/two-only/enrollments"
        with client(chorus, marketer) as http:
            http.put("/v1/templates/welcome", json=WELCOME).raise_for_status()
            http.post("/v1/campaigns", json=capped).raise_for_status()
            http.post("/v1/campaigns/two-only/activate").raise_for_status()
            customers = [customer(http, f"c{n}@example.org") for n in range(9)]
            late = customers.pop()

        def enter(customer_id: str) -> httpx.Response:
            with client(chorus, marketer) as own:
                return own.post(path, json={"customer_id": customer_id})

        with ThreadPoolExecutor(max_workers=len(customers)) as pool:
            answers = list(pool.map(enter, customers))
        assert sorted(a.status_code for a in answers) == [201, 201] + [409] * 6
        with client(chorus, marketer) as http:
            after = http.post(path, json={"customer_id": late})
            assert after.status_code == 409
            refused = [a.json() for a in answers if a.status_code == 409] + [after.json()]
            assert {
                (p["type"].rsplit("/", 1)[-1], p["detail"], p["errors"][0]["field"])
                for p in refused
            } == {("enrollment-refused", "the enrollment cap of 2 is reached", "customer_id")}
            entered = {a.json()["customer_id"] for a in answers if a.status_code == 201}

            def listed() -> set[str]:
                found = {i["customer_id"] for i in http.get(path).json()["items"]}
                return found if len(found) >= len(entered) else set()

            assert wait_for(listed) == entered
