"""A refund answer the rules hold: it waits in /v1/approvals, an operator approves it, the
fake provider delivers it, and the approval is in the message's audit."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.e2e.conftest import _delete_streams
from tests.e2e.service import ChorusProcess
from tests.e2e.test_delivery_api import Fakes, a_customer, client, send, until_status

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

pytestmark = pytest.mark.e2e

RULES = {
    "approvals": [
        {
            "id": "approval.refund",
            "intents": ["request_refund", "Refund_not_showing_up"],
            "min_confidence": 0.7,
            "expires_after": "4h",
        }
    ]
}
REFUND_REPLY = {
    "channels": ["email"],
    "purpose": "service",
    "team": "support",
    "intent": "request_refund",
    "intent_confidence": 0.93,
    "content": {"subject": "Your refund", "body": "Hi {{ customer.first_name }}, 80 EUR back."},
}


@pytest.fixture
async def delivering(
    database_url: str, nats_url: str, tmp_path: Path
) -> AsyncIterator[ChorusProcess]:
    chorus = ChorusProcess(
        database_url, nats_url, f"E2E_{uuid.uuid4().hex[:8].upper()}", tmp_path / "chorus.log"
    )
    fakes = Fakes(chorus.base_url)
    fakes.start()
    chorus.env["CHORUS_PROVIDERS"] = fakes.providers()
    chorus.admin_key = chorus.chorus("keys", "create", "--role", "admin")  # type: ignore[attr-defined]
    chorus.start()
    try:
        yield chorus
    finally:
        chorus.stop()
        fakes.stop()
        await _delete_streams(chorus)


class TestApprovingARefund:
    def test_a_held_refund_is_sent_once_approved_and_the_approval_is_in_its_audit(
        self, delivering: ChorusProcess
    ) -> None:
        with client(delivering) as http:
            http.put("/v1/rules", json=RULES).raise_for_status()
            customer_id = a_customer(http).id
            held = send(http, customer_id, **REFUND_REPLY)
            assert held.status_code == 200, held.text
            assert held.json()["outcome"] == "hold"
            message_id, approval_id = held.json()["message_id"], held.json()["decision_id"]
            assert until_status(http, message_id, "held")["status"] == "held"

            pending = http.get("/v1/approvals", params={"status": "pending"}).json()
            assert [a["id"] for a in pending["items"]] == [approval_id]
            assert pending["items"][0]["rule_id"] == "approval.refund"

            approve = f"/v1/approvals/{approval_id}/approve"
            first = http.post(
                approve, json={"note": "policy 4.2"}, headers={"Idempotency-Key": "a1"}
            )
            again = http.post(
                approve, json={"note": "policy 4.2"}, headers={"Idempotency-Key": "a1"}
            )
            late = http.post(f"/v1/approvals/{approval_id}/reject", json={})
            view = until_status(http, message_id, "delivered")
            listed = http.get("/v1/approvals", params={"status": "pending"}).json()
            story = http.get(f"/v1/audit/messages/{message_id}").json()

        assert first.status_code == 200, first.text
        assert (first.json()["status"], first.json()["outcome"]) == ("approved", "send")
        assert again.headers["Chorus-Repeated"] == "true"
        assert again.json() == first.json()
        assert late.status_code == 409
        assert late.json()["type"].endswith("approval-settled")
        assert listed["items"] == []

        assert view["status"] == "delivered", view
        assert view["provider"] == "email"
        assert [d["outcome"] for d in view["decisions"]] == ["hold", "send"]
        (approval,) = view["approvals"]
        assert approval["status"] == "approved"
        assert "admin key" in approval["settled_by"]
        assert approval["note"] == "policy 4.2"
        assert approval["decision_id"] == view["decisions"][1]["decision_id"]
        (granted,) = [r for r in view["decisions"][1]["fired"] if r["rule_id"] == "approval.refund"]
        assert granted["effect"] == "allowed"
        assert approval["settled_by"] in granted["reason"]
        assert [d["outcome"] for d in story["decisions"]] == ["hold", "send"]
        assert [(a["verdict"], a["note"]) for a in story["approvals"]] == [
            ("approved", "policy 4.2")
        ]


class TestWhoSettlesWhat:
    def test_agents_edit_service_answers_marketers_may_not_and_a_hold_left_alone_expires(
        self, delivering: ChorusProcess
    ) -> None:
        with client(delivering) as http:
            http.put("/v1/rules", json=RULES).raise_for_status()
            customer_id = a_customer(http).id
            held = send(http, customer_id, **REFUND_REPLY).json()
            first = held["decision_id"]
            second = send(http, customer_id, **REFUND_REPLY, dedup_key="refund-2").json()
            http.post("/v1/agents", json={"key": "ana", "name": "Ana"}).raise_for_status()
            agent = http.post("/v1/keys", json={"name": "ana", "role": "agent", "agent": "ana"})
            marketer = http.post("/v1/keys", json={"name": "mo", "role": "marketer"})
            as_agent = {"Authorization": f"Bearer {agent.json()['secret']}"}
            as_marketer = {"Authorization": f"Bearer {marketer.json()['secret']}"}
            refused = http.post(f"/v1/approvals/{first}/reject", json={}, headers=as_marketer)
            edit = {"content": {"subject": "Your refund", "body": "We refund you 60 EUR."}}
            edited = http.post(f"/v1/approvals/{first}/edit", json=edit, headers=as_agent)
            http.post("/v1/admin/clock", json={"advance_seconds": 4 * 3600}).raise_for_status()
            expired = until_settled(http, second["decision_id"])
            view = until_status(http, second["message_id"], "suppressed")
            read_edited = http.get(f"/v1/approvals/{first}").json()
            listed = http.get("/v1/approvals", params={"status": "expired"}).json()
            story = http.get(f"/v1/audit/messages/{held['message_id']}").json()
            expired_story = http.get(f"/v1/audit/messages/{second['message_id']}").json()

        assert refused.status_code == 403, refused.text
        assert edited.status_code == 200, edited.text
        assert (edited.json()["status"], edited.json()["outcome"]) == ("edited", "send")
        assert "agent key" in edited.json()["settled_by"]
        assert (expired["status"], expired["settled_by"]) == ("expired", "scheduler")
        assert [d["outcome"] for d in view["decisions"]] == ["hold", "suppress"]
        (why,) = view["decisions"][1]["fired"]
        assert (why["rule_id"], why["effect"]) == ("approval.refund", "suppressed")
        # Read later, a verdict still names the outcome of the decision it led to.
        assert (read_edited["status"], read_edited["outcome"]) == ("edited", "send")
        assert expired["outcome"] == "suppress"
        assert [(a["status"], a["outcome"]) for a in listed["items"]] == [("expired", "suppress")]
        (edit,) = story["approvals"]
        assert edit["edited"]["before"]["contents"]["email"]["body"] == "Hi Ana, 80 EUR back."
        assert edit["edited"]["after"]["contents"]["email"]["body"] == "We refund you 60 EUR."
        assert edit["edited"]["changed"] == ["email.body"]
        assert (edit["outcome"], edit["decision_id"]) == (
            "send",
            story["decisions"][-1]["decision_id"],
        )
        (expiry,) = expired_story["approvals"]
        assert (expiry["verdict"], expiry["outcome"]) == ("expired", "suppress")


def until_settled(http: httpx.Client, approval_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        found: dict[str, Any] = http.get(f"/v1/approvals/{approval_id}").json()
        if found["status"] != "pending" or time.monotonic() > deadline:
            return found
        time.sleep(0.1)
