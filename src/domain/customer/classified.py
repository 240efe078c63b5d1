"""A customer's classified messages, as segment conditions and the context read them.

Each inbound message's classification is a `Customer.MessageClassified` event. The
signal_activity read model keeps it with the customer's signals under `CLASSIFIED_SIGNAL`, a
type no signal can have (a signal type never holds `/`), with `classified_properties` as its
properties: the `classified` segment condition counts them as `signal_count` counts signals.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from domain.assistant.classification import Urgency
from domain.assistant.intents import canonical_intent

__all__ = ["CLASSIFIED_SIGNAL", "URGENCIES", "classified_properties", "urgency_name"]

CLASSIFIED_SIGNAL = "chorus/message.classified"
"""The type a classified message is kept under among a customer's signals."""

URGENCIES: dict[str, int] = {level.name.lower(): level.value for level in Urgency}
"""Urgency names (`low` .. `critical`) and their ranks."""


def urgency_name(level: Urgency) -> str:
    """`high` for Urgency.HIGH: how events and documents name an urgency."""
    return level.name.lower()


def classified_properties(event: Mapping[str, Any]) -> dict[str, Any]:
    """What a `MessageClassified` event's fields (`event`) say, as the properties conditions
    filter on: intent (by its key, whatever the event's version spelled), confidence,
    sentiment, score, urgency and channel, and `urgency_rank` to order urgencies (low 0 ..
    critical 3)."""
    urgency = str(event["urgency"])
    return {
        "intent": canonical_intent(str(event["intent"])),
        "confidence": event["confidence"],
        "sentiment": str(event["sentiment"]),
        "score": event["score"],
        "urgency": urgency,
        "urgency_rank": URGENCIES.get(urgency, 0),
        "channel": str(event["channel"]),
    }
