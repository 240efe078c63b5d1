"""A segment of customers who complained twice this month, over HTTP: inbound messages are
classified in the pipeline by the intent model (the default), the customer enters, and leaves
when a complaint ages out."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    from tests.e2e.service import ChorusProcess

pytestmark = pytest.mark.e2e

COMPLAINED: dict[str, Any] = {
    "key": "complained-twice",
    "name": "Complained twice this month",
    "description": "Two angry refund requests in 30 days",
    "condition": {
        "type": "classified",
        "intent": "request_refund",
        "sentiment": "negative",
        "within": "30d",
        "op": "gte",
        "value": 2,
    },
}


def client(chorus: ChorusProcess) -> httpx.Client:
    headers = {"Authorization": f"Bearer {chorus.admin_key}"}  # type: ignore[attr-defined]
    return httpx.Client(base_url=chorus.base_url, headers=headers, timeout=30)


def inbound(n: int, at: str, text: str) -> dict[str, Any]:
    return {
        "id": f"smtp:complaint-{n}",
        "type": "message.received",
        "occurred_at": at,
        "identities": [{"type": "email", "value": "rui@example.org"}],
        "properties": {"channel": "email", "text": text},
    }


def wait_for(probe: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


class TestComplainedTwice:
    def test_the_second_angry_refund_request_enters_and_the_first_ageing_out_exits(
        self, chorus: ChorusProcess
    ) -> None:
        with client(chorus) as http:
            http.post("/v1/admin/clock", json={"set": "2030-01-20T12:00:00Z"}).raise_for_status()
            assert http.post("/v1/segments", json=COMPLAINED).status_code == 201

            def members() -> list[str]:
                page = http.get("/v1/segments/complained-twice/members").json()
                return [m["id"] for m in page["items"]]

            first = inbound(1, "2030-01-01T10:00:00Z", "I want a refund, this is awful")
            http.post("/v1/events?wait=attributed", json={"signals": [first]}).raise_for_status()
            rui = http.get("/v1/customers", params={"identity": "email:rui@example.org"}).json()
            context = wait_for(
                lambda: http.get(f"/v1/customers/{rui['id']}/context").json()["classified"]
            )
            assert [(c["intent"], c["sentiment"]) for c in context] == [
                ("request_refund", "negative")
            ]
            assert members() == []

            second = inbound(
                2,
                "2030-01-19T10:00:00Z",
                "Still no refund. I want my money back, this is horrible!",
            )
            http.post("/v1/events?wait=attributed", json={"signals": [second]}).raise_for_status()
            assert wait_for(lambda: members() == [rui["id"]])

            # 30 days after the first request, one is left in the window: Rui leaves.
            http.post("/v1/admin/clock", json={"set": "2030-01-31T10:00:01Z"}).raise_for_status()
            assert wait_for(lambda: members() == [])

    def test_a_bad_sentiment_is_a_problem_naming_its_field(self, chorus: ChorusProcess) -> None:
        document = {**COMPLAINED, "condition": {**COMPLAINED["condition"], "sentiment": "mad"}}
        with client(chorus) as http:
            answer = http.post("/v1/segments", json=document)
        assert answer.status_code == 422
        assert answer.json()["errors"][0]["field"] == "$.condition.sentiment"
