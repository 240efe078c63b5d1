"""Delivery end to end: a running service, fake providers that call back, and the HTTP API."""

from __future__ import annotations

import itertools
import json
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from adapters.providers.fakes.email_api_server import FakeEmailApi
from adapters.providers.fakes.twilio_server import FakeTwilio
from adapters.providers.fakes.webhooks import StatusCallbacks
from tests.e2e.conftest import _delete_streams, create_admin_key
from tests.e2e.service import ChorusProcess

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from tests.servers import TestDatabases

pytestmark = pytest.mark.e2e

# Each test's customer has a phone of its own in the range kept for drama (07700 900xxx).
_PHONES = itertools.count(100)


class Fakes:
    """Two SMS providers (primary, backup) and an email API, all reporting `delivered`."""

    def __init__(self, chorus_url: str) -> None:
        def calling_back(name: str) -> StatusCallbacks:
            return StatusCallbacks(url=f"{chorus_url}/v1/webhooks/{name}", status="delivered")

        self.sms = FakeTwilio(auth_token="primary-token", callbacks=calling_back("sms-primary"))
        self.backup = FakeTwilio(auth_token="backup-token", callbacks=calling_back("sms-backup"))
        self.email = FakeEmailApi(callbacks=calling_back("email"))

    def start(self) -> None:
        for fake in (self.sms, self.backup, self.email):
            fake.start()

    def stop(self) -> None:
        for fake in (self.sms, self.backup, self.email):
            fake.stop()

    def providers(self) -> str:
        def twilio(name: str, fake: FakeTwilio, priority: int) -> dict[str, Any]:
            return {
                "name": name,
                "type": "twilio",
                "priority": priority,
                "base_url": fake.base_url,
                "account_sid": fake.account_sid,
                "auth_token": fake.auth_token,
                "from_number": "+15005550006",
                "breaker": {"failure_threshold": 3, "reset_seconds": 30},
            }

        return json.dumps(
            [
                twilio("sms-primary", self.sms, 10),
                twilio("sms-backup", self.backup, 20),
                {
                    "name": "email",
                    "type": "email_api",
                    "base_url": self.email.base_url,
                    "api_key": self.email.api_key,
                    "webhook_secret": self.email.webhook_secret,
                    "sender": "orders@shop.example",
                    "price": {"amount": "0.001", "currency": "USD"},
                },
            ]
        )


@pytest.fixture(scope="module")
async def shared_service(
    databases: TestDatabases, nats_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[ChorusProcess, Fakes]]:
    """One service and its fake providers for the module: each test makes customers of its
    own (`a_customer`) and finds what the fakes received by their addresses."""
    database_url = await databases.create()
    log_path = tmp_path_factory.mktemp("chorus") / "chorus.log"
    chorus = ChorusProcess(database_url, nats_url, f"E2E_{uuid.uuid4().hex[:8].upper()}", log_path)
    fakes = Fakes(chorus.base_url)
    fakes.start()
    chorus.env["CHORUS_PROVIDERS"] = fakes.providers()
    chorus.admin_key = await create_admin_key(database_url)  # type: ignore[attr-defined]
    chorus.start()
    try:
        yield chorus, fakes
    finally:
        chorus.stop()
        fakes.stop()
        await _delete_streams(chorus)
    await databases.drop(database_url)


@pytest.fixture
def service(shared_service: tuple[ChorusProcess, Fakes]) -> Iterator[tuple[ChorusProcess, Fakes]]:
    """The module's service; the fakes' knobs (failures, what they report) are put back as
    configured after each test."""
    yield shared_service
    _, fakes = shared_service
    for fake in (fakes.sms, fakes.backup, fakes.email):
        fake.reset()


def client(chorus: ChorusProcess) -> httpx.Client:
    key = chorus.admin_key  # type: ignore[attr-defined]
    return httpx.Client(
        base_url=chorus.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=10
    )


@dataclass(frozen=True)
class Customer:
    id: str
    email: str
    phone: str


def a_customer(http: httpx.Client) -> Customer:
    """Ana, with an email and a phone no other test's customer has."""
    email = f"ana.{uuid.uuid4().hex[:12]}@example.org"
    phone = f"+447700900{next(_PHONES):03d}"
    answer = http.put(
        "/v1/customers",
        json={
            "identities": [
                {"type": "email", "value": email, "verification": "verified"},
                {"type": "phone", "value": phone, "verification": "verified"},
            ],
            "profile": {"first_name": "Ana", "locale": "pt-PT"},
        },
    )
    assert answer.status_code in (200, 201), answer.text
    return Customer(str(answer.json()["customer"]["id"]), email, phone)


