"""Twilio SMS, WhatsApp Cloud and FCM adapters against local fakes speaking their wire formats."""

from __future__ import annotations

import asyncio
import json
import uuid
from decimal import Decimal
from typing import TYPE_CHECKING

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from adapters.providers.fakes.fcm_server import FakeFcm
from adapters.providers.fakes.twilio_server import FakeTwilio
from adapters.providers.fakes.whatsapp_server import FakeWhatsApp, wa_status, wa_text
from adapters.providers.fcm_push import FcmPushProvider
from adapters.providers.twilio_sms import TwilioSmsProvider, twilio_signature
from adapters.providers.whatsapp_cloud import WhatsAppCloudProvider, hub_signature
from domain.policy.vocabulary import Channel
from ports.providers import (
    DeliveryStatus,
    InboundMessage,
    InvalidSignature,
    OutboundMessage,
    Provider,
    ProviderError,
    StatusUpdate,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

pytestmark = pytest.mark.integration

TIMEOUT = 1.5  # wide enough for a loaded 2-core machine; the hangs below outlast it
HOOK = "https://chorus.example.com/v1/webhooks/twilio-main"


def outbound(
    channel: Channel, to: str, key: str | None = None, **fields: object
) -> OutboundMessage:
    return OutboundMessage(
        message_id=uuid.uuid4(),
        idempotency_key=key or uuid.uuid4().hex,
        channel=channel,
        to=to,
        **fields,  # type: ignore[arg-type]
    )


def sms(key: str | None = None, to: str = "+14155550100") -> OutboundMessage:
    return outbound(Channel.SMS, to, key, body="Your code is 123456")


def whatsapp(key: str | None = None, to: str = "14155550100", **fields: object) -> OutboundMessage:
    fields.setdefault("body", "Your order has shipped")
    return outbound(Channel.WHATSAPP, to, key, **fields)


def push(key: str | None = None, token: str = "device-token-1") -> OutboundMessage:
    return outbound(
        Channel.PUSH, token, key, title="Order shipped", body="On its way", data={"order": "o-1"}
    )


# fakes: one server each for the module, knobs and records reset for every test


@pytest.fixture(scope="module")
def twilio_fake() -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        yield fake


@pytest.fixture(scope="module")
def whatsapp_fake() -> Iterator[FakeWhatsApp]:
    with FakeWhatsApp() as fake:
        yield fake


@pytest.fixture(scope="module")
def fcm_fake() -> Iterator[FakeFcm]:
    with FakeFcm() as fake:
        yield fake


@pytest.fixture
async def twilio(twilio_fake: FakeTwilio) -> AsyncIterator[TwilioSmsProvider]:
    twilio_fake.reset()
    provider = TwilioSmsProvider(
        "twilio-main",
        base_url=twilio_fake.base_url,
        account_sid=twilio_fake.account_sid,
        auth_token=twilio_fake.auth_token,
        from_number="+15005550001",
        status_callback_url=HOOK,
        timeout=TIMEOUT,
    )
    yield provider
    await provider.close()
    twilio_fake.reset()


@pytest.fixture
async def wa(whatsapp_fake: FakeWhatsApp) -> AsyncIterator[WhatsAppCloudProvider]:
    whatsapp_fake.reset()
    provider = WhatsAppCloudProvider(
        "whatsapp-main",
        base_url=whatsapp_fake.base_url,
        phone_number_id=whatsapp_fake.phone_number_id,
        access_token=whatsapp_fake.access_token,
        app_secret=whatsapp_fake.app_secret,
        timeout=TIMEOUT,
    )
    yield provider
    await provider.close()
    whatsapp_fake.reset()


@pytest.fixture
async def fcm(fcm_fake: FakeFcm) -> AsyncIterator[FcmPushProvider]:
    fcm_fake.reset()
    provider = FcmPushProvider(
        "fcm-main",
        base_url=fcm_fake.base_url,
        project_id=fcm_fake.project_id,
        access_token=fcm_fake.access_token,
        timeout=TIMEOUT,
    )
    yield provider
    await provider.close()
    fcm_fake.reset()


def test_every_adapter_is_a_provider() -> None:
    providers: list[Provider] = [
        TwilioSmsProvider(
            "t", base_url="http://x", account_sid="AC1", auth_token="t", from_number="+1"
        ),
        WhatsAppCloudProvider(
            "w", base_url="http://x", phone_number_id="1", access_token="t", app_secret="s"
        ),
        FcmPushProvider("f", base_url="http://x", project_id="p", access_token="t"),
    ]
    assert [p.channel for p in providers] == [Channel.SMS, Channel.WHATSAPP, Channel.PUSH]


# Twilio SMS


def test_twilio_signature_matches_twilios_documented_example() -> None:
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+12349013030",
        "Digits": "1234",
        "From": "+12349013030",
        "To": "+18005551212",
    }
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert twilio_signature("12345", url, params.items()) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


