"""What some signals change on their customer, beyond being recorded."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from domain.customer.contact import ConsentRecord
from domain.customer.keywords import INBOUND_SIGNAL, consent_from_keyword
from domain.policy.vocabulary import Channel, Purpose

if TYPE_CHECKING:
    from datetime import datetime

    from domain.customer.aggregate import Customer

__all__ = [
    "CONSENT_GRANTED",
    "CONSENT_WITHDRAWN",
    "CUSTOMER_SIGNALS",
    "apply_signal",
    "changes_consent",
]

CONSENT_GRANTED = "consent.granted"
CONSENT_WITHDRAWN = "consent.withdrawn"
CUSTOMER_SIGNALS = frozenset({INBOUND_SIGNAL, CONSENT_GRANTED, CONSENT_WITHDRAWN})
"""Signal types that change the customer they are about."""

_CHANNELS = frozenset(c.value for c in Channel)
_PURPOSES = frozenset(p.value for p in Purpose)


def changes_consent(signal_type: str, properties: dict[str, Any]) -> bool:
    """Whether the signal changes its customer's consent: a consent signal on a channel, or an
    inbound message that is a keyword alone (STOP, START). An opt-out takes effect at once."""
    channel = properties.get("channel")
    if channel not in _CHANNELS:
        return False
    if signal_type != INBOUND_SIGNAL:
        return signal_type in CUSTOMER_SIGNALS
    text = properties.get("text")
    return isinstance(text, str) and consent_from_keyword(Channel(channel), text) is not None


def apply_signal(
    customer: Customer,
    signal_type: str,
    properties: dict[str, Any],
    occurred_at: datetime,
    source: str | None,
    at: datetime,
) -> None:
    """Inbound messages open service windows and carry STOP/START; consent signals change consent.

    Properties: `channel` (and `text` for a message, `purpose` for consent; no purpose means the
    whole channel). A signal whose properties do not say which channel is only recorded.
    """
    channel = properties.get("channel")
    if channel not in _CHANNELS:
        return
    if signal_type == INBOUND_SIGNAL:
        text = properties.get("text")
        if isinstance(text, str):
            customer.receive_inbound(Channel(channel), text, occurred_at, at)
        return
    purpose = properties.get("purpose")
    if purpose is not None and purpose not in _PURPOSES:
        return
    change = ConsentRecord(
        Channel(channel),
        Purpose(purpose) if purpose is not None else None,
        signal_type == CONSENT_GRANTED,
        str(properties.get("proof") or source or signal_type),
    )
    customer.change_consent(change, at)
