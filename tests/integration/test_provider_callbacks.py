"""Fake providers call back: signed status webhooks in each provider's format, retried while the
target is down; inbound messages on request; knobs over HTTP for a fake in another process."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from adapters.providers.email_api import EmailApiProvider
from adapters.providers.fakes.email_api_server import FakeEmailApi
from adapters.providers.fakes.fcm_server import FakeFcm
from adapters.providers.fakes.receiver import WebhookReceiver
from adapters.providers.fakes.twilio_server import FakeTwilio
from adapters.providers.fakes.webhooks import StatusCallbacks, Webhook, WebhookPoster
from adapters.providers.fakes.whatsapp_server import FakeWhatsApp
from adapters.providers.fcm_push import FcmPushProvider
from adapters.providers.twilio_sms import TwilioSmsProvider
from adapters.providers.whatsapp_cloud import WhatsAppCloudProvider
from domain.policy.vocabulary import Channel
from ports.providers import (
    DeliveryStatus,
    InboundMessage,
    OutboundMessage,
    ProviderError,
    StatusUpdate,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator

    from adapters.providers.fakes.http_fake import FakeRequest, HttpFake
    from ports.providers import Provider

pytestmark = pytest.mark.integration

FAST = {"backoff_seconds": 0.02, "max_backoff_seconds": 0.1}
TWILIO_PATH = "/v1/webhooks/twilio-main"
WHATSAPP_PATH = "/v1/webhooks/whatsapp-main"
EMAIL_PATH = "/v1/webhooks/email-main"


async def eventually(check: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("it did not happen in time")
        await asyncio.sleep(0.01)


def url_of(receiver: WebhookReceiver, request: FakeRequest) -> str:
    return receiver.url(request.path + (f"?{request.query}" if request.query else ""))


def parsed(
    provider: Provider, receiver: WebhookReceiver, request: FakeRequest
) -> list[StatusUpdate | InboundMessage]:
    """What the adapter reads from a webhook, its signature checked against the URL it hit."""
    return list(provider.parse_webhook(request.headers, request.body, url_of(receiver, request)))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def outbound(channel: Channel, to: str, key: str | None = None, **fields: Any) -> OutboundMessage:
    return OutboundMessage(
        message_id=uuid.uuid4(),
        idempotency_key=key or uuid.uuid4().hex,
        channel=channel,
        to=to,
        **fields,
    )


def sms(key: str | None = None) -> OutboundMessage:
    return outbound(Channel.SMS, "+14155550100", key, body="Your code is 123456")


def whatsapp(key: str | None = None) -> OutboundMessage:
    return outbound(Channel.WHATSAPP, "14155550100", key, body="Your order has shipped")


def email(key: str | None = None) -> OutboundMessage:
    return outbound(Channel.EMAIL, "ada@example.org", key, subject="Hi", body="Hello")


@pytest.fixture(scope="module")
def receiver_server() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture
def receiver(receiver_server: WebhookReceiver) -> Iterator[WebhookReceiver]:
    receiver_server.reset()
    yield receiver_server
    receiver_server.reset()


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, HttpFake]]:
    made: dict[str, HttpFake] = {
        "twilio": FakeTwilio(),
        "whatsapp": FakeWhatsApp(),
        "email": FakeEmailApi(),
        "fcm": FakeFcm(),
    }
    for fake in made.values():
        fake.start()
    yield made
    for fake in made.values():
        fake.stop()


@pytest.fixture
def twilio_fake(fakes: dict[str, HttpFake]) -> Iterator[FakeTwilio]:
    fake = fakes["twilio"]
    assert isinstance(fake, FakeTwilio)
    fake.reset()
    yield fake
    fake.reset()


@pytest.fixture
def whatsapp_fake(fakes: dict[str, HttpFake], receiver: WebhookReceiver) -> Iterator[FakeWhatsApp]:
    fake = fakes["whatsapp"]
    assert isinstance(fake, FakeWhatsApp)
    fake.reset()
    fake.report_statuses(StatusCallbacks(receiver.url(WHATSAPP_PATH), **FAST))
    yield fake
    fake.reset()


@pytest.fixture
def email_fake(fakes: dict[str, HttpFake], receiver: WebhookReceiver) -> Iterator[FakeEmailApi]:
    fake = fakes["email"]
    assert isinstance(fake, FakeEmailApi)
    fake.reset()
    fake.report_statuses(StatusCallbacks(receiver.url(EMAIL_PATH), **FAST))
    yield fake
    fake.reset()


@pytest.fixture
async def twilio(
    twilio_fake: FakeTwilio, receiver: WebhookReceiver
) -> AsyncIterator[TwilioSmsProvider]:
    provider = TwilioSmsProvider(
        "twilio-main",
        base_url=twilio_fake.base_url,
        account_sid=twilio_fake.account_sid,
        auth_token=twilio_fake.auth_token,
        from_number="+15005550001",
        status_callback_url=receiver.url(TWILIO_PATH + "?tenant=acme"),
        timeout=2,
    )
    yield provider
    await provider.close()


@pytest.fixture
async def wa(whatsapp_fake: FakeWhatsApp) -> AsyncIterator[WhatsAppCloudProvider]:
    provider = WhatsAppCloudProvider(
        "whatsapp-main",
        base_url=whatsapp_fake.base_url,
        phone_number_id=whatsapp_fake.phone_number_id,
        access_token=whatsapp_fake.access_token,
        app_secret=whatsapp_fake.app_secret,
        timeout=2,
    )
    yield provider
    await provider.close()


@pytest.fixture
async def mail(email_fake: FakeEmailApi) -> AsyncIterator[EmailApiProvider]:
    provider = EmailApiProvider(
        "email-main",
        base_url=email_fake.base_url,
        api_key=email_fake.api_key,
        webhook_secret=email_fake.webhook_secret,
        sender="Chorus <news@chorus.example>",
        timeout=2,
    )
    yield provider
    await provider.close()


class TestStatusCallbacks:
    async def test_twilio_reports_delivered_to_the_messages_own_status_callback(
        self, twilio: TwilioSmsProvider, receiver: WebhookReceiver
    ) -> None:
        receipt = await twilio.send(sms())
        await eventually(lambda: len(receiver.received) == 1)
        [request] = receiver.received
        assert (request.path, request.query) == (TWILIO_PATH, "tenant=acme")
        [update] = parsed(twilio, receiver, request)
        assert isinstance(update, StatusUpdate)
        assert (update.provider_message_id, update.status) == (
            receipt.provider_message_id,
            DeliveryStatus.DELIVERED,
        )
        assert update.raw["To"] == "+14155550100"

    async def test_twilio_without_a_status_callback_reports_to_the_configured_url(
        self, twilio_fake: FakeTwilio, receiver: WebhookReceiver
    ) -> None:
        twilio_fake.report_statuses(StatusCallbacks(receiver.url("/hooks/sms"), **FAST))
        provider = TwilioSmsProvider(
            "twilio-main",
            base_url=twilio_fake.base_url,
            account_sid=twilio_fake.account_sid,
            auth_token=twilio_fake.auth_token,
            from_number="+15005550001",
        )
        try:
            receipt = await provider.send(sms())
        finally:
            await provider.close()
        await eventually(lambda: len(receiver.received) == 1)
        [request] = receiver.received
        assert request.path == "/hooks/sms"
        [update] = parsed(provider, receiver, request)
        assert isinstance(update, StatusUpdate)
        assert update.provider_message_id == receipt.provider_message_id

    async def test_whatsapp_reports_to_the_app_url_with_the_callback_data(
        self, wa: WhatsAppCloudProvider, receiver: WebhookReceiver
    ) -> None:
        receipt = await wa.send(whatsapp("order-42"))
        await eventually(lambda: len(receiver.received) == 1)
        [request] = receiver.received
        assert request.path == WHATSAPP_PATH
        [update] = parsed(wa, receiver, request)
        assert isinstance(update, StatusUpdate)
        assert (update.provider_message_id, update.status) == (
            receipt.provider_message_id,
            DeliveryStatus.DELIVERED,
        )
        assert update.raw["biz_opaque_callback_data"] == "order-42"
        assert update.raw["recipient_id"] == "14155550100"

    async def test_the_email_api_reports_in_its_own_format(
        self, mail: EmailApiProvider, receiver: WebhookReceiver
    ) -> None:
        receipt = await mail.send(email())
        await eventually(lambda: len(receiver.received) == 1)
        [update] = parsed(mail, receiver, receiver.received[0])
        assert isinstance(update, StatusUpdate)
        assert (update.provider_message_id, update.status) == (
            receipt.provider_message_id,
            DeliveryStatus.DELIVERED,
        )

    @pytest.mark.parametrize(
        ("final", "sms_status", "whatsapp_status", "email_statuses"),
        [
            ("failed", DeliveryStatus.FAILED, DeliveryStatus.FAILED, [DeliveryStatus.FAILED]),
            # Twilio's 30005: the number does not exist; WhatsApp's 131026: it is not on WhatsApp.
            ("bounced", DeliveryStatus.BOUNCED, DeliveryStatus.BOUNCED, [DeliveryStatus.BOUNCED]),
            ("complained", DeliveryStatus.FAILED, DeliveryStatus.FAILED, [DeliveryStatus.DELIVERED, DeliveryStatus.COMPLAINED]),
        ],
    )  # fmt: skip
    async def test_the_final_status_can_be_chosen(
        self,
        twilio: TwilioSmsProvider,
        twilio_fake: FakeTwilio,
        wa: WhatsAppCloudProvider,
        whatsapp_fake: FakeWhatsApp,
        mail: EmailApiProvider,
        email_fake: FakeEmailApi,
        receiver: WebhookReceiver,
        final: Any,
        sms_status: DeliveryStatus,
        whatsapp_status: DeliveryStatus,
        email_statuses: list[DeliveryStatus],
    ) -> None:
        for fake in (twilio_fake, whatsapp_fake, email_fake):
            fake.report_statuses(StatusCallbacks(fake.callbacks.url, final, **FAST))
        await twilio.send(sms())
        await wa.send(whatsapp())
        await mail.send(email())
        await eventually(lambda: len(receiver.received) == 3)
        by_path = {request.path: request for request in receiver.received}
        found = {
            "sms": parsed(twilio, receiver, by_path[TWILIO_PATH]),
            "whatsapp": parsed(wa, receiver, by_path[WHATSAPP_PATH]),
            "email": parsed(mail, receiver, by_path[EMAIL_PATH]),
        }
        statuses = {
            kind: [u.status for u in updates if isinstance(u, StatusUpdate)]
            for kind, updates in found.items()
        }
        assert statuses == {
            "sms": [sms_status],
            "whatsapp": [whatsapp_status],
            "email": email_statuses,
        }
        reasons = [
            u.reason for u in (*found["sms"], *found["whatsapp"]) if isinstance(u, StatusUpdate)
        ]
        assert reasons[0] is not None
        assert reasons[0].startswith("twilio error 300")
        assert reasons[1] is not None
        assert reasons[1].startswith("whatsapp error 1310")

    async def test_a_repeated_idempotency_key_is_reported_once(
        self, wa: WhatsAppCloudProvider, whatsapp_fake: FakeWhatsApp, receiver: WebhookReceiver
    ) -> None:
        await wa.send(whatsapp("same"))
        await wa.send(whatsapp("same"))
        await eventually(lambda: whatsapp_fake.pending_webhooks == 0 and receiver.received != [])
        await asyncio.sleep(0.1)
        assert len(receiver.received) == 1
        assert whatsapp_fake.duplicates == 1

    async def test_the_answer_does_not_wait_for_the_callback(
        self, mail: EmailApiProvider, email_fake: FakeEmailApi, receiver: WebhookReceiver
    ) -> None:
        email_fake.report_statuses(StatusCallbacks(receiver.url(EMAIL_PATH), delay_seconds=0.5))
        started = time.monotonic()
        await mail.send(email())
        assert time.monotonic() - started < 0.4
        assert receiver.received == []
        assert email_fake.pending_webhooks == 1
        await eventually(lambda: len(receiver.received) == 1)
        assert time.monotonic() - started >= 0.5

    async def test_fcm_has_no_status_webhooks(
        self, fakes: dict[str, HttpFake], receiver: WebhookReceiver
    ) -> None:
        fake = fakes["fcm"]
        assert isinstance(fake, FakeFcm)
        fake.report_statuses(StatusCallbacks(receiver.url("/v1/webhooks/fcm")))
        provider = FcmPushProvider(
            "fcm",
            base_url=fake.base_url,
            project_id=fake.project_id,
            access_token=fake.access_token,
        )
        try:
            await provider.send(outbound(Channel.PUSH, "device-1", title="t", body="b"))
        finally:
            await provider.close()
            fake.reset()
        await asyncio.sleep(0.1)
        assert receiver.received == []
        with pytest.raises(NotImplementedError):
            await fake.send_inbound("device-1", "STOP", url=receiver.url())


class TestRetries:
    async def test_a_target_answering_5xx_gets_it_again(
        self, mail: EmailApiProvider, email_fake: FakeEmailApi, receiver: WebhookReceiver
    ) -> None:
        receiver.fail_next(2, 503)
        await mail.send(email())
        await eventually(lambda: len(receiver.received) == 1)
        await eventually(lambda: email_fake.pending_webhooks == 0)
        [outcome] = email_fake.webhooks
        assert (outcome.status, outcome.attempts, outcome.delivered) == (200, 3, True)
        assert receiver.requests == 3

    async def test_a_message_chorus_has_not_recorded_yet_gets_it_again(
        self, mail: EmailApiProvider, email_fake: FakeEmailApi, receiver: WebhookReceiver
    ) -> None:
        receiver.fail_next(1, 409)
        await mail.send(email())
        await eventually(lambda: len(receiver.received) == 1)
        # The outcome is recorded after the answer: wait for it, or the next test sees it.
        await eventually(lambda: email_fake.pending_webhooks == 0)
        [outcome] = email_fake.webhooks
        assert (outcome.status, outcome.attempts, outcome.delivered) == (200, 2, True)

    async def test_a_refused_request_is_not_sent_again(
        self, mail: EmailApiProvider, email_fake: FakeEmailApi, receiver: WebhookReceiver
    ) -> None:
        receiver.fail_next(1, 401)
        await mail.send(email())
        await eventually(lambda: email_fake.webhooks != [])
        [outcome] = email_fake.webhooks
        assert (outcome.status, outcome.attempts, outcome.delivered) == (401, 1, False)
        assert receiver.requests == 1

    async def test_a_target_that_comes_back_gets_it(
        self, mail: EmailApiProvider, email_fake: FakeEmailApi
    ) -> None:
        port = free_port()
        target = f"http://127.0.0.1:{port}{EMAIL_PATH}"
        email_fake.report_statuses(StatusCallbacks(target, **FAST))
        receipt = await mail.send(email())
        await asyncio.sleep(0.2)
        assert email_fake.pending_webhooks == 1
        restarted = WebhookReceiver()
        restarted.start(port=port)
        try:
            await eventually(lambda: len(restarted.received) == 1)
            [update] = parsed(mail, restarted, restarted.received[0])
        finally:
            restarted.stop()
        assert isinstance(update, StatusUpdate)
        assert update.provider_message_id == receipt.provider_message_id
        await eventually(lambda: email_fake.pending_webhooks == 0)
        [outcome] = email_fake.webhooks
        assert outcome.delivered
        assert outcome.attempts > 1

    async def test_it_gives_up_after_the_last_attempt(
        self, mail: EmailApiProvider, email_fake: FakeEmailApi
    ) -> None:
        target = f"http://127.0.0.1:{free_port()}/nobody"
        email_fake.report_statuses(StatusCallbacks(target, attempts=3, backoff_seconds=0.01))
        await mail.send(email())
        await eventually(lambda: email_fake.webhooks != [])
        [outcome] = email_fake.webhooks
        assert (outcome.status, outcome.attempts, outcome.delivered) == (None, 3, False)
        assert outcome.error == "ConnectionRefusedError"

    async def test_many_callbacks_share_kept_alive_connections(
        self, wa: WhatsAppCloudProvider, whatsapp_fake: FakeWhatsApp, receiver: WebhookReceiver
    ) -> None:
        await asyncio.gather(*(wa.send(whatsapp()) for _ in range(200)))
        await eventually(lambda: len(receiver.received) == 200)
        assert all(outcome.attempts == 1 for outcome in whatsapp_fake.webhooks)
        ids = {parsed(wa, receiver, r)[0].provider_message_id for r in receiver.received}
        assert len(ids) == 200

    def test_callback_settings_are_checked(self) -> None:
        with pytest.raises(ValueError, match="status must be one of"):
            StatusCallbacks("http://x", "lost")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="http"):
            StatusCallbacks("ftp://x")
        with pytest.raises(ValueError, match="attempts"):
            StatusCallbacks("http://x", attempts=0)


class TestInboundMessages:
    async def test_a_customer_writes_stop_by_sms(
        self, twilio: TwilioSmsProvider, twilio_fake: FakeTwilio, receiver: WebhookReceiver
    ) -> None:
        answer = await twilio_fake.send_inbound(
            "+447700900123", "STOP", url=receiver.url("/v1/webhooks/twilio-main")
        )
        assert answer.status_code == 200
        [inbound] = parsed(twilio, receiver, receiver.received[0])
        assert isinstance(inbound, InboundMessage)
        assert (inbound.channel, inbound.sender, inbound.text) == (
            Channel.SMS,
            "+447700900123",
            "STOP",
        )

    async def test_a_customer_writes_stop_on_whatsapp(
        self, wa: WhatsAppCloudProvider, whatsapp_fake: FakeWhatsApp, receiver: WebhookReceiver
    ) -> None:
        await whatsapp_fake.send_inbound("+447700900123", "STOP")  # to the callback URL
        [inbound] = parsed(wa, receiver, receiver.received[0])
        assert isinstance(inbound, InboundMessage)
        assert (inbound.channel, inbound.sender, inbound.text) == (
            Channel.WHATSAPP,
            "447700900123",
            "STOP",
        )

    async def test_a_customer_writes_stop_by_email(
        self, mail: EmailApiProvider, email_fake: FakeEmailApi, receiver: WebhookReceiver
    ) -> None:
        await email_fake.send_inbound("ada@example.org", "STOP")
        [inbound] = parsed(mail, receiver, receiver.received[0])
        assert isinstance(inbound, InboundMessage)
        assert (inbound.channel, inbound.sender, inbound.text) == (
            Channel.EMAIL,
            "ada@example.org",
            "STOP",
        )

    async def test_without_a_url_there_is_nowhere_to_send_it(self, twilio_fake: FakeTwilio) -> None:
        with pytest.raises(ValueError, match="no URL"):
            await twilio_fake.send_inbound("+447700900123")


class TestKnobsOverHttp:
    async def test_a_fake_in_another_process_is_told_what_to_do_over_http(
        self, wa: WhatsAppCloudProvider, whatsapp_fake: FakeWhatsApp, receiver: WebhookReceiver
    ) -> None:
        control = whatsapp_fake.base_url + "/_fake"
        async with httpx.AsyncClient() as client:
            assert (
                await client.post(f"{control}/fail", json={"count": 1, "status": 503})
            ).is_success
            with pytest.raises(ProviderError) as raised:
                await wa.send(whatsapp())
            assert (raised.value.status, raised.value.retryable) == (503, True)

            await client.post(
                f"{control}/callbacks",
                json={"url": receiver.url(WHATSAPP_PATH), "status": "failed"},
            )
            await wa.send(whatsapp())
            await eventually(lambda: len(receiver.received) == 1)
            [update] = parsed(wa, receiver, receiver.received[0])
            assert isinstance(update, StatusUpdate)
            assert update.status is DeliveryStatus.FAILED

            answer = await client.post(f"{control}/inbound", json={"from": "+447700900123"})
            assert answer.json() == {"status": 200, "error": None}
            [inbound] = parsed(wa, receiver, receiver.received[1])
            assert isinstance(inbound, InboundMessage)
            assert inbound.text == "STOP"

            stats = (await client.get(f"{control}/stats")).json()
            assert stats == {
                "requests": 2,
                "received": 1,
                "duplicates": 0,
                "webhooks": {"pending": 0, "delivered": 1, "failed": 0},
            }

            await client.post(f"{control}/rate_limit", json={"per_second": 1})
            await wa.send(whatsapp())
            with pytest.raises(ProviderError) as raised:
                await wa.send(whatsapp())
            assert raised.value.status == 429

            assert (await client.post(f"{control}/reset")).is_success
            assert (await client.get(f"{control}/stats")).json()["received"] == 0

            bad = await client.post(f"{control}/hang", json={"seconds": -1})
            assert bad.status_code == 400
            assert "seconds" in bad.json()["error"]
            assert (await client.post(f"{control}/explode")).status_code == 404


class TestAnswersThePosterReads:
    """Chorus answers through uvicorn, but any HTTP/1.1 answer must do."""

    @pytest.mark.parametrize(
        ("answer", "kept"),
        [
            (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", True),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;x=1\r\n{}\r\n0\r\nT: 1\r\n\r\n", True),
            (b"HTTP/1.1 204 No Content\r\n\r\n", True),
            (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n", True),
            (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", False),
            (b"HTTP/1.0 200 OK\r\n\r\nthe body ends with the connection", False),
        ],
    )  # fmt: skip
    async def test_an_answer_is_read_whole_and_the_connection_kept_if_it_may_be(
        self, answer: bytes, kept: bool
    ) -> None:
        requests: list[bytes] = []
        connections = 0

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal connections
            connections += 1
            try:
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                    requests.append(head + await reader.readexactly(length))
                    writer.write(answer)
                    await writer.drain()
                    if not kept:
                        writer.close()
                        return
            except asyncio.IncompleteReadError:
                writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        poster = WebhookPoster()
        hook = Webhook(f"http://127.0.0.1:{port}/hook?a=1", {"X-Signature": "s"}, b"body", "m-1")
        try:
            first = await poster.post(hook, StatusCallbacks())
            second = await poster.post(hook, StatusCallbacks())
        finally:
            await poster.aclose()
            server.close()
            await server.wait_closed()
        assert first.delivered
        assert second.delivered
        assert (first.attempts, second.attempts) == (1, 1)
        assert connections == (1 if kept else 2)
        assert requests[0].startswith(b"POST /hook?a=1 HTTP/1.1\r\nHost: 127.0.0.1:")
        assert b"\r\nX-Signature: s\r\n" in requests[0]
        assert requests[0].endswith(b"\r\n\r\nbody")