async def test_twilio_send_answers_a_receipt_with_cost(
    twilio: TwilioSmsProvider, twilio_fake: FakeTwilio
) -> None:
    receipt = await twilio.send(sms())
    assert receipt.provider == "twilio-main"
    assert receipt.provider_message_id.startswith("SM")
    assert receipt.status is DeliveryStatus.QUEUED
    assert (receipt.cost, receipt.currency) == (Decimal("0.00790"), "USD")
    [form] = twilio_fake.received
    assert form == {
        "To": "+14155550100",
        "From": "+15005550001",
        "Body": "Your code is 123456",
        "StatusCallback": HOOK,
    }


async def test_twilio_same_idempotency_key_sends_once(
    twilio: TwilioSmsProvider, twilio_fake: FakeTwilio
) -> None:
    first = await twilio.send(sms("key-1"))
    again = await twilio.send(sms("key-1"))
    other = await twilio.send(sms("key-2"))
    assert again.provider_message_id == first.provider_message_id
    assert other.provider_message_id != first.provider_message_id
    assert len(twilio_fake.received) == 2
    assert twilio_fake.duplicates == 1


async def test_twilio_lost_answer_then_retry_sends_once(
    twilio: TwilioSmsProvider, twilio_fake: FakeTwilio
) -> None:
    twilio_fake.hang(4.0, accept=True)
    with pytest.raises(ProviderError) as raised:
        await twilio.send(sms("lost-answer"))
    assert raised.value.retryable
    twilio_fake.hang(0)
    receipt = await twilio.send(sms("lost-answer"))
    assert len(twilio_fake.received) == 1
    assert twilio_fake.duplicates == 1
    assert receipt.provider_message_id.startswith("SM")


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_twilio_throttling_and_outages_are_retryable(
    twilio: TwilioSmsProvider, twilio_fake: FakeTwilio, status: int
) -> None:
    twilio_fake.fail_next(1, status)
    with pytest.raises(ProviderError) as raised:
        await twilio.send(sms())
    assert (raised.value.retryable, raised.value.status) == (True, status)
    assert (await twilio.send(sms())).provider_message_id
    assert len(twilio_fake.received) == 1


async def test_twilio_timeout_is_retryable(
    twilio: TwilioSmsProvider, twilio_fake: FakeTwilio
) -> None:
    twilio_fake.hang(4.0)
    with pytest.raises(ProviderError) as raised:
        await twilio.send(sms())
    assert raised.value.retryable
    assert twilio_fake.received == []


async def test_twilio_rate_limit_is_retryable(
    twilio: TwilioSmsProvider, twilio_fake: FakeTwilio
) -> None:
    twilio_fake.rate_limit(2)
    await twilio.send(sms())
    await twilio.send(sms())
    with pytest.raises(ProviderError) as raised:
        await twilio.send(sms())
    assert (raised.value.retryable, raised.value.status) == (True, 429)


async def test_twilio_bad_request_is_final_with_twilios_code(twilio: TwilioSmsProvider) -> None:
    with pytest.raises(ProviderError) as raised:
        await twilio.send(sms(to="not-a-number"))
    assert (raised.value.retryable, raised.value.status) == (False, 400)
    assert "21211" in raised.value.reason
    assert "not a valid phone number" in raised.value.reason


async def test_twilio_wrong_credentials_are_final_and_not_echoed(twilio_fake: FakeTwilio) -> None:
    provider = TwilioSmsProvider(
        "twilio-main",
        base_url=twilio_fake.base_url,
        account_sid=twilio_fake.account_sid,
        auth_token="wrong-secret-token",
        from_number="+15005550001",
        timeout=TIMEOUT,
    )
    try:
        with pytest.raises(ProviderError) as raised:
            await provider.send(sms())
    finally:
        await provider.close()
    assert (raised.value.retryable, raised.value.status) == (False, 401)
    assert "wrong-secret-token" not in str(raised.value)
    assert "wrong-secret-token" not in repr(provider)


