"""The campaign of issue 15, end to end on the manual clock, for a handful of customers:
"order placed → wait 1 day → WhatsApp; not delivered in 10 minutes → SMS; replied → exit;
goal: purchase within 7 days", with one customer in quiet hours and one capped.

A running service, fake WhatsApp and SMS providers that call back `delivered`, and the HTTP
API; what each customer's enrollment did is read from its events, as an auditor would.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import asyncpg
import httpx
import pytest

from adapters.providers.fakes.twilio_server import FakeTwilio
from adapters.providers.fakes.webhooks import StatusCallbacks
from adapters.providers.fakes.whatsapp_server import FakeWhatsApp
from tests.e2e.conftest import _delete_streams
from tests.e2e.service import ChorusProcess

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path

pytestmark = pytest.mark.e2e

MONDAY = datetime.fromisoformat("2027-03-01T10:00:00+00:00")  # 10:00 in London

RULES: dict[str, Any] = {
    "default_time_zone": "Europe/London",
    # Outside the 24-hour window only a template may go on WhatsApp: the campaign's is one.
    # (Its built-in window too: naming it changes nothing but what it names.)
    "channels": {"whatsapp": {"session_window": "24h"}},
    "quiet_hours": [
        {
            "id": "quiet.night",
            "windows": [{"start": "21:00", "end": "08:00"}],
            "channels": ["whatsapp", "sms"],
            "purposes": ["marketing"],
        }
    ],
    "caps": [
        {
            "id": "cap.whatsapp.weekly",
            "limit": 1,
            "window": "7d",
            "channel": "whatsapp",
            "purpose": "marketing",
            "on_exceed": "suppress",
        }
    ],
}
FOLLOW_UP_TEMPLATE: dict[str, Any] = {
    "default_locale": "en",
    "variants": [
        {
            "channel": "whatsapp",
            "locale": "en",
            "whatsapp_template": "order_follow_up",
            "whatsapp_language": "en_US",
            "whatsapp_parameters": ["{{ customer.first_name }}"],
        },
        {"channel": "sms", "locale": "en", "body": "Hi {{ customer.first_name }}, all well?"},
    ],
}
SEND = {"template": "order-follow-up", "purpose": "marketing", "team": "growth"}
CAMPAIGN: dict[str, Any] = {
    "key": "order-follow-up",
    "name": "Order follow-up",
    "journey": {
        "entry": {"type": "signal", "signal": "order.placed"},
        "start": "a-day-later",
        "steps": {
            "a-day-later": {"type": "wait", "for": "1d", "next": "whatsapp"},
            # Not delivered in 10 minutes: the delivery falls back to SMS. Suppressed (the cap)
            # or failed: the journey itself goes on to its SMS step.
            "whatsapp": {
                "type": "send",
                "channels": ["whatsapp"],
                **SEND,
                "fallback": {"channels": ["sms"], "after": "10m"},
                "on_not_delivered": {"within": "1d", "next": "sms"},
                "next": "reply",
            },
            "sms": {"type": "send", "channels": ["sms"], **SEND, "next": "reply"},
            "reply": {
                "type": "wait_for_signal",
                "signal": "message.received",
                "timeout": "3d",
                "on_signal": "done",
                "on_timeout": "no-reply",
            },
            "done": {"type": "exit", "reason": "replied"},
            "no-reply": {"type": "exit", "reason": "no reply"},
        },
        "goal": {"signal": "purchase", "within": "7d"},
    },
}

# Who is who: each has a phone (WhatsApp goes to it) and a time zone.
ANA, BEN, CLEO, DAN, EVE = "ana", "ben", "cleo", "dan", "eve"
PHONES = {
    ANA: "+447700900101",
    BEN: "+447700900102",
    CLEO: "+447700900103",
    DAN: "+447700900104",
    EVE: "+447700900105",
}
ZONES = {CLEO: "America/Los_Angeles"}  # 02:00 there when the others get their WhatsApp


class Fakes:
    """WhatsApp Cloud and Twilio, each reporting `delivered` at once."""

    def __init__(self, chorus_url: str) -> None:
        def calling_back(name: str) -> StatusCallbacks:
            return StatusCallbacks(url=f"{chorus_url}/v1/webhooks/{name}", status="delivered")

        self.whatsapp = FakeWhatsApp(callbacks=calling_back("whatsapp"))
        self.sms = FakeTwilio(auth_token="sms-token", callbacks=calling_back("sms"))

    def start(self) -> None:
        self.whatsapp.start()
        self.sms.start()

    def stop(self) -> None:
        self.whatsapp.stop()
        self.sms.stop()

    def providers(self) -> str:
        breaker = {"failure_threshold": 3, "reset_seconds": 30}
        return json.dumps(
            [
                {
                    "name": "whatsapp",
                    "type": "whatsapp_cloud",
                    "base_url": self.whatsapp.base_url,
                    "phone_number_id": self.whatsapp.phone_number_id,
                    "access_token": self.whatsapp.access_token,
                    "app_secret": self.whatsapp.app_secret,
                    "breaker": breaker,
                },
                {
                    "name": "sms",
                    "type": "twilio",
                    "base_url": self.sms.base_url,
                    "account_sid": self.sms.account_sid,
                    "auth_token": self.sms.auth_token,
                    "from_number": "+15005550006",
                    "breaker": breaker,
                },
            ]
        )

    def whatsapps_to(self, phone: str) -> list[Any]:
        return [m for m in self.whatsapp.received if m.get("to") in (phone, phone.lstrip("+"))]


@pytest.fixture
async def service(
    database_url: str, nats_url: str, tmp_path: Path
) -> AsyncIterator[tuple[ChorusProcess, Fakes]]:
    chorus = ChorusProcess(
        database_url, nats_url, f"E2E_{uuid.uuid4().hex[:8].upper()}", tmp_path / "chorus.log"
    )
    fakes = Fakes(chorus.base_url)
    fakes.start()
    chorus.env["CHORUS_PROVIDERS"] = fakes.providers()
    chorus.admin_key = chorus.chorus("keys", "create", "--role", "admin")  # type: ignore[attr-defined]
    chorus.start()
    try:
        yield chorus, fakes
    finally:
        chorus.stop()
        fakes.stop()
        await _delete_streams(chorus)


def client(chorus: ChorusProcess) -> httpx.Client:
    key = chorus.admin_key  # type: ignore[attr-defined]
    return httpx.Client(
        base_url=chorus.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )


def eventually(probe: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.1)


def query(database_url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    """What the service recorded, read as an auditor reads the store."""

    async def fetch() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(database_url)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    return asyncio.run(fetch())


class Scenario:
    """The marketer's view: the API, the manual clock, and the store for the audit."""

    def __init__(self, http: httpx.Client, fakes: Fakes, database_url: str) -> None:
        self.http = http
        self.fakes = fakes
        self.database_url = database_url
        self.customers: dict[str, str] = {}
        self.now = MONDAY

    def set_clock(self, at: datetime) -> None:
        answer = self.http.post("/v1/admin/clock", json={"set": at.isoformat()})
        assert answer.status_code == 200, answer.text
        self.now = at

    def advance(self, by: timedelta) -> None:
        seconds = by.total_seconds()
        answer = self.http.post("/v1/admin/clock", json={"advance_seconds": seconds})
        assert answer.status_code == 200, answer.text
        self.now += by

    def customer(self, name: str) -> str:
        profile: dict[str, Any] = {"first_name": name.title()}
        if name in ZONES:
            profile["time_zone"] = ZONES[name]
        answer = self.http.put(
            "/v1/customers",
            json={
                "identities": [
                    {"type": "phone", "value": PHONES[name], "verification": "verified"}
                ],
                "profile": profile,
            },
        )
        assert answer.status_code in (200, 201), answer.text
        self.customers[name] = str(answer.json()["customer"]["id"])
        # The rules leave SMS out and name WhatsApp for its session window alone: both keep
        # their built-in consent, so marketing on either needs an opt-in.
        opted_in = [
            {"channel": channel, "purpose": "marketing", "granted": True, "source": "checkout"}
            for channel in ("sms", "whatsapp")
        ]
        consents = self.http.post(
            f"/v1/customers/{self.customers[name]}/consents", json={"changes": opted_in}
        )
        assert consents.status_code == 200, consents.text
        return self.customers[name]

    def signal(self, name: str, kind: str, event_id: str) -> None:
        body = {
            "signals": [
                {
                    "id": event_id,
                    "type": kind,
                    "occurred_at": self.now.isoformat(),
                    "identities": [{"type": "phone", "value": PHONES[name]}],
                    "properties": {"total": 80},
                }
            ]
        }
        answer = self.http.post("/v1/events?wait=attributed", json=body)
        assert answer.status_code in (200, 202), answer.text

    def journey(self, name: str) -> dict[str, Any] | None:
        """The customer's enrollment as listed: step, status, reasons."""
        answer = self.http.get(f"/v1/customers/{self.customers[name]}/campaigns")
        assert answer.status_code == 200, answer.text
        items = answer.json()["items"]
        return items[0] if items else None

    def at(self, name: str, step: str, status: str = "active") -> dict[str, Any]:
        seen: list[dict[str, Any] | None] = [None]

        def there() -> dict[str, Any] | None:
            found = seen[0] = self.journey(name)
            if found is not None and (found["step"], found["status"]) == (step, status):
                return found
            return None

        try:
            found: dict[str, Any] = eventually(there, f"{name} at {step} ({status})")
        except AssertionError as error:
            raise AssertionError(f"{error}; last seen: {seen[0]}") from None
        return found

    def events(self, name: str) -> list[tuple[str, dict[str, Any]]]:
        """The enrollment's events, in order: (kind, payload)."""
        journey = self.journey(name)
        assert journey is not None
        rows = query(
            self.database_url,
            "SELECT topic, payload FROM events WHERE stream_id = $1 ORDER BY version",
            uuid.UUID(journey["id"]),
        )
        return [(row["topic"].rpartition(".")[2], json.loads(row["payload"])) for row in rows]

    def steps(self, name: str) -> list[str]:
        return [p["step"] for kind, p in self.events(name) if kind == "StepTaken"]

    def responses(self, name: str) -> list[tuple[str, str, str | None]]:
        """(step, response, message id) in the order they were noted."""
        return [
            (p["step"], p["response"], p["message_id"])
            for kind, p in self.events(name)
            if kind == "Responded"
        ]

    def messages(self, name: str) -> dict[str, list[str]]:
        """The customer's messages by channel, oldest first."""
        rows = query(
            self.database_url,
            "SELECT message_id, channel FROM messages WHERE customer_id = $1 ORDER BY queued_at",
            uuid.UUID(self.customers[name]),
        )
        found: dict[str, list[str]] = {}
        for row in rows:
            found.setdefault(row["channel"], []).append(str(row["message_id"]))
        return found

    def message(self, message_id: str) -> dict[str, Any]:
        answer = self.http.get(f"/v1/messages/{message_id}")
        assert answer.status_code == 200, answer.text
        view: dict[str, Any] = answer.json()
        return view

    def message_ends(self, message_id: str, status: str) -> dict[str, Any]:
        def ended() -> dict[str, Any] | None:
            view = self.message(message_id)
            return view if view["status"] == status else None

        found: dict[str, Any] = eventually(ended, f"message {message_id} {status}")
        return found


