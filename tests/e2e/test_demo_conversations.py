"""The demo's conversations, as the README tour shows them with the manual clock: open threads
on several channels routed to the demo's agents (one queued), and a customer who moves from
email to WhatsApp inside one thread."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.e2e.demo import DemoProcess

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoProcess]:
    started = DemoProcess(tmp_path_factory.mktemp("demo-conversations") / "demo.log")
    started.env["CHORUS_CLOCK"] = "manual"
    try:
        started.start()
        yield started
    finally:
        started.stop()


@pytest.fixture
def http(demo: DemoProcess) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {demo.admin_key}"}
    with httpx.Client(base_url=demo.base_url, headers=headers, timeout=30) as client:
        yield client


def eventually(read: Callable[[], Any], holds: Callable[[Any], bool], seconds: float = 30) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        found = read()
        if holds(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def customer(http: httpx.Client, identity: str) -> str:
    found: str = http.get("/v1/customers", params={"identity": identity}).json()["id"]
    return found


def threads_of(http: httpx.Client, customer_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = http.get(
        "/v1/conversations", params={"customer_id": customer_id}
    ).json()["items"]
    return items


def inbound(
    http: httpx.Client, event_id: str, identity: dict[str, str], channel: str, text: str
) -> None:
    """A message as the provider's webhook records it."""
    now = http.post("/v1/admin/clock", json={}).json()["now"]
    signal = {
        "id": event_id,
        "type": "message.received",
        "occurred_at": now,
        "source": event_id.partition(":")[0],
        "identities": [identity],
        "properties": {"channel": channel, "text": text},
    }
    answer = http.post("/v1/events?wait=attributed", json={"signals": [signal]})
    assert answer.status_code in (200, 201, 202), answer.text


class TestTheDemosConversations:
    def test_it_made_the_intent_model_ready_before_it_served_and_said_so(
        self, demo: DemoProcess
    ) -> None:
        log = demo.log()
        # Trained on a fresh clone ("training the intent model on first run"), loaded here from
        # the suites' shared model directory.
        assert "the intent model" in log
        assert log.index("the intent model") < log.index("Chorus is running at")

    def test_it_holds_open_threads_on_several_channels_routed_to_its_agents(
        self, http: httpx.Client
    ) -> None:
        def demo_threads() -> dict[str, dict[str, Any]]:
            items = http.get("/v1/conversations", params={"status": "waiting_on_us"}).json()
            return {item["channel"] + ":" + str(item["agent"]): item for item in items["items"]}

        expected = {"whatsapp:ana.silva", "whatsapp:bruno.costa", "sms:None"}
        # Maria's thread is listed on email until her WhatsApp message joins it.
        found = eventually(demo_threads, lambda threads: set(threads) == expected)
        assert set(found) == expected
        sam = found["whatsapp:ana.silva"]
        # The intent model's (the default's) Banking77 intent: a parcel not come is a card's
        assert (sam["team"], sam["intent"]) == ("support", "card_arrival")
        assert sam["customer_id"] == customer(http, "whatsapp_id:447700900123")
        maria = found["whatsapp:bruno.costa"]
        assert maria["channels"] == ["email", "whatsapp"]  # one thread for both
        assert maria["customer_id"] == customer(http, "email:maria@example.org")
        assert (maria["team"], maria["messages"]) == ("billing", 2)
        assert maria["intent"] == "transaction_charged_twice"
        lucia = found["sms:None"]
        assert (lucia["team"], lucia["intent"]) == ("support", None)  # Spanish: never forced
        thread = http.get(f"/v1/conversations/{lucia['id']}").json()
        reasons = " ".join(a["reason"] for a in thread["assignments"])
        assert "spanish" in reasons
        assert "with es" in reasons

    def test_the_queued_thread_waits_for_the_skill_routing_asked_for(
        self, http: httpx.Client
    ) -> None:
        lucia = customer(http, "phone:+34612345678")
        assert threads_of(http, lucia)[0]["agent"] is None  # ana.silva has room, but no es
        answer = http.put("/v1/agents/carla.mendes/presence", json={"presence": "available"})
        assert answer.status_code == 200, answer.text
        taken = eventually(lambda: threads_of(http, lucia), lambda t: t[0]["agent"] is not None)
        assert taken[0]["agent"] == "carla.mendes"

    def test_marias_thread_suggests_the_refund_reply_to_her_team_only(
        self, http: httpx.Client
    ) -> None:
        maria = customer(http, "email:maria@example.org")
        thread = eventually(lambda: threads_of(http, maria), lambda t: t and t[0]["agent"])[0]

        def agent_key(agent: str) -> str:
            made = http.post("/v1/keys", json={"name": agent, "role": "agent", "agent": agent})
            assert made.status_code == 201, made.text
            secret: str = made.json()["secret"]
            return secret

        path = f"/v1/conversations/{thread['id']}/suggestions"
        bruno = {"Authorization": f"Bearer {agent_key('bruno.costa')}"}
        ana = {"Authorization": f"Bearer {agent_key('ana.silva')}"}
        found = http.get(path, headers=bruno)
        assert found.status_code == 200, found.text
        body = found.json()
        assert (body["intent"], body["channel"]) == (thread["intent"], "whatsapp")
        [reply] = body["suggestions"]
        assert reply["template"] == "reply.refund"
        assert reply["text"].startswith("Hi Maria, sorry about the double charge")
        assert reply["used"] == ["customer.first_name"]
        assert http.get(path, headers=ana).status_code == 403  # support's agent, not billing's