@pytest.mark.parametrize(
    ("twilio_status", "expected"),
    [
        ("queued", DeliveryStatus.QUEUED),
        ("sent", DeliveryStatus.SENT),
        ("delivered", DeliveryStatus.DELIVERED),
        ("read", DeliveryStatus.READ),
        ("undelivered", DeliveryStatus.FAILED),
        ("failed", DeliveryStatus.FAILED),
    ],
)
def test_twilio_status_callbacks_map_to_statuses(
    twilio: TwilioSmsProvider,
    twilio_fake: FakeTwilio,
    twilio_status: str,
    expected: DeliveryStatus,
) -> None:
    headers, body = twilio_fake.signed_status_callback(HOOK, "SM123", twilio_status)
    [update] = twilio.parse_webhook(headers, body, HOOK)
    assert isinstance(update, StatusUpdate)
    assert (update.provider, update.provider_message_id, update.status) == (
        "twilio-main",
        "SM123",
        expected,
    )
    assert update.reason is None
    assert update.raw["MessageStatus"] == twilio_status


def test_twilio_failure_carries_error_code_and_price(
    twilio: TwilioSmsProvider, twilio_fake: FakeTwilio
) -> None:
    headers, body = twilio_fake.signed_status_callback(
        HOOK, "SM9", "undelivered", error_code="30003", price="-0.0075"
    )
    [update] = twilio.parse_webhook(headers, body, HOOK)
    assert isinstance(update, StatusUpdate)
    assert update.status is DeliveryStatus.FAILED
    assert update.reason == "twilio error 30003"
    assert (update.cost, update.currency) == (Decimal("0.0075"), "USD")


def test_twilio_inbound_message(twilio: TwilioSmsProvider, twilio_fake: FakeTwilio) -> None:
    headers, body = twilio_fake.signed_inbound(HOOK, "+14155550100", "STOP")
    [inbound] = twilio.parse_webhook(headers, body, HOOK)
    assert isinstance(inbound, InboundMessage)
    assert (inbound.channel, inbound.sender, inbound.text) == (Channel.SMS, "+14155550100", "STOP")
    assert inbound.provider_message_id.startswith("SM")


def test_twilio_signature_holds_with_or_without_the_default_port(
    twilio: TwilioSmsProvider, twilio_fake: FakeTwilio
) -> None:
    headers, body = twilio_fake.signed_status_callback(HOOK, "SM1", "delivered")
    with_port = HOOK.replace("chorus.example.com", "chorus.example.com:443")
    assert twilio.parse_webhook(headers, body, with_port)


def test_twilio_forged_webhooks_are_refused(
    twilio: TwilioSmsProvider, twilio_fake: FakeTwilio
) -> None:
    headers, body = twilio_fake.signed_status_callback(HOOK, "SM1", "delivered")
    forged = body.replace(b"delivered", b"read")
    with pytest.raises(InvalidSignature):
        twilio.parse_webhook(headers, forged, HOOK)
    with pytest.raises(InvalidSignature):
        twilio.parse_webhook(headers, body, HOOK + "-elsewhere")
    with pytest.raises(InvalidSignature):
        twilio.parse_webhook({}, body, HOOK)
    params = dict(p.split("=", 1) for p in body.decode().split("&"))
    wrong_key = {"X-Twilio-Signature": twilio_signature("not-the-token", HOOK, params.items())}
    with pytest.raises(InvalidSignature):
        twilio.parse_webhook(wrong_key, body, HOOK)


def test_twilio_malformed_webhooks_are_value_errors(
    twilio: TwilioSmsProvider, twilio_fake: FakeTwilio
) -> None:
    headers, body = twilio_fake.sign(HOOK, {"MessageStatus": "delivered"})
    with pytest.raises(ValueError, match="MessageSid"):
        twilio.parse_webhook(headers, body, HOOK)
    headers, body = twilio_fake.signed_status_callback(HOOK, "SM1", "exploded")
    with pytest.raises(ValueError, match="unknown twilio message status"):
        twilio.parse_webhook(headers, body, HOOK)
    headers, body = twilio_fake.sign(HOOK, {"MessageSid": "SM1", "From": "+1415"})
    with pytest.raises(ValueError, match="Body"):
        twilio.parse_webhook(headers, body, HOOK)


# WhatsApp Cloud


