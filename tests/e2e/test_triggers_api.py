from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    from tests.e2e.service import ChorusProcess

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def chorus(shared_chorus: ChorusProcess) -> ChorusProcess:
    """The module's tests share one service: each names its own triggers and customers."""
    return shared_chorus


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


BIG_ORDERS: dict[str, Any] = {
    "name": "Big orders",
    "description": "Starts the thank-you journey",
    "on": {
        "type": "signal",
        "signal": "order.placed",
        "where": [{"property": "total", "op": "gte", "value": 100}],
    },
}


def client(chorus: ChorusProcess, key: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key or chorus.admin_key}"}  # type: ignore[attr-defined]
    return httpx.Client(base_url=chorus.base_url, headers=headers, timeout=30)


def order(event_id: str, email: str, total: int) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": "order.placed",
        "occurred_at": "2026-11-02T10:00:00Z",
        "identities": [{"type": "email", "value": email}],
        "properties": {"total": total},
    }


def firings(http: httpx.Client, key: str, count: int) -> list[dict[str, Any]]:
    """The trigger's firings once there are `count` of them (within 5 s)."""
    deadline = time.monotonic() + 5
    while True:
        answer = http.get(f"/v1/triggers/{key}/firings")
        answer.raise_for_status()
        found: list[dict[str, Any]] = answer.json()["items"]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


class TestTriggers:
    def test_a_matching_signal_fires_the_trigger_once(self, chorus: ChorusProcess) -> None:
        key, ana, o1 = unique("big-orders"), f"{unique('ana')}@example.org", unique("o1")
        with client(chorus) as http:
            created = http.put(f"/v1/triggers/{key}", json=BIG_ORDERS)
            assert created.status_code == 201, created.text
            assert created.json()["version"] == 1
            assert created.headers["location"] == f"/v1/triggers/{key}"
            batch = [order(o1, ana, 150), order(unique("o2"), ana, 20)]
            http.post("/v1/events?wait=attributed", json={"signals": batch}).raise_for_status()
            http.post("/v1/events?wait=attributed", json={"signals": batch[:1]}).raise_for_status()
            (fired,) = firings(http, key, 1)
            assert (fired["source_kind"], fired["signal_type"]) == ("signal", "order.placed")
            assert (fired["signal_event_id"], fired["trigger_version"]) == (o1, 1)
            customer = http.get("/v1/customers", params={"identity": f"email:{ana}"})
            assert fired["customer_id"] == customer.json()["id"]
            time.sleep(0.3)
            assert len(firings(http, key, 2)) == 1

    def test_definitions_are_versioned_listed_and_deleted(self, alone: ChorusProcess) -> None:
        with client(alone) as http:  # it lists every trigger: a service of its own
            posted = http.post("/v1/triggers", json={"key": "big-orders", **BIG_ORDERS})
            assert posted.status_code == 201, posted.text
            again = http.post("/v1/triggers", json={"key": "big-orders", **BIG_ORDERS})
            assert (again.status_code, again.json()["version"]) == (200, 1)
            other = {**BIG_ORDERS, "on": {"type": "segment_entered", "segment": "vip"}}
            clash = http.post("/v1/triggers", json={"key": "big-orders", **other})
            assert clash.status_code == 409
            assert clash.json()["type"].endswith("/trigger-exists")
            changed = http.put("/v1/triggers/big-orders", json=other)
            assert (changed.status_code, changed.json()["version"]) == (200, 2)
            got = http.get("/v1/triggers/big-orders").json()
            assert (got["version"], got["on"]) == (2, other["on"])
            listed = http.get("/v1/triggers").json()["items"]
            assert [t["key"] for t in listed] == ["big-orders"]
            assert http.delete("/v1/triggers/big-orders").status_code == 204
            assert http.get("/v1/triggers/big-orders").status_code == 404
            gone = http.get("/v1/triggers/big-orders/firings")
            assert gone.status_code == 404
            assert gone.headers["content-type"].startswith("application/problem+json")
            assert http.delete("/v1/triggers/big-orders").status_code == 404

    def test_a_bad_where_op_is_a_problem_naming_the_field(self, chorus: ChorusProcess) -> None:
        bad = {
            **BIG_ORDERS,
            "on": {**BIG_ORDERS["on"], "where": [{"property": "total", "op": "about", "value": 1}]},
        }
        key = unique("big-orders")
        with client(chorus) as http:
            answer = http.put(f"/v1/triggers/{key}", json=bad)
            assert answer.status_code == 422
            assert answer.headers["content-type"].startswith("application/problem+json")
            body = answer.json()
            assert body["type"].endswith("/invalid-trigger")
            (error,) = body["errors"]
            assert error["field"] == "$.on.where[0].op"
            assert "'about' is not one of" in error["reason"]
            assert http.get(f"/v1/triggers/{key}").status_code == 404

    def test_readers_read_and_only_marketers_write(self, chorus: ChorusProcess) -> None:
        key = unique("big-orders")
        auditor = chorus.key("auditor")
        with client(chorus, auditor) as http:
            assert http.put(f"/v1/triggers/{key}", json=BIG_ORDERS).status_code == 403
            assert http.get("/v1/triggers").status_code == 200
        marketer = chorus.key("marketer")
        with client(chorus, marketer) as http:
            assert http.put(f"/v1/triggers/{key}", json=BIG_ORDERS).status_code == 201
            bad_cursor = http.get(f"/v1/triggers/{key}/firings", params={"after": "x"})
            assert bad_cursor.status_code == 400
            assert bad_cursor.json()["errors"][0]["field"] == "query.after"
