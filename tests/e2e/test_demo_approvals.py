"""The demo's held refund answer, as the README tour shows it with the manual clock: it waits
in /v1/approvals, and approved it is delivered by the demo's fake email provider and is
Bruno's message in Maria's thread; her context lists her messages as classified."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.e2e.demo import DemoProcess

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoProcess]:
    started = DemoProcess(tmp_path_factory.mktemp("demo-approvals") / "demo.log")
    started.env["CHORUS_CLOCK"] = "manual"
    try:
        started.start()
        yield started
    finally:
        started.stop()


def message(http: httpx.Client, message_id: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        view: dict[str, Any] = http.get(f"/v1/messages/{message_id}").json()
        if view.get("status") == status or time.monotonic() > deadline:
            return view
        time.sleep(0.2)


class TestTheDemosRefundAnswer:
    def test_it_waits_for_approval_and_once_approved_is_delivered(self, demo: DemoProcess) -> None:
        headers = {"Authorization": f"Bearer {demo.admin_key}"}
        with httpx.Client(base_url=demo.base_url, headers=headers, timeout=30) as http:
            pending = http.get("/v1/approvals?status=pending").json()["items"]
            (refund,) = pending
            # As on the tour: Maria's messages are threaded before anyone approves the answer.
            context_of(http, refund["customer_id"])
            approved = http.post(f"/v1/approvals/{refund['id']}/approve", json={})
            view = message(http, refund["message_id"], "delivered")
        assert (refund["rule_id"], refund["team"], refund["channel"]) == (
            "approval.refund",
            "billing",
            "email",
        )
        assert approved.json()["outcome"] == "send"
        assert view["status"] == "delivered", view
        assert view["approvals"][0]["status"] == "approved"


def context_of(http: httpx.Client, customer_id: str) -> dict[str, Any]:
    """Maria's context once both her messages are classified (the pipeline is a moment behind)."""
    deadline = time.monotonic() + 30
    while True:
        body: dict[str, Any] = http.get(f"/v1/customers/{customer_id}/context").json()
        if len(body.get("classified", ())) >= 2 or time.monotonic() > deadline:
            return body
        time.sleep(0.2)


class TestTheDemosClassifiedMessages:
    def test_marias_messages_are_classified_on_her_and_the_approved_answer_is_in_her_thread(
        self, demo: DemoProcess
    ) -> None:
        headers = {"Authorization": f"Bearer {demo.admin_key}"}
        with httpx.Client(base_url=demo.base_url, headers=headers, timeout=30) as http:
            (refund,) = http.get("/v1/approvals?rule=approval.refund").json()["items"]
            context = context_of(http, refund["customer_id"])
            (conversation,) = context["conversations"]
            if refund["status"] == "pending":
                http.post(f"/v1/approvals/{refund['id']}/approve", json={}).raise_for_status()
            thread = http.get(f"/v1/conversations/{conversation['conversation_id']}").json()
        classified = context["classified"]
        assert [c["channel"] for c in classified] == ["whatsapp", "email"]
        # by the intent model, the default: both her messages are about the double charge
        assert [c["intent"] for c in classified] == ["transaction_charged_twice"] * 2
        assert {"sentiment", "urgency", "confidence", "received_at"} <= classified[0].keys()
        assert "text" not in classified[0]
        assert conversation["intent"] == "transaction_charged_twice"
        assert refund["origin"] == f"conversation:{conversation['conversation_id']}:bruno.costa"
        (answer,) = [m for m in thread["thread"] if m["direction"] == "outbound"]
        assert (answer["id"], answer["author"]) == (refund["message_id"], "bruno.costa")
        assert "refunded the second payment for M-7" in answer["text"]