async def test_whatsapp_text_send_answers_the_wamid(
    wa: WhatsAppCloudProvider, whatsapp_fake: FakeWhatsApp
) -> None:
    message = whatsapp("wa-key-1")
    receipt = await wa.send(message)
    assert receipt.provider_message_id.startswith("wamid.")
    assert receipt.status is DeliveryStatus.QUEUED
    [sent] = whatsapp_fake.received
    assert sent == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "14155550100",
        "biz_opaque_callback_data": "wa-key-1",
        "type": "text",
        "text": {"preview_url": False, "body": "Your order has shipped"},
    }


async def test_whatsapp_template_send(
    wa: WhatsAppCloudProvider, whatsapp_fake: FakeWhatsApp
) -> None:
    await wa.send(
        whatsapp(
            body=None,
            template="order_shipped",
            template_language="en_US",
            template_parameters=("Ada", "A-42"),
        )
    )
    [sent] = whatsapp_fake.received
    assert sent["type"] == "template"
    assert sent["template"] == {
        "name": "order_shipped",
        "language": {"code": "en_US"},
        "components": [
            {
                "type": "body",
                "parameters": [{"type": "text", "text": "Ada"}, {"type": "text", "text": "A-42"}],
            }
        ],
    }


async def test_whatsapp_same_idempotency_key_sends_once(
    wa: WhatsAppCloudProvider, whatsapp_fake: FakeWhatsApp
) -> None:
    first = await wa.send(whatsapp("wa-key"))
    again = await wa.send(whatsapp("wa-key"))
    assert again.provider_message_id == first.provider_message_id
    assert len(whatsapp_fake.received) == 1
    assert whatsapp_fake.duplicates == 1


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_whatsapp_throttling_and_outages_are_retryable(
    wa: WhatsAppCloudProvider, whatsapp_fake: FakeWhatsApp, status: int
) -> None:
    whatsapp_fake.fail_next(1, status)
    with pytest.raises(ProviderError) as raised:
        await wa.send(whatsapp())
    assert (raised.value.retryable, raised.value.status) == (True, status)


async def test_whatsapp_timeout_and_rate_limit_are_retryable(
    wa: WhatsAppCloudProvider, whatsapp_fake: FakeWhatsApp
) -> None:
    whatsapp_fake.hang(4.0)
    with pytest.raises(ProviderError) as raised:
        await wa.send(whatsapp())
    assert raised.value.retryable
    whatsapp_fake.reset()
    whatsapp_fake.rate_limit(1)
    await wa.send(whatsapp())
    with pytest.raises(ProviderError) as raised:
        await wa.send(whatsapp())
    assert (raised.value.retryable, raised.value.status) == (True, 429)


async def test_whatsapp_bad_request_and_bad_token_are_final(
    wa: WhatsAppCloudProvider, whatsapp_fake: FakeWhatsApp
) -> None:
    with pytest.raises(ProviderError) as raised:
        await wa.send(whatsapp(to="not a number"))
    assert (raised.value.retryable, raised.value.status) == (False, 400)
    assert "whatsapp error 100" in raised.value.reason
    provider = WhatsAppCloudProvider(
        "whatsapp-main",
        base_url=whatsapp_fake.base_url,
        phone_number_id=whatsapp_fake.phone_number_id,
        access_token="leaked-if-echoed",
        app_secret=whatsapp_fake.app_secret,
        timeout=TIMEOUT,
    )
    try:
        with pytest.raises(ProviderError) as raised:
            await provider.send(whatsapp())
    finally:
        await provider.close()
    assert (raised.value.retryable, raised.value.status) == (False, 401)
    assert "leaked-if-echoed" not in str(raised.value)


async def test_whatsapp_throttling_graph_codes_are_retryable_whatever_the_http_status() -> None:
    async def answer(request: web.Request) -> web.Response:
        error = {
            "message": "(#131056) Pair rate limit hit",
            "type": "OAuthException",
            "code": 131056,
        }
        return web.json_response({"error": error}, status=400)

    app = web.Application()
    app.router.add_post("/{tail:.*}", answer)
    async with TestServer(app) as server, aiohttp.ClientSession() as client:
        provider = WhatsAppCloudProvider(
            "w", base_url=str(server.make_url("")), phone_number_id="1", access_token="t",
            app_secret="s", client=client,
        )  # fmt: skip
        with pytest.raises(ProviderError) as raised:
            await provider.send(whatsapp())
        await provider.close()
        assert not client.closed  # a session handed in belongs to the caller
    assert (raised.value.retryable, raised.value.status) == (True, 400)