class TestTheOrderFollowUpCampaign:
    def test_a_handful_of_customers_take_the_journey_the_rules_and_the_delivery_allow(
        self, service: tuple[ChorusProcess, Fakes], database_url: str
    ) -> None:
        chorus, fakes = service
        with client(chorus) as http:
            run = Scenario(http, fakes, database_url)
            run.set_clock(MONDAY)
            assert http.put("/v1/rules", json=RULES).status_code == 200
            template = http.put("/v1/templates/order-follow-up", json=FOLLOW_UP_TEMPLATE)
            assert template.status_code in (200, 201), template.text
            assert http.post("/v1/campaigns", json=CAMPAIGN).status_code == 201
            assert http.post("/v1/campaigns/order-follow-up/activate").status_code == 200
            for name in PHONES:
                run.customer(name)

            # Dan had this week's one marketing WhatsApp already: the cap is full for him.
            promo = http.post(
                "/v1/messages",
                json={
                    "customer_id": run.customers[DAN],
                    "team": "promo",
                    "purpose": "marketing",
                    "channels": ["whatsapp"],
                    "content": {"whatsapp_template": "spring_sale", "whatsapp_language": "en_US"},
                },
            )
            assert promo.status_code == 200, promo.text
            run.message_ends(promo.json()["message_id"], "delivered")

            # Monday 10:00: four orders; Ben's comes two hours later.
            for name in (ANA, CLEO, DAN, EVE):
                run.signal(name, "order.placed", f"order-{name}")
            for name in (ANA, CLEO, DAN, EVE):
                run.at(name, "a-day-later")
            run.advance(timedelta(hours=2))
            run.signal(BEN, "order.placed", f"order-{BEN}")
            run.at(BEN, "a-day-later")

            # Tuesday 10:00, a day after the orders: the WhatsApp step.
            run.advance(timedelta(hours=22))
            ana = run.at(ANA, "reply")
            eve = run.at(EVE, "reply")
            run.at(DAN, "reply")  # by the journey's SMS step: WhatsApp was capped
            cleo = run.at(CLEO, "whatsapp")  # 02:00 in Los Angeles: deferred, held for it
            assert "delivered" in ana["reason"]
            assert "delivered" in eve["reason"]
            assert cleo["waiting_for"] == "delivery"
            run.at(BEN, "a-day-later")

            # Ana answers on WhatsApp: she leaves, replied.
            reply = fakes.whatsapp.inbound_webhook(
                f"{chorus.base_url}/v1/webhooks/whatsapp", PHONES[ANA], "Loved it, thanks!"
            )
            posted = httpx.post(reply.url, headers=reply.headers, content=reply.body, timeout=10)
            assert posted.status_code == 200, posted.text
            ana = run.at(ANA, "done", status="exited")
            assert ana["exit_reason"] == "replied"

            # Eve buys: the goal.
            run.signal(EVE, "purchase", "purchase-eve")
            eve = run.at(EVE, "reply", status="converted")

            # Tuesday 12:00, Ben's WhatsApp, while the WhatsApp provider is down.
            fakes.whatsapp.fail_next(1_000_000, status=503)
            run.advance(timedelta(hours=2))
            run.at(BEN, "whatsapp")
            (ben_whatsapp,) = eventually(
                lambda: run.messages(BEN).get("whatsapp"), "Ben's WhatsApp message queued"
            )
            held = eventually(
                lambda: (v := run.message(ben_whatsapp))["attempts"] and v,
                "Ben's WhatsApp tried and refused",
            )
            assert held["status"] == "queued"
            assert all(not attempt["accepted"] for attempt in held["attempts"])

            # Ten minutes undelivered: the SMS goes, and the WhatsApp message is withdrawn.
            run.advance(timedelta(minutes=10))
            superseded = run.message_ends(ben_whatsapp, "superseded")
            (ben_sms,) = run.messages(BEN)["sms"]
            assert superseded["fell_back_to"] == ben_sms
            assert ben_sms in superseded["statuses"][-1]["reason"]
            assert superseded["statuses"][-1]["source"] == "fallback"
            run.message_ends(ben_sms, "delivered")
            ben = run.at(BEN, "reply")
            assert "delivered" in ben["reason"]
            # The provider is back: the withdrawn message has left the outbox and never goes.
            fakes.whatsapp.fail_next(0)
            outbox = "SELECT count(*) AS n FROM outbox WHERE message_id = $1"
            assert query(database_url, outbox, uuid.UUID(ben_whatsapp))[0]["n"] == 0
            time.sleep(2)
            assert fakes.whatsapps_to(PHONES[BEN]) == []
            assert run.message(ben_whatsapp)["status"] == "superseded"

            # Tuesday 16:01, 08:01 in Los Angeles: Cleo's deferred WhatsApp goes.
            run.advance(timedelta(hours=3, minutes=51))
            cleo = run.at(CLEO, "reply")
            (cleo_whatsapp,) = run.messages(CLEO)["whatsapp"]
            cleo_message = run.message_ends(cleo_whatsapp, "delivered")
            outcomes = [d["outcome"] for d in cleo_message["decisions"]]
            assert outcomes == ["defer", "send"]
            assert len(fakes.whatsapps_to(PHONES[CLEO])) == 1

            # Three days without a reply: the others leave.
            run.advance(timedelta(days=3, hours=1))
            for name in (BEN, CLEO, DAN):
                left = run.at(name, "no-reply", status="exited")
                assert left["exit_reason"] == "no reply"

            # What each enrollment did, step by step, and what became of its sends.
            assert run.steps(ANA) == ["a-day-later", "whatsapp", "reply", "done"]
            assert run.steps(BEN) == ["a-day-later", "whatsapp", "reply", "no-reply"]
            assert run.steps(CLEO) == ["a-day-later", "whatsapp", "reply", "no-reply"]
            assert run.steps(DAN) == ["a-day-later", "whatsapp", "sms", "reply", "no-reply"]
            assert run.steps(EVE) == ["a-day-later", "whatsapp", "reply"]
            kinds = [kind for kind, _ in run.events(EVE)]
            assert "Converted" in kinds

            (ana_whatsapp,) = run.messages(ANA)["whatsapp"]
            assert ("whatsapp", "delivered", ana_whatsapp) in run.responses(ANA)
            assert ("whatsapp", "replied", None) in run.responses(ANA)
            assert ("whatsapp", "delivered", ben_sms) in run.responses(BEN)
            assert [r for _, r, _ in run.responses(CLEO)] == ["deferred", "delivered"]
            dan_responses = run.responses(DAN)
            assert dan_responses[0][:2] == ("whatsapp", "suppressed")
            (dan_whatsapp_events,) = [
                p for kind, p in run.events(DAN) if kind == "Responded" and p["step"] == "whatsapp"
            ]
            assert "1 of 1 messages in 7 days" in dan_whatsapp_events["reason"]
            capped = run.message(dan_whatsapp_events["message_id"])
            assert capped["status"] == "suppressed"
            assert "cap.whatsapp.weekly" in json.dumps(capped["decisions"])
            assert len(run.messages(DAN)["whatsapp"]) == 1  # the promo alone
            (dan_sms,) = run.messages(DAN)["sms"]
            run.message_ends(dan_sms, "delivered")
            assert "sms" not in run.messages(ANA)
            assert "sms" not in run.messages(EVE)

            # Every status on Chorus's clock: after the message was queued, never past now.
            for message_id in (ana_whatsapp, ben_sms, cleo_whatsapp):
                view = run.message(message_id)
                queued = datetime.fromisoformat(view["queued_at"])
                stamps = [datetime.fromisoformat(s["at"]) for s in view["statuses"]]
                assert stamps == sorted(stamps)
                assert all(queued <= at <= run.now for at in stamps)
