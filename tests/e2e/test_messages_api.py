from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    from tests.e2e.service import ChorusProcess

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def chorus(shared_chorus: ChorusProcess) -> ChorusProcess:
    """The module's tests share one service: each makes its own customers and names."""
    return shared_chorus


def client(chorus: ChorusProcess) -> httpx.Client:
    headers = {"Authorization": f"Bearer {chorus.admin_key}"}  # type: ignore[attr-defined]
    return httpx.Client(base_url=chorus.base_url, headers=headers, timeout=30)


def customer(http: httpx.Client, phone: str, time_zone: str) -> str:
    body = {
        "identities": [{"type": "phone", "value": phone, "verification": "verified"}],
        "profile": {"time_zone": time_zone},
    }
    answer = http.put("/v1/customers", json=body)
    answer.raise_for_status()
    return str(answer.json()["customer"]["id"])


def send(http: httpx.Client, customer_id: str, **extra: Any) -> httpx.Response:
    body = {
        "customer_id": customer_id,
        "team": "care",
        "purpose": "service",
        "channels": ["sms"],
        **extra,
    }
    return http.post("/v1/messages", json=body)


class TestDecidingOverHttp:
    def test_quiet_hours_in_tokyo_and_new_york_on_the_same_request(
        self, chorus: ChorusProcess
    ) -> None:
        with client(chorus) as http:
            http.post("/v1/admin/clock", json={"set": "2026-11-27T14:00:00Z"}).raise_for_status()
            tokyo = customer(http, "+81 3-1234-5678", "Asia/Tokyo")
            new_york = customer(http, "+1 212 555 0100", "America/New_York")
            for who in (tokyo, new_york):
                http.post(
                    f"/v1/customers/{who}/consents",
                    json={
                        "changes": [
                            {
                                "channel": "sms",
                                "purpose": "service",
                                "granted": True,
                                "source": "app settings",
                            }
                        ]
                    },
                ).raise_for_status()
            in_tokyo = send(http, tokyo).json()
            in_new_york = send(http, new_york).json()
        assert in_tokyo["outcome"] == "defer"
        assert in_tokyo["defer_until"].startswith("2026-11-27T23:00:00")
        assert any(rule["rule_id"] == "quiet.night" for rule in in_tokyo["fired"])
        assert in_new_york["outcome"] == "send"

    def test_stop_is_honoured_and_explained(self, chorus: ChorusProcess) -> None:
        with client(chorus) as http:
            http.post("/v1/admin/clock", json={"set": "2026-11-27T12:00:00Z"}).raise_for_status()
            who = customer(http, "+44 7700 900123", "Europe/London")
            stop = {"changes": [{"channel": "sms", "granted": False, "source": "inbound STOP"}]}
            consents = http.post(f"/v1/customers/{who}/consents", json=stop).json()
            assert consents["changed"] == 1
            assert consents["customer"]["consents"] == [
                {
                    "channel": "sms",
                    "purpose": None,
                    "granted": False,
                    "source": "inbound STOP",
                    "at": consents["customer"]["consents"][0]["at"],
                }
            ]
            decided = send(http, who, purpose="transactional").json()
            assert decided["outcome"] == "suppress"
            explained = http.get(f"/v1/decisions/{decided['decision_id']}").json()
            assert explained == decided
            assert any("inbound STOP" in rule["reason"] for rule in explained["fired"])

    def test_a_retry_with_the_same_idempotency_key_gets_the_first_decision(
        self, chorus: ChorusProcess
    ) -> None:
        with client(chorus) as http:
            who = customer(http, "+44 7700 900456", "Europe/London")
            first = send(http, who, purpose="transactional", idempotency_key="otp-1")
            again = send(http, who, purpose="transactional", idempotency_key="otp-1")
        assert first.json()["decision_id"] == again.json()["decision_id"]
        assert again.headers["chorus-repeated"] == "true"

    def test_an_unknown_channel_is_refused_with_its_path(self, chorus: ChorusProcess) -> None:
        with client(chorus) as http:
            who = customer(http, "+44 7700 900789", "Europe/London")
            answer = send(http, who, channels=["pigeon"])
        assert answer.status_code == 400
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["errors"][0]["field"] == "$.channels[0]"


class TestInboundStop:
    def test_an_inbound_stop_signal_suppresses_the_next_sms_at_once(
        self, chorus: ChorusProcess
    ) -> None:
        with client(chorus) as http:
            who = customer(http, "+44 7700 900321", "Europe/London")
            http.post(
                f"/v1/customers/{who}/consents",
                json={
                    "changes": [
                        {"channel": "sms", "purpose": "service", "granted": True, "source": "app"}
                    ]
                },
            ).raise_for_status()
            stop = {
                "id": "sms-in-1",
                "type": "message.received",
                "occurred_at": "2026-11-27T12:00:00Z",
                "identities": [{"type": "phone", "value": "+44 7700 900321"}],
                "properties": {"channel": "sms", "text": "STOP"},
            }
            http.post("/v1/events?wait=attributed", json={"signals": [stop]}).raise_for_status()
            decided = send(http, who, purpose="transactional").json()
        assert decided["outcome"] == "suppress"
        assert any(rule["rule_id"] == "opt_out.sms" for rule in decided["fired"])


