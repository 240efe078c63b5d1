"""Email providers against local fakes: SMTP (aiosmtpd) and the JSON email API (uvicorn)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

import httpx
import pytest

from adapters.providers.email_api import EmailApiProvider, RetryLater, email_api_signature
from adapters.providers.fakes.email_api_server import FakeEmailApi
from adapters.providers.fakes.smtp_server import FakeSmtpServer
from adapters.providers.smtp import SmtpProvider, message_id_for
from domain.policy.vocabulary import Channel
from domain.shared.errors import InvalidValue
from ports.providers import (
    DeliveryStatus,
    InboundMessage,
    InvalidSignature,
    OutboundMessage,
    ProviderError,
    StatusUpdate,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

pytestmark = pytest.mark.integration

SENDER = "Chorus <news@chorus.example>"
UNSUBSCRIBE = {
    "List-Unsubscribe": "<https://chorus.example/u/tok123>",
    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
}


def email(key: str | None = None, **changes: object) -> OutboundMessage:
    fields: dict[str, object] = {
        "message_id": uuid.uuid4(),
        "idempotency_key": key or f"msg-{uuid.uuid4().hex}",
        "channel": Channel.EMAIL,
        "to": "ada@example.org",
        "subject": "Your order shipped",
        "body": "It is on its way.",
        "html": "<p>It is on its way.</p>",
        "headers": UNSUBSCRIBE,
    }
    fields.update(changes)
    return OutboundMessage(**fields)  # type: ignore[arg-type]


# -- SMTP ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[FakeSmtpServer]:
    with FakeSmtpServer() as server:
        yield server


@pytest.fixture
async def smtp(smtp_server: FakeSmtpServer) -> AsyncIterator[SmtpProvider]:
    smtp_server.reset()
    provider = SmtpProvider(
        "smtp-main", host="127.0.0.1", port=smtp_server.port, sender=SENDER, timeout=0.5
    )
    yield provider
    await provider.close()
    smtp_server.reset()


async def test_smtp_message_arrives_with_headers_and_a_stable_message_id(
    smtp: SmtpProvider, smtp_server: FakeSmtpServer
) -> None:
    message = email("order-42-shipped")
    receipt = await smtp.send(message)

    assert receipt.provider == "smtp-main"
    assert receipt.status is DeliveryStatus.SENT
    assert receipt.provider_message_id == message_id_for("order-42-shipped", SENDER)
    assert receipt.provider_message_id.endswith("@chorus.example>")
    [arrived] = smtp_server.received
    assert arrived["Subject"] == "Your order shipped"
    assert arrived["To"] == "ada@example.org"
    assert arrived["From"] == SENDER
    assert arrived["Message-ID"] == receipt.provider_message_id
    assert arrived["X-Chorus-Message-Id"] == str(message.message_id)
    assert arrived["List-Unsubscribe"] == UNSUBSCRIBE["List-Unsubscribe"]
    assert arrived["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = arrived.get_body(preferencelist=("plain",))
    html = arrived.get_body(preferencelist=("html",))
    assert text is not None
    assert text.get_content().strip() == "It is on its way."
    assert html is not None
    assert "<p>It is on its way.</p>" in html.get_content()
    assert smtp_server.envelopes == [("news@chorus.example", ["ada@example.org"])]


async def test_smtp_retry_with_the_same_key_is_recorded_once(
    smtp: SmtpProvider, smtp_server: FakeSmtpServer
) -> None:
    message = email()
    first = await smtp.send(message)
    second = await smtp.send(message)

    assert first.provider_message_id == second.provider_message_id
    assert len(smtp_server.received) == 1
    assert [m["Message-ID"] for m in smtp_server.duplicates] == [first.provider_message_id]
    await smtp.send(email())  # another key is another message
    assert len(smtp_server.received) == 2


async def test_smtp_4xx_is_retryable_and_5xx_is_not(
    smtp: SmtpProvider, smtp_server: FakeSmtpServer
) -> None:
    smtp_server.fail_next(1, code=451)
    with pytest.raises(ProviderError) as temporary:
        await smtp.send(email())
    assert temporary.value.retryable is True
    assert temporary.value.status == 451

    smtp_server.fail_next(1, code=550)
    with pytest.raises(ProviderError) as permanent:
        await smtp.send(email())
    assert permanent.value.retryable is False
    assert permanent.value.status == 550

    await smtp.send(email())  # the pool recovers from failed connections
    assert len(smtp_server.received) == 1
    assert smtp_server.attempts == 3


async def test_smtp_hang_beyond_the_timeout_is_a_retryable_timeout(
    smtp: SmtpProvider, smtp_server: FakeSmtpServer
) -> None:
    message = email()
    smtp_server.hang(3.0, count=1)
    with pytest.raises(ProviderError) as timed_out:
        await smtp.send(message)
    assert timed_out.value.retryable is True
    assert "timed out" in timed_out.value.reason
    assert smtp_server.received == []  # the client gave up before the reply: not delivered

    receipt = await smtp.send(message)
    assert [m["Message-ID"] for m in smtp_server.received] == [receipt.provider_message_id]


async def test_smtp_unreachable_server_is_retryable() -> None:
    with FakeSmtpServer() as server:
        port = server.port
    provider = SmtpProvider("smtp-down", host="127.0.0.1", port=port, sender=SENDER, timeout=1)
    with pytest.raises(ProviderError) as unreachable:
        await provider.send(email())
    assert unreachable.value.retryable is True
    await provider.close()


async def test_smtp_login_and_a_refused_password_that_is_never_shown() -> None:
    with FakeSmtpServer(credentials=("chorus", "s3cret-pw")) as server:
        good = SmtpProvider(
            "smtp-auth",
            host="127.0.0.1",
            port=server.port,
            username="chorus",
            password="s3cret-pw",
            sender=SENDER,
        )
        await good.send(email())
        await good.close()
        assert len(server.received) == 1

        bad = SmtpProvider(
            "smtp-auth",
            host="127.0.0.1",
            port=server.port,
            username="chorus",
            password="wrong-pw-123",
            sender=SENDER,
        )
        with pytest.raises(ProviderError) as refused:
            await bad.send(email())
        await bad.close()
    assert refused.value.retryable is False
    assert refused.value.status == 535
    assert "wrong-pw-123" not in str(refused.value)
    assert "wrong-pw-123" not in repr(bad)


async def test_smtp_refuses_header_injection_and_has_no_webhooks(smtp: SmtpProvider) -> None:
    with pytest.raises(ProviderError) as injected:
        await smtp.send(email(headers={"X-Tag": "a\r\nBcc: eve@example.org"}))
    assert injected.value.retryable is False
    with pytest.raises(ProviderError):
        await smtp.send(email(headers={"Message-ID": "<mine@example.org>"}))
    with pytest.raises(InvalidSignature):
        smtp.parse_webhook({}, b"[]", "https://chorus.example/v1/webhooks/smtp-main")


# -- Email API -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def email_api_server() -> Iterator[FakeEmailApi]:
    with FakeEmailApi(api_key="api-key-123", webhook_secret="whsec-456") as server:
        yield server


@pytest.fixture
async def email_api(email_api_server: FakeEmailApi) -> AsyncIterator[EmailApiProvider]:
    email_api_server.reset()
    provider = EmailApiProvider(
        "mailer",
        base_url=email_api_server.base_url,
        api_key="api-key-123",
        webhook_secret="whsec-456",
        sender="news@chorus.example",
        timeout=0.5,
    )
    yield provider
    await provider.close()
    email_api_server.reset()


async def test_email_api_send_answers_the_provider_id_and_cost(
    email_api: EmailApiProvider, email_api_server: FakeEmailApi
) -> None:
    message = email("welcome-7")
    receipt = await email_api.send(message)

    assert receipt.provider == "mailer"
    assert receipt.provider_message_id.startswith("em_")
    assert receipt.status is DeliveryStatus.QUEUED
    assert receipt.cost == Decimal("0.0008")
    assert receipt.currency == "USD"
    [arrived] = email_api_server.received
    assert arrived.id == receipt.provider_message_id
    assert arrived.idempotency_key == "welcome-7"
    assert (arrived.sender, arrived.to, arrived.subject) == (
        "news@chorus.example",
        "ada@example.org",
        "Your order shipped",
    )
    assert (arrived.text, arrived.html) == ("It is on its way.", "<p>It is on its way.</p>")
    assert arrived.headers == UNSUBSCRIBE
    assert arrived.metadata == {"chorus_message_id": str(message.message_id)}


async def test_email_api_idempotent_retry_answers_the_same_id_once(
    email_api: EmailApiProvider, email_api_server: FakeEmailApi
) -> None:
    message = email()
    first = await email_api.send(message)
    second = await email_api.send(message)

    assert second.provider_message_id == first.provider_message_id
    assert len(email_api_server.received) == 1
    assert email_api_server.duplicates == 1


async def test_email_api_accepted_but_timed_out_then_retried_is_sent_once(
    email_api: EmailApiProvider, email_api_server: FakeEmailApi
) -> None:
    message = email()
    email_api_server.hang(1.5, accept=True)
    with pytest.raises(ProviderError) as timed_out:
        await email_api.send(message)
    assert timed_out.value.retryable is True
    assert "timed out" in timed_out.value.reason

    email_api_server.hang(0)
    receipt = await email_api.send(message)
    assert [r.id for r in email_api_server.received] == [receipt.provider_message_id]


async def test_email_api_429_is_retryable_and_says_when(
    email_api: EmailApiProvider, email_api_server: FakeEmailApi
) -> None:
    email_api_server.fail_next(1, status=429)
    with pytest.raises(RetryLater) as limited:
        await email_api.send(email())
    assert limited.value.retryable is True
    assert limited.value.status == 429
    assert limited.value.retry_after == 1.0
    assert "retry after 1s" in limited.value.reason

    email_api_server.rate_limit(2)
    await email_api.send(email())
    await email_api.send(email())
    with pytest.raises(RetryLater) as over:
        await email_api.send(email())
    assert over.value.status == 429
    assert over.value.retry_after == 1.0


async def test_email_api_5xx_is_retryable_and_400_is_not(
    email_api: EmailApiProvider, email_api_server: FakeEmailApi
) -> None:
    email_api_server.fail_next(1, status=500)
    with pytest.raises(ProviderError) as broken:
        await email_api.send(email())
    assert (broken.value.retryable, broken.value.status) == (True, 500)

    email_api_server.fail_next(1, status=400)
    with pytest.raises(ProviderError) as refused:
        await email_api.send(email())
    assert (refused.value.retryable, refused.value.status) == (False, 400)

    with pytest.raises(ProviderError) as invalid:
        await email_api.send(email(to="not-an-address"))
    assert (invalid.value.retryable, invalid.value.status) == (False, 400)
    assert email_api_server.received == []


async def test_email_api_wrong_key_is_not_retryable_and_never_shown(
    email_api_server: FakeEmailApi,
) -> None:
    provider = EmailApiProvider(
        "mailer",
        base_url=email_api_server.base_url,
        api_key="stolen-key-999",
        webhook_secret="whsec-456",
        sender="news@chorus.example",
    )
    with pytest.raises(ProviderError) as unauthorized:
        await provider.send(email())
    await provider.close()
    assert (unauthorized.value.retryable, unauthorized.value.status) == (False, 401)
    assert "stolen-key-999" not in str(unauthorized.value)
    assert "stolen-key-999" not in repr(provider)


async def test_email_api_hang_beyond_the_timeout_is_retryable(
    email_api: EmailApiProvider, email_api_server: FakeEmailApi
) -> None:
    email_api_server.hang(1.5)
    with pytest.raises(ProviderError) as timed_out:
        await email_api.send(email())
    assert timed_out.value.retryable is True
    assert email_api_server.received == []


async def test_email_api_signed_webhook_maps_events_to_statuses(
    email_api: EmailApiProvider, email_api_server: FakeEmailApi
) -> None:
    at = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    event = FakeEmailApi.event
    events = [
        event("em_1", "delivered", timestamp=at),
        event("em_1", "open", timestamp=at),
        event("em_2", "bounce", bounce_type="hard", reason="550 no such user", timestamp=at),
        event("em_3", "bounce", bounce_type="soft", reason="mailbox full", timestamp=at),
        event("em_4", "complaint", timestamp=at),
        event("em_5", "dropped", reason="suppressed", timestamp=at),
        event("em_6", "deferred", reason="greylisted", timestamp=at),
        event("em_7", "clicked-a-new-kind-of-event", timestamp=at),
    ]
    headers, body = email_api_server.signed_webhook(events)
    updates = email_api.parse_webhook(headers, body, "https://chorus.example/v1/webhooks/mailer")

    assert all(isinstance(u, StatusUpdate) for u in updates)
    assert [(u.provider_message_id, u.status) for u in updates] == [
        ("em_1", DeliveryStatus.DELIVERED),
        ("em_1", DeliveryStatus.READ),
        ("em_2", DeliveryStatus.BOUNCED),
        ("em_3", DeliveryStatus.FAILED),
        ("em_4", DeliveryStatus.COMPLAINED),
        ("em_5", DeliveryStatus.FAILED),
        ("em_6", DeliveryStatus.SENT),
    ]
    bounced = updates[2]
    assert isinstance(bounced, StatusUpdate)
    assert bounced.provider == "mailer"
    assert bounced.at == at
    assert bounced.reason == "hard bounce: 550 no such user"
    assert bounced.raw["id"] == events[2]["id"]


async def test_email_api_webhook_signature_and_shape_are_checked(
    email_api: EmailApiProvider, email_api_server: FakeEmailApi
) -> None:
    url = "https://chorus.example/v1/webhooks/mailer"
    headers, body = email_api_server.signed_webhook([FakeEmailApi.event("em_1", "delivered")])
    forged = body.replace(b"delivered", b"complaint")
    with pytest.raises(InvalidSignature):
        email_api.parse_webhook(headers, forged, url)
    with pytest.raises(InvalidSignature):
        email_api.parse_webhook({"X-Signature": email_api_signature("guess", body)}, body, url)
    with pytest.raises(InvalidSignature):
        email_api.parse_webhook({}, body, url)

    def signed(raw: bytes) -> dict[str, str]:
        return {"x-signature": email_api_signature("whsec-456", raw)}  # any header case

    with pytest.raises(ValueError, match="not JSON"):
        email_api.parse_webhook(signed(b"[{"), b"[{", url)
    missing = json.dumps([{"id": "evt_1", "event": "delivered"}]).encode()
    with pytest.raises(ValueError, match="message_id"):
        email_api.parse_webhook(signed(missing), missing, url)
    bad_time = json.dumps(
        [{"id": "e", "message_id": "m", "event": "open", "timestamp": "yesterday"}]
    ).encode()
    with pytest.raises(ValueError, match="timestamp"):
        email_api.parse_webhook(signed(bad_time), bad_time, url)


async def test_email_api_inbound_email_becomes_an_inbound_message(
    email_api: EmailApiProvider, email_api_server: FakeEmailApi
) -> None:
    inbound = FakeEmailApi.inbound("ada@example.org", "Where is my parcel?", subject="Re: order")
    captured: list[httpx.Request] = []

    def receive(request: httpx.Request) -> httpx.Response:
        captured.append(request)
        return httpx.Response(204)

    async with httpx.AsyncClient(transport=httpx.MockTransport(receive)) as client:
        answer = await email_api_server.emit_webhook(
            "https://chorus.example/v1/webhooks/mailer", inbound, client=client
        )
    assert answer.status_code == 204
    [request] = captured
    [message] = email_api.parse_webhook(dict(request.headers), request.content, str(request.url))

    assert isinstance(message, InboundMessage)
    assert message.channel is Channel.EMAIL
    assert message.provider == "mailer"
    assert message.sender == "ada@example.org"
    assert message.text == "Where is my parcel?"
    assert message.provider_message_id == inbound["message_id"]
    assert message.at is not None


@pytest.mark.parametrize("text", [12345, None, {"a": 1}, ["I", "want", "refund"]])
async def test_email_api_inbound_email_whose_text_is_no_text_is_refused_naming_text(
    email_api: EmailApiProvider, text: object
) -> None:
    url = "https://chorus.example/v1/webhooks/mailer"
    inbound = {**FakeEmailApi.inbound("ada@example.org", "hello"), "text": text}
    for payload, field in ((inbound, "text"), ([inbound], "[0].text")):
        raw = json.dumps(payload).encode()
        headers = {"X-Signature": email_api_signature("whsec-456", raw)}
        with pytest.raises(InvalidValue) as refused:
            email_api.parse_webhook(headers, raw, url)
        assert refused.value.field == field
