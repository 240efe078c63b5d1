"""Twilio's status callbacks, mapped: a number that cannot take an SMS, for good, bounces."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from adapters.providers.twilio_sms import TWILIO_BOUNCES, TwilioSmsProvider, twilio_signature
from ports.providers import DeliveryStatus, StatusUpdate

URL = "https://chorus.example.com/v1/webhooks/twilio-main"
TOKEN = "the-auth-token"


def twilio() -> TwilioSmsProvider:
    return TwilioSmsProvider(
        "twilio-main",
        base_url="https://api.twilio.example",
        account_sid="AC0123456789abcdef0123456789abcdef",
        auth_token=TOKEN,
        from_number="+15005550006",
    )


def callback(status: str, error: str | None = None, message: str | None = None) -> StatusUpdate:
    form = {"MessageSid": "SM1", "MessageStatus": status, "To": "+14155550100"}
    if error is not None:
        form["ErrorCode"] = error
    if message is not None:
        form["ErrorMessage"] = message
    headers = {"X-Twilio-Signature": twilio_signature(TOKEN, URL, form.items())}
    (update,) = twilio().parse_webhook(headers, urlencode(form).encode(), URL)
    assert isinstance(update, StatusUpdate)
    return update


@pytest.mark.parametrize("state", ["undelivered", "failed"])
@pytest.mark.parametrize("code", sorted(TWILIO_BOUNCES))
def test_a_number_that_cannot_take_an_sms_bounces(state: str, code: str) -> None:
    update = callback(state, code)
    assert update.status is DeliveryStatus.BOUNCED
    assert update.reason == f"twilio error {code}"


def test_the_codes_are_twilios_for_numbers_that_do_not_exist_or_are_not_mobile() -> None:
    assert {"30005", "30006", "21211", "21614"} == TWILIO_BOUNCES


@pytest.mark.parametrize(
    ("state", "code"),
    [
        ("undelivered", "30003"),  # unreachable now: off, out of coverage
        ("failed", "30007"),  # filtered by the carrier
        ("undelivered", "30008"),  # unknown error
        ("undelivered", None),
        ("canceled", "30005"),  # Chorus's own cancel, not the number's fault
    ],
)
def test_other_failures_stay_failed(state: str, code: str | None) -> None:
    assert callback(state, code).status is DeliveryStatus.FAILED


def test_the_reason_keeps_twilios_message() -> None:
    update = callback("undelivered", "30005", "Unknown destination handset")
    assert (update.status, update.reason) == (
        DeliveryStatus.BOUNCED,
        "twilio error 30005: Unknown destination handset",
    )


def test_a_delivery_is_a_delivery() -> None:
    update = callback("delivered")
    assert (update.status, update.reason) == (DeliveryStatus.DELIVERED, None)