class TestSendsOverNats:
    async def test_a_send_request_over_nats_answers_with_the_recorded_decision(
        self, chorus: ChorusProcess
    ) -> None:
        import json

        import nats

        with client(chorus) as http:
            who = customer(http, "+44 7700 900654", "Europe/London")
        nc = await nats.connect(chorus.nats_url)
        try:
            body = {
                "customer_id": who,
                "team": "billing",
                "purpose": "transactional",
                "channels": ["sms"],
            }
            reply = await nc.request(
                f"{chorus.subject_prefix}.cmd.messages.send", json.dumps(body).encode(), timeout=10
            )
        finally:
            await nc.close()
        decided = json.loads(reply.data)
        assert reply.headers is not None
        assert reply.headers["Chorus-Status"] == "200"
        with client(chorus) as http:
            assert http.get(f"/v1/decisions/{decided['decision_id']}").json() == decided


class TestUnknownCustomers:
    def test_a_send_to_an_id_that_is_not_a_customer_is_a_404(self, chorus: ChorusProcess) -> None:
        with client(chorus) as http:
            signal = {
                "id": "not-a-customer",
                "type": "t",
                "occurred_at": "2026-11-27T10:00:00Z",
                "identities": [{"type": "email", "value": "nc@example.org"}],
            }
            signal_id = http.post("/v1/events?wait=attributed", json={"signals": [signal]}).json()[
                "results"
            ][0]["signal_id"]
            answer = send(http, signal_id)
        assert answer.status_code == 404


class TestSuppressionAndConsentSignals:
    def test_a_suppressed_channel_blocks_even_transactional_until_lifted(
        self, chorus: ChorusProcess
    ) -> None:
        with client(chorus) as http:
            who = customer(http, "+44 7700 900111", "Europe/London")
            body = {
                "customer_id": who,
                "team": "billing",
                "purpose": "transactional",
                "channels": ["sms"],
            }
            added = http.post(
                f"/v1/customers/{who}/suppressions",
                json={"channel": "sms", "reason": "carrier complaint"},
            )
            assert added.json()["customer"]["suppressions"] == {"sms": "carrier complaint"}
            blocked = http.post("/v1/messages", json=body).json()
            lifted = http.post(
                f"/v1/customers/{who}/suppressions",
                json={"channel": "sms", "reason": "resolved", "active": False},
            )
            assert lifted.json()["changed"] is True
            allowed = http.post("/v1/messages", json=body).json()
        assert blocked["outcome"] == "suppress"
        assert "carrier complaint" in blocked["fired"][0]["reason"]
        assert allowed["outcome"] == "send"

    def test_a_consent_signal_grants_marketing_with_its_proof(self, chorus: ChorusProcess) -> None:
        with client(chorus) as http:
            grant = {
                "id": "consent-1",
                "type": "consent.granted",
                "occurred_at": "2026-11-27T09:00:00Z",
                "source": "web",
                "identities": [{"type": "email", "value": "grant@example.org"}],
                "properties": {
                    "channel": "email",
                    "purpose": "marketing",
                    "proof": "double opt-in 4711",
                },
            }
            recorded = http.post("/v1/events?wait=attributed", json={"signals": [grant]}).json()
            who = recorded["results"][0]["customer_id"]
            body = {
                "customer_id": who,
                "team": "growth",
                "purpose": "marketing",
                "channels": ["email"],
            }
            decided = http.post("/v1/messages", json=body).json()
        assert decided["outcome"] == "send"
        assert "double opt-in 4711" in decided["fired"][0]["reason"]


class TestOneClickUnsubscribe:
    def test_a_marketing_email_carries_a_link_that_unsubscribes_in_one_post(
        self, chorus: ChorusProcess
    ) -> None:
        with client(chorus) as http:
            who = http.put(
                "/v1/customers", json={"identities": [{"type": "email", "value": "u1@example.org"}]}
            ).json()["customer"]["id"]
            http.post(
                f"/v1/customers/{who}/consents",
                json={
                    "changes": [
                        {
                            "channel": "email",
                            "purpose": "marketing",
                            "granted": True,
                            "source": "form",
                        }
                    ]
                },
            ).raise_for_status()
            body = {
                "customer_id": who,
                "team": "growth",
                "purpose": "marketing",
                "channels": ["email"],
            }
            first = http.post("/v1/messages", json=body).json()
            headers = first["list_unsubscribe"]
            assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            url = headers["List-Unsubscribe"].strip("<>")
            assert httpx.get(url).status_code == 200  # a scanner opening the link changes nothing
            assert http.post("/v1/messages", json=body).json()["outcome"] == "send"
            clicked = httpx.post(url, content=b"List-Unsubscribe=One-Click")  # no API key
            assert clicked.status_code == 200
            after = http.post("/v1/messages", json=body).json()
            forged = httpx.post(url[:-3] + "AAA")
        assert after["outcome"] == "suppress"
        assert any("List-Unsubscribe one-click" in r["reason"] for r in after["fired"])
        assert forged.status_code == 404


class TestTimesNeedOffsets:
    def test_an_expiry_without_an_offset_is_refused_with_its_field(
        self, chorus: ChorusProcess
    ) -> None:
        with client(chorus) as http:
            who = customer(http, "+44 7700 900999", "Europe/London")
            answer = send(http, who, expires_at="2026-12-01T00:00:00")
        assert answer.status_code == 400
        assert answer.json()["errors"][0]["field"] == "$.expires_at"