class TestTheToursCustomerFromEmailToWhatsApp:
    def test_one_thread_a_reply_and_a_resolution(self, http: httpx.Client) -> None:
        link = {
            "id": "crm-9",
            "type": "contact.updated",
            "occurred_at": http.post("/v1/admin/clock", json={}).json()["now"],
            "identities": [
                {"type": "email", "value": "ana@example.org"},
                {"type": "phone", "value": "+442079460958"},
            ],
        }
        http.post("/v1/events?wait=attributed", json={"signals": [link]}).raise_for_status()
        ana = customer(http, "email:ana@example.org")
        email = {"type": "email", "value": "ana@example.org"}
        inbound(http, "email_api:tour-1", email, "email", "My parcel has not arrived.")
        phone = {"type": "phone", "value": "+442079460958"}
        inbound(http, "whatsapp_cloud:wamid.tour-2", phone, "whatsapp", "Any news about my parcel?")
        listed = eventually(
            lambda: threads_of(http, ana), lambda t: len(t) == 1 and t[0]["messages"] == 2
        )
        assert len(listed) == 1
        assert (listed[0]["channels"], listed[0]["agent"]) == (["email", "whatsapp"], "ana.silva")
        conversation = listed[0]["id"]
        thread = http.get(f"/v1/conversations/{conversation}").json()
        assert [(m["direction"], m["channel"]) for m in thread["thread"]] == [
            ("inbound", "email"),
            ("inbound", "whatsapp"),
        ]
        suggested = http.get(f"/v1/conversations/{conversation}/suggestions").json()
        # "My parcel has not arrived": to a model that learnt from a bank's messages, a transfer
        # not received; "Any news about my parcel?" has no intent of its own and keeps it.
        assert (suggested["intent"], suggested["channel"]) == (
            "transfer_not_received_by_recipient",
            "whatsapp",
        )
        [reply] = suggested["suggestions"]
        assert reply["template"] == "reply.delivery"
        assert reply["text"].startswith("Hi Ana, your parcel is with the courier")

        text = {"text": "Sorry, Ana! Order A-7 arrives tomorrow before noon."}
        on_whatsapp = http.post(f"/v1/conversations/{conversation}/replies", json=text).json()
        assert (on_whatsapp["channel"], on_whatsapp["sent"]) == ("whatsapp", False)
        fired = [rule["rule_id"] for rule in on_whatsapp["decision"]["fired"]]
        assert "consent.whatsapp.service" in fired
        by_email = http.post(
            f"/v1/conversations/{conversation}/replies", json={**text, "channel": "email"}
        ).json()
        assert (by_email["channel"], by_email["sent"]) == ("email", True)
        # The demo's email API takes the reply and reports it delivered: the thread says so.
        reply_id = by_email["message_id"]

        def reply_status() -> tuple[str | None, str]:
            shown = http.get(f"/v1/conversations/{conversation}").json()["thread"]
            in_thread = next(m["provider_status"] for m in shown if m["id"] == reply_id)
            return in_thread, http.get(f"/v1/messages/{reply_id}").json()["status"]

        statuses = eventually(reply_status, lambda s: s == ("delivered", "delivered"))
        assert statuses == ("delivered", "delivered")
        # The demo's fakes report on its manual clock, which stood still meanwhile.
        delivered = http.get(f"/v1/messages/{reply_id}").json()["statuses"][-1]
        assert delivered["reported_at"] == delivered["at"], delivered
        resolved = http.post(
            f"/v1/conversations/{conversation}/resolve", json={"reason": "delivery date given"}
        ).json()
        assert (resolved["status"], resolved["changed"]) == ("resolved", True)


class TestMessagesNoOneHereWrote:
    """Fresh messages on the demo, classified by the intent model and routed by the demo's
    routing: a fraud report to support at once, money to billing, a polite question that reads
    a little negative not escalated, and a message in German never forced into an intent."""

    @pytest.mark.parametrize(
        ("n", "text", "team", "priority", "intent"),
        [
            (
                1,
                "There is a payment on my card from a shop I have never been to",
                "support",
                "urgent",
                "card_payment_not_recognised",
            ),
            (
                2,
                "My refund still has not shown up in my account",
                "billing",
                "high",
                "refund_not_showing_up",
            ),
            (3, "Can I add my card to Google Pay?", "support", "normal", "apple_pay_or_google_pay"),
            # German: unknown (`not_english`), never forced into an intent
            (4, "Hallo, mir wurde zweimal dieselbe Zahlung abgebucht", "support", "normal", None),
        ],
    )
    def test_each_goes_to_its_team_at_its_priority(
        self,
        http: httpx.Client,
        n: int,
        text: str,
        team: str,
        priority: str,
        intent: str | None,
    ) -> None:
        who = {"type": "email", "value": f"fresh{n}@example.org"}
        inbound(http, f"email_api:fresh-{n}", who, "email", text)
        found = customer(http, f"email:fresh{n}@example.org")
        routed = eventually(lambda: threads_of(http, found), lambda t: t and t[0]["team"])
        assert (routed[0]["team"], routed[0]["priority"], routed[0]["intent"]) == (
            team,
            priority,
            intent,
        )
