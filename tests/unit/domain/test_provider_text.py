"""What a provider says of a message is kept without the addresses and numbers it names."""

from __future__ import annotations

import pytest

from domain.shared.text import REDACTED, without_contacts


@pytest.mark.parametrize(
    ("said", "kept"),
    [
        (
            "550 5.1.1 <rv.echo@example.org>: Recipient address rejected",
            f"550 5.1.1 <{REDACTED}>: Recipient address rejected",
        ),
        (
            "smtp RCPT refused: 550 5.1.1 ana+news@mail.example.co.uk... User unknown",
            f"smtp RCPT refused: 550 5.1.1 {REDACTED}... User unknown",
        ),
        (
            "hard bounce: mailbox Ana.Lopes@Example.ORG full",
            f"hard bounce: mailbox {REDACTED} full",
        ),
        ("not delivered to +447700900123", f"not delivered to {REDACTED}"),
        ("not delivered to +44 7700 900123 (landline)", f"not delivered to {REDACTED} (landline)"),
        ("(#131026) 447700900123 is not on WhatsApp", f"(#131026) {REDACTED} is not on WhatsApp"),
    ],
)
def test_addresses_and_numbers_are_taken_out(said: str, kept: str) -> None:
    assert without_contacts(said) == kept


@pytest.mark.parametrize(
    "said",
    [
        "twilio error 30005: Unknown destination handset",
        "email api answered HTTP 422: invalid recipient",
        "451 4.7.1 Greylisted, try again at 2026-03-02 09:00:00",
        "message SM0123456789abcdef0123456789abcdef undelivered",
        "deferred: connection to 203.0.113.7 timed out after 1700000000.5",
        "(#131026) Message undeliverable",
    ],
)
def test_codes_ids_times_and_diagnoses_stay(said: str) -> None:
    assert without_contacts(said) == said
