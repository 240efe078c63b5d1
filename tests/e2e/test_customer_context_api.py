"""GET /v1/customers/{id}/context over HTTP: a summary of the customer from the read models,
answered for the survivor of a merge, a problem for an unknown customer."""

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
    """The module's tests share one service: each sends its own signals, with identities and
    event ids no other test of the module uses."""
    return shared_chorus


def signal(event_id: str, kind: str, *identities: tuple[str, str]) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": kind,
        "occurred_at": f"2026-11-02T10:0{event_id[-1]}:00Z",
        "identities": [{"type": t, "value": v} for t, v in identities],
    }


def client(chorus: ChorusProcess, key: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key or chorus.admin_key}"}  # type: ignore[attr-defined]
    return httpx.Client(base_url=chorus.base_url, headers=headers, timeout=30)


def context_with(http: httpx.Client, customer_id: str, signals: int) -> dict[str, Any]:
    """The context once the read models hold that many signals: they are a moment behind."""
    deadline = time.monotonic() + 20
    while True:
        answer = http.get(f"/v1/customers/{customer_id}/context")
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        if len(body["last_signals"]) >= signals or time.monotonic() > deadline:
            return body
        time.sleep(0.1)


class TestCustomerContextApi:
    def test_an_unknown_customer_is_a_404_problem(self, chorus: ChorusProcess) -> None:
        with client(chorus) as http:
            answer = http.get(f"/v1/customers/{uuid.uuid4()}/context")
        assert answer.status_code == 404
        assert answer.headers["content-type"].startswith("application/problem+json")

    def test_a_merged_customer_answers_for_the_survivor_and_says_so(
        self, chorus: ChorusProcess
    ) -> None:
        ana, phone = ("email", "ana@example.org"), ("phone", "+442079460958")
        with client(chorus) as http:
            first = http.post(
                "/v1/events?wait=attributed",
                json={"signals": [signal("s-1", "order.placed", ana)]},
            )
            second = http.post(
                "/v1/events?wait=attributed",
                json={"signals": [signal("s-2", "page.viewed", phone)]},
            )
            link = signal("s-3", "purchase", ana, phone)
            http.post("/v1/events?wait=attributed", json={"signals": [link]}).raise_for_status()
            survivor = first.json()["results"][0]["customer_id"]
            merged = second.json()["results"][0]["customer_id"]
            body = context_with(http, merged, 3)
            auditor = chorus.key("auditor")
            with client(chorus, auditor) as reader:
                assert reader.get(f"/v1/customers/{survivor}/context").status_code == 200
        assert (body["customer_id"], body["merged_into"]) == (survivor, survivor)
        assert [s["signal_type"] for s in body["last_signals"]] == [
            "purchase",
            "page.viewed",
            "order.placed",
        ]
        assert [o["signal_type"] for o in body["last_orders"]] == ["purchase", "order.placed"]
        assert {i["type"] for i in body["identities"]} == {"email", "phone"}
        assert body["decisions"] == []
        assert body["open_conversations"] == 0
        assert set(body) >= {"tier", "attributes", "segments", "suppressions", "in_campaigns"}

    def test_a_message_whose_text_is_no_text_is_threaded_and_says_why_it_is_unknown(
        self, chorus: ChorusProcess
    ) -> None:
        message = {
            **signal("n-1", "message.received", ("phone", "+442079460959")),
            "properties": {"channel": "whatsapp", "text": ["I", "want", "refund"]},
        }
        with client(chorus) as http:
            answer = http.post("/v1/events?wait=attributed", json={"signals": [message]})
            assert answer.status_code == 200, answer.text
            customer_id = answer.json()["results"][0]["customer_id"]
            deadline = time.monotonic() + 20
            body = context_with(http, customer_id, 1)
            while (
                not (body["classified"] and body["conversations"]) and time.monotonic() < deadline
            ):
                time.sleep(0.1)
                body = context_with(http, customer_id, 1)
            conversations = body["conversations"]
            thread = http.get(f"/v1/conversations/{conversations[0]['conversation_id']}")
            not_a_uuid = http.get("/v1/customers/not-a-uuid/context")
        (classified,) = body["classified"]
        assert (classified["intent"], classified["unknown_reason"]) == ("unknown", "not_text")
        assert thread.status_code == 200, thread.text
        classification = thread.json()["classification"]
        assert (classification["intent"], classification["unknown_reason"]) == (None, "not_text")
        assert not_a_uuid.status_code == 400
        assert not_a_uuid.json()["errors"][0]["field"] == "path.customer_id"