def test_whatsapp_webhook_maps_statuses_and_inbound(
    wa: WhatsAppCloudProvider, whatsapp_fake: FakeWhatsApp
) -> None:
    headers, body = whatsapp_fake.signed_webhook(
        statuses=[
            wa_status("wamid.A", "sent", category="utility", timestamp=1_700_000_000),
            wa_status("wamid.A", "delivered"),
            wa_status("wamid.A", "read"),
            wa_status("wamid.B", "failed", error_code=131026),
            wa_status("wamid.C", "deleted"),
        ],
        messages=[wa_text("14155550100", "Where is my order?", message_id="wamid.IN")],
    )
    found = wa.parse_webhook(headers, body, "https://chorus.example.com/v1/webhooks/wa")
    updates = [f for f in found if isinstance(f, StatusUpdate)]
    assert [(u.provider_message_id, u.status) for u in updates] == [
        ("wamid.A", DeliveryStatus.SENT),
        ("wamid.A", DeliveryStatus.DELIVERED),
        ("wamid.A", DeliveryStatus.READ),
        ("wamid.B", DeliveryStatus.BOUNCED),  # 131026: the number is not on WhatsApp
    ]
    assert updates[0].at is not None
    assert updates[0].at.timestamp() == 1_700_000_000
    assert updates[0].raw["pricing"]["category"] == "utility"
    assert (
        updates[3].reason == "whatsapp error 131026: Message undeliverable: Message undeliverable"
    )
    [inbound] = [f for f in found if isinstance(f, InboundMessage)]
    assert (inbound.channel, inbound.sender, inbound.text, inbound.provider_message_id) == (
        Channel.WHATSAPP,
        "14155550100",
        "Where is my order?",
        "wamid.IN",
    )


def test_whatsapp_forged_webhooks_are_refused(
    wa: WhatsAppCloudProvider, whatsapp_fake: FakeWhatsApp
) -> None:
    headers, body = whatsapp_fake.signed_webhook(statuses=[wa_status("wamid.A", "delivered")])
    with pytest.raises(InvalidSignature):
        wa.parse_webhook(headers, body.replace(b"delivered", b"read"), "")
    with pytest.raises(InvalidSignature):
        wa.parse_webhook({}, body, "")
    forged = {"X-Hub-Signature-256": hub_signature("another-app-secret", body)}
    with pytest.raises(InvalidSignature):
        wa.parse_webhook(forged, body, "")
    lower = {k.lower(): v for k, v in headers.items()}
    assert wa.parse_webhook(lower, body, "")


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        json.dumps({"object": "whatsapp_business_account"}).encode(),
        json.dumps({"object": "page", "entry": []}).encode(),
        json.dumps(
            {
                "object": "whatsapp_business_account",
                "entry": [
                    {
                        "id": "1",
                        "changes": [{"field": "messages", "value": {"statuses": [{"id": 5}]}}],
                    }
                ],
            }
        ).encode(),
    ],
)
def test_whatsapp_malformed_webhooks_are_value_errors(
    wa: WhatsAppCloudProvider, whatsapp_fake: FakeWhatsApp, payload: bytes
) -> None:
    headers, body = whatsapp_fake.signed_body(payload)
    with pytest.raises(ValueError, match="whatsapp"):
        wa.parse_webhook(headers, body, "")


# FCM push


async def test_fcm_send_answers_the_message_name(fcm: FcmPushProvider, fcm_fake: FakeFcm) -> None:
    message = push("push-key")
    receipt = await fcm.send(message)
    assert receipt.provider_message_id.startswith(f"projects/{fcm_fake.project_id}/messages/")
    assert receipt.status is DeliveryStatus.SENT
    assert receipt.cost is None
    [sent] = fcm_fake.received
    assert sent == {
        "token": "device-token-1",
        "notification": {"title": "Order shipped", "body": "On its way"},
        "data": {
            "order": "o-1",
            "chorus_message_id": str(message.message_id),
            "idempotency_key": "push-key",
        },
    }


async def test_fcm_same_idempotency_key_sends_once(fcm: FcmPushProvider, fcm_fake: FakeFcm) -> None:
    first = await fcm.send(push("k"))
    again = await fcm.send(push("k"))
    assert again.provider_message_id == first.provider_message_id
    assert len(fcm_fake.received) == 1
    assert fcm_fake.duplicates == 1


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_fcm_throttling_and_outages_are_retryable(
    fcm: FcmPushProvider, fcm_fake: FakeFcm, status: int
) -> None:
    fcm_fake.fail_next(1, status)
    with pytest.raises(ProviderError) as raised:
        await fcm.send(push())
    assert (raised.value.retryable, raised.value.status) == (True, status)


