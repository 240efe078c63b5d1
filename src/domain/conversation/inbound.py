"""What an inbound message signal must say for its conversation to read it.

A `message.received` signal is a customer's message: `properties.channel` is the channel it came
on, one Chorus knows and one the signal's identities write on (`CHANNEL_IDENTITIES`: an email
address writes email, a phone number SMS, WhatsApp or voice, a WhatsApp id WhatsApp, an account
chat, a device token push); `properties.topic`, when given, names its conversation by a key
(`order-42`; the default topic otherwise). The edge refuses a signal that says either wrongly
(`message_fault`), naming the property and why; the conversations read a recorded one whatever
it says (`topic_fault` tells them a topic to set aside).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from domain.customer.keywords import INBOUND_SIGNAL
from domain.policy.vocabulary import CHANNEL_IDENTITIES, Channel
from domain.shared.keys import KEY_PATTERN

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping

__all__ = [
    "INBOUND_MESSAGE_SIGNALS",
    "MAX_TOPIC_LENGTH",
    "channel_fault",
    "known_channel",
    "message_fault",
    "topic_fault",
]

INBOUND_MESSAGE_SIGNALS = frozenset({INBOUND_SIGNAL})
"""The signal types the conversations read as a customer's message."""

MAX_TOPIC_LENGTH = 64
"""A topic key's characters, at most (`KEY_PATTERN`)."""

_KEY = re.compile(KEY_PATTERN)
_CHANNELS = {channel.value: channel for channel in Channel}
_NAMES = ", ".join(sorted(_CHANNELS))
_TOPIC_KEY = "a topic key like 'order-42' (a-z, 0-9, _ . -, starting with a letter or a digit)"


def known_channel(value: object) -> Channel | None:
    """The channel `value` names, if it names one Chorus knows."""
    return _CHANNELS.get(value) if isinstance(value, str) else None


def channel_fault(value: object) -> str | None:
    """Why `value` is no channel an inbound message may come on, if it is none."""
    if known_channel(value) is not None:
        return None
    if value is None:
        return f"is needed: the channel the message came on, one of {_NAMES}"
    if not isinstance(value, str):
        return f"must be a string, one of {_NAMES}"
    return f"is not a channel Chorus knows: one of {_NAMES}"


def topic_fault(value: object) -> str | None:
    """Why `value` (given: no topic at all is the default one) names no conversation topic."""
    if not isinstance(value, str):
        return f"must be a string: {_TOPIC_KEY}"
    if len(value) > MAX_TOPIC_LENGTH:
        return f"is {len(value):,} characters long: {_TOPIC_KEY}, at most {MAX_TOPIC_LENGTH}"
    if not _KEY.match(value):
        return f"is not {_TOPIC_KEY}"
    return None


def message_fault(
    signal_type: str, properties: Mapping[str, Any], identity_types: Collection[str]
) -> tuple[str, str] | None:
    """The property (its JSON path) and why, when an inbound message signal cannot be threaded
    as it says; None for a good one, and for any other signal."""
    if signal_type not in INBOUND_MESSAGE_SIGNALS:
        return None
    given = properties.get("channel")
    channel = known_channel(given)
    if channel is None:
        return "$.properties.channel", channel_fault(given) or ""
    writers = CHANNEL_IDENTITIES[channel]
    if not any(kind in writers for kind in identity_types):
        named = " or ".join(writers)
        kinds = ", ".join(sorted(set(identity_types)))
        reason = f"is '{channel}', whose messages come from a {named} identity"
        return "$.properties.channel", f"{reason}; the signal names only {kinds}"
    topic = properties.get("topic")
    fault = None if topic is None else topic_fault(topic)
    return None if fault is None else ("$.properties.topic", fault)
