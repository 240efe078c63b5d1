"""A campaign's history and an enrollment's journal over HTTP, and campaign writes answered once
per Idempotency-Key."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import pytest

from tests.e2e.test_campaigns_api import CAMPAIGN, WELCOME, client
from tests.e2e.test_enrollments_api import BY_API, customer
from tests.e2e.test_segments_api import wait_for

if TYPE_CHECKING:
    import httpx

    from tests.e2e.service import ChorusProcess

pytestmark = pytest.mark.e2e

KEY = "vip-welcome"


@pytest.fixture(scope="module")
def chorus(shared_chorus: ChorusProcess) -> ChorusProcess:
    """The module's tests share one service: each names its own campaigns and customers."""
    return shared_chorus


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def journal(http: httpx.Client, enrollment: str) -> dict[str, Any]:
    answer = http.get(f"/v1/campaigns/{KEY}/enrollments/{enrollment}")
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


class TestEnrollmentJournal:
    def test_every_step_is_listed_with_its_kind_and_reason_and_a_send_links_its_decision(
        self, alone: ChorusProcess
    ) -> None:
        chorus = alone  # it moves the clock: a service of its own
        marketer = chorus.key("marketer")
        auditor = chorus.key("auditor")
        with client(chorus) as admin, client(chorus, marketer) as http:
            http.put("/v1/templates/welcome", json=WELCOME).raise_for_status()
            http.post("/v1/campaigns", json=BY_API).raise_for_status()
            http.post(f"/v1/campaigns/{KEY}/activate").raise_for_status()
            ana = customer(http, "ana@example.org")
            made = http.post(f"/v1/campaigns/{KEY}/enrollments", json={"customer_id": ana})
            assert made.status_code == 201, made.text
            enrollment = made.json()["id"]
            assert made.headers["location"] == f"/v1/campaigns/{KEY}/enrollments/{enrollment}"

            def held() -> dict[str, Any] | None:
                found = journal(http, enrollment)
                return found if found["waiting"] else None

            waiting = wait_for(held)
            assert waiting, journal(http, enrollment)
            assert waiting["waiting"]["kind"] == "time"
            assert waiting["waiting"]["step"] == "a-day-later"
            admin.post("/v1/admin/clock", json={"advance_seconds": 86_400 + 60}).raise_for_status()

            def ended() -> dict[str, Any] | None:
                found = journal(http, enrollment)
                return found if found["status"] != "active" else None

            done = wait_for(ended, timeout=20)
            assert done, journal(http, enrollment)

        with client(chorus, auditor) as http:
            read = journal(http, enrollment)
            events = [(e["event"], e["step"], e["kind"]) for e in read["steps"]]
            assert events[:4] == [
                ("entered", None, None),
                ("step_taken", "a-day-later", "wait"),
                ("waiting", "a-day-later", "wait"),
                ("step_taken", "thanks", "send"),
            ]
            assert all(e["reason"] for e in read["steps"] if e["event"] != "send_requested")
            (send,) = [e for e in read["steps"] if e["event"] == "send_requested"]
            assert send["details"]["template"] == "welcome"
            assert send["links"]["decision"] == f"/v1/decisions/{send['decision_id']}"
            assert send["links"]["message"] == f"/v1/messages/{send['message_id']}"
            decision = http.get(send["links"]["decision"])
            assert decision.status_code == 200, decision.text
            # The send's response (its delivery) may be recorded before or after the exit.
            steps = [e["event"] for e in read["steps"] if e["event"] != "responded"]
            assert steps[-1] == "exited"
            assert (read["status"], read["waiting"]) == ("exited", None)

            elsewhere = http.get(f"/v1/campaigns/unknown/enrollments/{enrollment}")
            assert elsewhere.status_code == 404
            none = http.get(f"/v1/campaigns/{KEY}/enrollments/{ana}")
            assert none.status_code == 404


