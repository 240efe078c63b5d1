"""Text PostgreSQL can store and a person can read: no control characters, no lone surrogates."""

from __future__ import annotations

import re

__all__ = ["REDACTED", "has_control", "readable", "without_contacts"]

# C0 and C1 controls and lone surrogates; tab, line feed and carriage return are text.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_ANY_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")

REDACTED = "…"
"""What an email address or a phone number in a provider's text reads as (`without_contacts`)."""

# An email address (`local@domain.tld`, as an SMTP server echoes it); a phone number as
# providers write one: `+` and 7 to 15 digits, spaced or not, or 10 to 15 digits in a row
# (WhatsApp ids are the number's digits), never part of a longer word or number. SMTP codes
# (`550 5.1.1`), provider error codes (`30005`) and dates are left as they are.
_CONTACT = re.compile(
    r"[\w.!#$%&*+/?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+"
    r"|(?<![\w+])\+\d(?:[ .()-]{0,2}\d){6,14}(?!\w)"
    r"|(?<![\w+.])\d{10,15}(?![\w.])"
)


def has_control(value: str) -> bool:
    """Whether a one-line value (an identifier, a name) holds any control character."""
    return _ANY_CONTROL.search(value) is not None


def readable(text: str) -> str:
    """Free text with each control character or lone surrogate replaced by U+FFFD, so what a
    provider sent is kept, and stored, rather than refused."""
    return _CONTROL.sub("\ufffd", text)


def without_contacts(text: str) -> str:
    """A provider's text (a bounce's reason, a refusal) with each email address and phone number
    in it replaced by `REDACTED`: a delivery status notice often names its recipient
    (`550 5.1.1 <ana@example.org>: Recipient address rejected`), and what Chorus keeps of it
    is the diagnosis, not whom it was about (docs/erasure.md)."""
    return _CONTACT.sub(REDACTED, text)