def publish_template(http: httpx.Client) -> str:
    """Publishes a template of the test's own, `order-shipped-...`, and answers its name."""
    name = f"order-shipped-{uuid.uuid4().hex[:8]}"
    answer = http.put(
        f"/v1/templates/{name}",
        json={
            "default_locale": "en",
            "variants": [
                {
                    "channel": "email",
                    "locale": "en",
                    "subject": "Order {{ vars.order_id }} shipped",
                    "body": "Hi {{ customer.first_name }}",
                },
                {
                    "channel": "email",
                    "locale": "pt",
                    "subject": "Encomenda {{ vars.order_id }} enviada",
                    "body": "Olá {{ customer.first_name }}",
                },
            ],
        },
    )
    assert answer.status_code in (200, 201), answer.text
    return name


def until_status(http: httpx.Client, message_id: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        view: dict[str, Any] = http.get(f"/v1/messages/{message_id}").json()
        if view.get("status") == status or time.monotonic() > deadline:
            return view
        time.sleep(0.1)


def send(http: httpx.Client, customer_id: str, **fields: Any) -> httpx.Response:
    body = {"customer_id": customer_id, "team": "orders", "purpose": "transactional", **fields}
    return http.post("/v1/messages", json=body)


class TestSendingThroughProviders:
    def test_a_templated_email_is_rendered_sent_once_and_ends_delivered(
        self, service: tuple[ChorusProcess, Fakes]
    ) -> None:
        chorus, fakes = service
        with client(chorus) as http:
            ana = a_customer(http)
            template = publish_template(http)
            answer = send(
                http,
                ana.id,
                channels=["email"],
                template=template,
                variables={"order_id": "A-7"},
            )
            assert answer.status_code == 200, answer.text
            message_id = answer.json()["message_id"]

            view = until_status(http, message_id, "delivered")

        assert view["status"] == "delivered", view
        assert view["provider"] == "email"
        assert view["template"] == template
        assert view["content"]["subject"] == "Encomenda A-7 enviada"  # the customer's locale
        assert [s["status"] for s in view["statuses"]] == ["queued", "delivered"]
        assert view["attempts"][0]["accepted"] is True
        assert view["decisions"][0]["outcome"] == "send"
        assert (view["cost"], view["currency"]) == ("0.0008", "USD")  # the receipt's price
        assert len([e for e in fakes.email.received if e.to == ana.email]) == 1

    def test_a_missing_variable_is_refused_when_the_send_is_requested(
        self, service: tuple[ChorusProcess, Fakes]
    ) -> None:
        chorus, _ = service
        with client(chorus) as http:
            ana = a_customer(http)
            template = publish_template(http)
            answer = send(http, ana.id, channels=["email"], template=template)
        assert answer.status_code == 422
        problem = answer.json()
        assert problem["type"] == "https://chorus.dev/problems/render-error"
        assert problem["errors"][0]["variable"] == "vars.order_id"

    def test_content_over_the_render_budget_is_refused_naming_the_budget_and_nothing_is_sent(
        self, service: tuple[ChorusProcess, Fakes]
    ) -> None:
        chorus, fakes = service
        runaway = "{% set s = 'x' * 4000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}"
        with client(chorus) as http:
            ana = a_customer(http)
            answer = send(http, ana.id, channels=["sms"], content={"body": runaway})
        assert answer.status_code == 422, answer.text
        problem = answer.json()
        assert problem["type"] == "https://chorus.dev/problems/render-error"
        assert problem["errors"][0]["field"] == "$.content"
        assert problem["errors"][0]["budget"] in ("operations", "seconds")
        assert "limit" in problem["errors"][0]
        assert [form for form in fakes.sms.received if form["To"] == ana.phone] == []

    def test_content_a_channel_cannot_send_is_refused_when_the_send_is_requested(
        self, service: tuple[ChorusProcess, Fakes]
    ) -> None:
        chorus, _ = service
        with client(chorus) as http:
            ana = a_customer(http)
            no_body = send(http, ana.id, channels=["sms"], content={"title": "x"})
            both = send(
                http, ana.id, channels=["sms"], template="order-shipped", content={"body": "b"}
            )
        assert no_body.status_code == 422
        assert no_body.json()["errors"][0]["field"] == "$.content.body"
        assert both.status_code == 400
        assert "not both" in both.text

    def test_a_failing_primary_fails_over_to_the_backup(
        self, service: tuple[ChorusProcess, Fakes]
    ) -> None:
        chorus, fakes = service
        fakes.sms.fail_next(1, status=503)
        with client(chorus) as http:
            ana = a_customer(http)
            answer = send(http, ana.id, channels=["sms"], content={"body": "Code 1234"})
            message_id = answer.json()["message_id"]
            view = until_status(http, message_id, "delivered")
        assert view["status"] == "delivered", view
        assert [(a["provider"], a["accepted"]) for a in view["attempts"]] == [
            ("sms-primary", False),
            ("sms-backup", True),
        ]
        to_ana = [form["Body"] for form in fakes.backup.received if form["To"] == ana.phone]
        assert to_ana == ["Code 1234"]

    def test_the_cost_report_totals_the_messages_costs(
        self, service: tuple[ChorusProcess, Fakes]
    ) -> None:
        chorus, _ = service
        with client(chorus) as http:
            ana = a_customer(http)
            team = f"orders-{uuid.uuid4().hex[:8]}"  # the report of the test's messages alone
            ids = [
                send(
                    http, ana.id, team=team, channels=["sms"], content={"body": f"Code {n}"}
                ).json()["message_id"]
                for n in range(3)
            ]
            costs = [until_status(http, i, "delivered")["cost"] for i in ids]
            report = http.get(
                "/v1/reports/costs", params={"group_by": "channel,provider,team", "team": team}
            ).json()
        assert report["total_messages"] == 3
        assert Decimal(report["totals"]["USD"]) == sum(Decimal(c) for c in costs)
        assert report["lines"][0]["by_status"] == {"delivered": 3}

    def test_a_cost_report_grouped_by_what_it_cannot_is_a_400_naming_query_group_by(
        self, service: tuple[ChorusProcess, Fakes]
    ) -> None:
        chorus, _ = service
        with client(chorus) as http:
            unknown = http.get("/v1/reports/costs", params={"group_by": "channel,country"})
            malformed = http.get("/v1/reports/costs", params={"group_by": "Channel"})
        for answer in (unknown, malformed):
            body = answer.json()
            assert (answer.status_code, body["type"].rpartition("/")[2]) == (
                400,
                "invalid-request",
            ), body
            assert [error["field"] for error in body["errors"]] == ["query.group_by"]
        assert unknown.json()["errors"][0]["reason"] == (
            "cannot group by country; choose from channel, provider, team, campaign"
        )


class TestBouncesAndErasure:
    def test_bounce_reasons_name_no_one_and_read_as_erased_once_the_customer_is(
        self, service: tuple[ChorusProcess, Fakes]
    ) -> None:
        chorus, fakes = service
        # Twilio reports `undelivered` with 30005 (unknown destination handset); the email API
        # reports nothing by itself, its bounce is posted below with a notice naming Ana.
        fakes.sms.report_statuses(
            StatusCallbacks(url=f"{chorus.base_url}/v1/webhooks/sms-primary", status="bounced")
        )
        fakes.email.report_statuses(None)
        with client(chorus) as http:
            ana = a_customer(http)
            sms = send(http, ana.id, channels=["sms"], content={"body": "Code 1"})
            email = send(
                http, ana.id, channels=["email"], content={"subject": "Hi", "body": "Hello"}
            )
            assert (sms.status_code, email.status_code) == (200, 200), email.text
            sms_id, email_id = sms.json()["message_id"], email.json()["message_id"]
            bounced_sms = until_status(http, sms_id, "bounced")
            assert bounced_sms["status"] == "bounced", bounced_sms
            assert bounced_sms["statuses"][-1]["reason"].startswith("twilio error 30005")

            deadline = time.monotonic() + 20
            sent: dict[str, Any] = {}
            while sent.get("provider_message_id") is None and time.monotonic() < deadline:
                sent = http.get(f"/v1/messages/{email_id}").json()
                time.sleep(0.1)
            notice = f"550 5.1.1 <{ana.email}>: Recipient address rejected"
            bounce = FakeEmailApi.event(
                sent["provider_message_id"], "bounce", reason=notice, bounce_type="hard"
            )
            headers, body = fakes.email.signed_webhook([bounce])
            hook = httpx.post(f"{chorus.base_url}/v1/webhooks/email", headers=headers, content=body)
            assert hook.status_code == 200, hook.text
            bounced_email = until_status(http, email_id, "bounced")
            kept = "hard bounce: 550 5.1.1 <…>: Recipient address rejected"
            assert bounced_email["statuses"][-1]["reason"] == kept
            suppressions = http.get(f"/v1/customers/{ana.id}").json()["suppressions"]
            assert suppressions["email"] == f"hard bounce reported by email: {kept}"
            assert suppressions["sms"].startswith("hard bounce reported by sms-primary: twilio")

            erased = http.post(f"/v1/customers/{ana.id}/erase")
            assert erased.status_code == 200, erased.text

            view = http.get(f"/v1/customers/{ana.id}").json()
            assert view["suppressions"] == {"email": "[erased]", "sms": "[erased]"}
            for message_id in (sms_id, email_id):
                story = http.get(f"/v1/audit/messages/{message_id}").json()
                said = [s["reason"] for s in story["statuses"] if s["status"] == "bounced"]
                assert said == ["[erased]"], story["statuses"]
            deadline = time.monotonic() + 20
            while True:
                log = http.get("/v1/audit/events", params={"limit": 10_000}).text
                if "Customer.Erased" in log or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
        assert "Customer.Erased" in log
        assert ana.email not in log
        assert "Recipient address rejected" not in log
        assert "twilio error 30005" not in log


class TestWebhooks:
    def test_a_forged_signature_is_refused_with_401(
        self, service: tuple[ChorusProcess, Fakes]
    ) -> None:
        chorus, fakes = service
        url = f"{chorus.base_url}/v1/webhooks/sms-primary"
        headers, body = fakes.sms.signed_status_callback(url, "SM" + "1" * 32, "delivered")
        answer = httpx.post(url, headers=headers, content=body.replace(b"delivered", b"failed"))
        assert answer.status_code == 401
        assert answer.headers["content-type"].startswith("application/problem+json")

    def test_an_inbound_stop_opts_the_customer_out_of_sms(
        self, service: tuple[ChorusProcess, Fakes]
    ) -> None:
        chorus, fakes = service
        with client(chorus) as http:
            ana = a_customer(http)
            url = f"{chorus.base_url}/v1/webhooks/sms-primary"
            headers, body = fakes.sms.signed_inbound(url, ana.phone, "STOP")
            assert httpx.post(url, headers=headers, content=body).status_code == 200
            answer = send(
                http, ana.id, purpose="marketing", channels=["sms"], content={"body": "Sale!"}
            )
        assert answer.json()["outcome"] == "suppress"

    def test_an_inbound_email_whose_text_is_no_text_is_refused_naming_text(
        self, service: tuple[ChorusProcess, Fakes]
    ) -> None:
        chorus, fakes = service
        inbound = {**FakeEmailApi.inbound("ana@example.org", "hello"), "text": 12345}
        headers, body = fakes.email.signed_webhook(inbound)
        answer = httpx.post(f"{chorus.base_url}/v1/webhooks/email", headers=headers, content=body)
        assert answer.status_code == 422
        assert [e["field"] for e in answer.json()["errors"]] == ["$.text"]

    def test_an_inbound_message_with_control_characters_is_kept_readable(
        self, service: tuple[ChorusProcess, Fakes]
    ) -> None:
        chorus, fakes = service
        url = f"{chorus.base_url}/v1/webhooks/sms-primary"
        with client(chorus) as http:
            ana = a_customer(http)
            headers, body = fakes.sms.signed_inbound(url, ana.phone, "where\x00is\x1bmy order")
            assert httpx.post(url, headers=headers, content=body).status_code == 200
            headers, body = fakes.sms.signed_inbound(url, "+44\x00770", "hello")
            answer = httpx.post(url, headers=headers, content=body)
            assert (answer.status_code, answer.json()["refused"]) == (200, 1)
            headers, body = fakes.sms.signed_status_callback(url, "SM\x00" + "1" * 30, "delivered")
            answer = httpx.post(url, headers=headers, content=body)
            assert (answer.status_code, answer.json()["refused"]) == (200, 1)
            texts: list[str] = []
            deadline = time.monotonic() + 10
            while "where\ufffdis\ufffdmy order" not in texts and time.monotonic() < deadline:
                time.sleep(0.1)
                timeline = http.get(f"/v1/customers/{ana.id}/timeline").json()
                texts = [i["data"].get("properties", {}).get("text") for i in timeline["items"]]
            assert "where\ufffdis\ufffdmy order" in texts
            assert http.get(f"{chorus.base_url}/ready").status_code == 200


class TestProviders:
    def test_providers_are_listed_in_failover_order_without_their_secrets(
        self, service: tuple[ChorusProcess, Fakes]
    ) -> None:
        chorus, fakes = service
        with client(chorus) as http:
            answer = http.get("/v1/providers")
        assert answer.status_code == 200
        listed = answer.json()["items"]
        assert [(p["channel"], p["name"]) for p in listed] == [
            ("email", "email"),
            ("sms", "sms-primary"),
            ("sms", "sms-backup"),
        ]
        assert listed[1]["settings"]["auth_token"] == "***"
        assert listed[1]["breaker"] == "closed"
        for secret in (fakes.sms.auth_token, fakes.email.api_key, fakes.email.webhook_secret):
            assert secret not in answer.text
        log = chorus.log_path.read_text()
        for secret in (fakes.sms.auth_token, fakes.email.api_key, fakes.email.webhook_secret):
            assert secret not in log
