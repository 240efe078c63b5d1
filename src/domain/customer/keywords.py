"""Inbound keywords that change consent at once, as carriers and regulators expect."""

from __future__ import annotations

from domain.customer.contact import ConsentRecord
from domain.policy.vocabulary import Channel

__all__ = ["HELP_WORDS", "INBOUND_SIGNAL", "consent_from_keyword"]

INBOUND_SIGNAL = "message.received"
"""The signal type of a message a customer sent us; properties `channel` and `text`."""

_OPT_OUT = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT"})
_OPT_IN = frozenset({"START", "UNSTOP", "YES", "OPTIN"})
HELP_WORDS = frozenset({"HELP", "INFO"})


def consent_from_keyword(channel: Channel, text: str) -> ConsentRecord | None:
    """STOP and friends opt the customer out of the channel; START opts back in.

    Only a message that is the keyword alone counts (case and surrounding punctuation aside),
    so "please don't stop my order" changes nothing.
    """
    word = text.strip().strip(".!").upper()
    if word in _OPT_OUT:
        return ConsentRecord(channel, None, False, f"inbound {word}")
    if word in _OPT_IN:
        return ConsentRecord(channel, None, True, f"inbound {word}")
    return None