class TestCampaignHistory:
    def test_every_change_says_who_made_it_when_and_why(self, chorus: ChorusProcess) -> None:
        marketer = chorus.key("marketer")
        campaign = {**CAMPAIGN, "key": unique("order-follow-up")}
        with client(chorus, marketer) as http:
            http.put("/v1/templates/welcome", json=WELCOME).raise_for_status()
            base = f"/v1/campaigns/{campaign['key']}"
            http.post("/v1/campaigns", json=campaign).raise_for_status()
            http.post(f"{base}/activate").raise_for_status()
            paused = http.post(f"{base}/pause", json={"reason": "the coupon ran out"})
            assert (paused.status_code, paused.json()["status"]) == (200, "paused")
            http.post(f"{base}/resume").raise_for_status()
            http.post(f"{base}/pause").raise_for_status()
            http.post(f"{base}/archive", json={"reason": "season over"}).raise_for_status()
            history = http.get(f"{base}/history")
            assert history.status_code == 200, history.text
            assert history.json()["next_cursor"] is None
            changes = history.json()["items"]

        assert [(c["change"], c["status"], c["reason"]) for c in changes] == [
            ("created", "draft", None),
            ("activated", "active", None),
            ("paused", "paused", "the coupon ran out"),
            ("resumed", "active", None),
            ("paused", "paused", None),
            ("archived", "archived", "season over"),
        ]
        assert all("marketer key" in c["by"] for c in changes)
        assert changes == sorted(changes, key=lambda c: c["at"])


class TestIdempotencyKeys:
    def test_a_retried_write_is_answered_as_first_and_a_reused_key_is_refused(
        self, chorus: ChorusProcess
    ) -> None:
        marketer = chorus.key("marketer")
        campaign = {**CAMPAIGN, "key": unique("order-follow-up")}
        with client(chorus, marketer) as http:
            http.put("/v1/templates/welcome", json=WELCOME).raise_for_status()
            create = {"Idempotency-Key": "create-1"}
            first = http.post("/v1/campaigns", json=campaign, headers=create)
            assert (first.status_code, first.headers["chorus-repeated"]) == (201, "false")
            again = http.post("/v1/campaigns", json=campaign, headers=create)
            assert (again.status_code, again.headers["chorus-repeated"]) == (201, "true")
            assert again.json() == first.json()
            other = http.post("/v1/campaigns", json={**campaign, "key": "x"}, headers=create)
            assert other.status_code == 409
            assert other.json()["type"].endswith("/idempotency-key-reused")

            base = f"/v1/campaigns/{campaign['key']}"
            http.post(f"{base}/activate").raise_for_status()
            pause = {"Idempotency-Key": "pause-1"}
            assert http.post(f"{base}/pause", headers=pause).json()["status"] == "paused"
            http.post(f"{base}/resume").raise_for_status()
            # The retry of the pause is answered as it was, and pauses nothing again.
            retried = http.post(f"{base}/pause", headers=pause)
            assert (retried.json()["status"], retried.headers["chorus-repeated"]) == (
                "paused",
                "true",
            )
            assert http.get(base).json()["status"] == "active"
            reused = http.post(f"{base}/archive", json={"reason": "x"}, headers=pause)
            assert reused.status_code == 409

            too_long = http.post(f"{base}/resume", headers={"Idempotency-Key": "k" * 201})
            assert too_long.status_code == 400  # refused at the edge, as on every route
            assert too_long.json()["errors"][0]["field"] == "header.Idempotency-Key"

    def test_an_api_entry_retried_answers_the_first_entry_and_another_customer_is_refused(
        self, chorus: ChorusProcess
    ) -> None:
        marketer = chorus.key("marketer")
        key = unique(KEY)
        with client(chorus, marketer) as http:
            http.put("/v1/templates/welcome", json=WELCOME).raise_for_status()
            http.post("/v1/campaigns", json={**BY_API, "key": key}).raise_for_status()
            http.post(f"/v1/campaigns/{key}/activate").raise_for_status()
            ana = customer(http, f"{unique('ana')}@example.org")
            bo = customer(http, f"{unique('bo')}@example.org")
            path = f"/v1/campaigns/{key}/enrollments"
            entry = {"Idempotency-Key": "enter-1"}
            made = http.post(path, json={"customer_id": ana}, headers=entry)
            again = http.post(path, json={"customer_id": ana, "idempotency_key": "enter-1"})
            assert (again.status_code, again.json()) == (201, made.json())
            assert again.headers["chorus-repeated"] == "true"
            other = http.post(path, json={"customer_id": bo}, headers=entry)
            assert other.status_code == 409
            assert other.json()["type"].endswith("/idempotency-key-reused")