async def test_fcm_timeout_is_retryable(fcm: FcmPushProvider, fcm_fake: FakeFcm) -> None:
    fcm_fake.hang(4.0)
    with pytest.raises(ProviderError) as raised:
        await fcm.send(push())
    assert raised.value.retryable


async def test_fcm_unregistered_token_is_final_and_says_so(
    fcm: FcmPushProvider, fcm_fake: FakeFcm
) -> None:
    fcm_fake.unregister("stale-token")
    with pytest.raises(ProviderError) as raised:
        await fcm.send(push(token="stale-token"))
    assert (raised.value.retryable, raised.value.status) == (False, 404)
    assert "invalid device token" in raised.value.reason
    assert "UNREGISTERED" in raised.value.reason


async def test_fcm_bad_request_and_bad_token_are_final(
    fcm: FcmPushProvider, fcm_fake: FakeFcm
) -> None:
    fcm_fake.fail_next(1, 400)
    with pytest.raises(ProviderError) as raised:
        await fcm.send(push())
    assert (raised.value.retryable, raised.value.status) == (False, 400)
    provider = FcmPushProvider(
        "fcm-main",
        base_url=fcm_fake.base_url,
        project_id=fcm_fake.project_id,
        access_token="oauth-secret-token",
        timeout=TIMEOUT,
    )
    try:
        with pytest.raises(ProviderError) as raised:
            await provider.send(push())
    finally:
        await provider.close()
    assert (raised.value.retryable, raised.value.status) == (False, 401)
    assert "oauth-secret-token" not in str(raised.value)


def test_fcm_has_no_webhooks(fcm: FcmPushProvider) -> None:
    with pytest.raises(InvalidSignature, match="fcm has no webhooks"):
        fcm.parse_webhook({}, b"{}", "")


async def test_an_unreachable_provider_is_retryable() -> None:
    provider = FcmPushProvider(
        "fcm-down", base_url="http://127.0.0.1:9", project_id="p", access_token="t", timeout=TIMEOUT
    )
    try:
        with pytest.raises(ProviderError) as raised:
            await provider.send(push())
    finally:
        await provider.close()
    assert raised.value.retryable


class ClosesIdleConnections:
    """A Twilio-like server that answers the first request on each connection with keep-alive,
    then closes that connection when the next request arrives on it, unanswered: as a provider
    does when its idle timeout fires while our request is on its way."""

    def __init__(self) -> None:
        self.requests = 0
        self.dropped = 0
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        answered = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                await reader.readexactly(length)
                self.requests += 1
                if answered:
                    self.dropped += 1
                    return
                body = json.dumps({"sid": f"SM{self.requests}", "status": "queued"}).encode()
                writer.write(
                    b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
                )
                await writer.drain()
                answered += 1
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()


async def test_a_connection_the_provider_closed_while_idle_is_not_a_failure() -> None:
    server = ClosesIdleConnections()
    async with server as base_url:
        provider = TwilioSmsProvider(
            "twilio-main",
            base_url=base_url,
            account_sid="AC" + "0" * 32,
            auth_token="token",
            from_number="+15005550001",
            timeout=TIMEOUT,
            max_connections=1,
        )
        try:
            first = await provider.send(sms("first"))
            second = await provider.send(sms("second"))  # its pooled connection is dropped
        finally:
            await provider.close()
    assert (first.provider_message_id, second.provider_message_id) == ("SM1", "SM3")
    assert (server.requests, server.dropped) == (3, 1)


def test_a_whatsapp_message_with_no_text_says_what_it_was_instead(
    wa: WhatsAppCloudProvider, whatsapp_fake: FakeWhatsApp
) -> None:
    order = {
        "from": "447700900885",
        "id": "wamid.ORDER",
        "timestamp": "1700000000",
        "type": "order",
        "order": {"catalog_id": "c1", "product_items": []},
    }
    image = {
        "from": "447700900885",
        "id": "wamid.IMG",
        "timestamp": "1700000001",
        "type": "image",
        "image": {"id": "media-1", "mime_type": "image/jpeg", "caption": "my card, broken"},
    }
    headers, body = whatsapp_fake.signed_webhook(messages=[order, image])
    found = [f for f in wa.parse_webhook(headers, body, "") if isinstance(f, InboundMessage)]
    assert [(f.text, f.content_type) for f in found] == [
        (None, "order"),
        ("my card, broken", None),
    ]
