"""A message's classification, and the input the classifier refuses to guess about."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from domain.shared.errors import DomainError

__all__ = [
    "MAX_TEXT_CHARS",
    "UNKNOWN_INTENT",
    "Classification",
    "CustomerContext",
    "Sentiment",
    "UnclassifiableText",
    "UnknownReason",
    "Urgency",
    "classifiable_text",
    "sentiment_of",
]

MAX_TEXT_CHARS = 10_000
UNKNOWN_INTENT = "unknown"


class UnknownReason(enum.StrEnum):
    """Why a message was classified as unknown rather than given an intent."""

    NOT_TEXT = "not_text"
    EMPTY = "empty"
    TOO_LONG = "too_long"
    NOT_ENGLISH = "not_english"
    LOW_CONFIDENCE = "low_confidence"


class Sentiment(enum.StrEnum):
    """The tone of a message, from its sentiment score."""

    NEGATIVE = "negative"
    NEUTRAL = "neutral"
    POSITIVE = "positive"


class Urgency(enum.IntEnum):
    """How soon a person should look at a message."""

    LOW = 0
    NORMAL = 1
    HIGH = 2
    CRITICAL = 3


class UnclassifiableText(DomainError, ValueError):
    """The input is not a message the classifier can read: empty, huge or not text."""

    def __init__(self, reason: UnknownReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class CustomerContext:
    """What urgency needs to know about the customer who wrote."""

    tier: str | None = None
    open_conversations: int = 0
    recent_negative_messages: int = 0


@dataclass(frozen=True, slots=True)
class Classification:
    """Intent with its confidence, sentiment with its score, urgency, and why if unknown."""

    intent: str
    confidence: float
    sentiment: Sentiment
    sentiment_score: float
    urgency: Urgency
    unknown_reason: UnknownReason | None = None

    @property
    def known(self) -> bool:
        return self.unknown_reason is None


def classifiable_text(value: object) -> str:
    """The text itself, stripped, or UnclassifiableText naming why it cannot be read."""
    if not isinstance(value, str):
        raise UnclassifiableText(
            UnknownReason.NOT_TEXT, f"expected text, got {type(value).__name__}"
        )
    if len(value) > MAX_TEXT_CHARS:
        raise UnclassifiableText(
            UnknownReason.TOO_LONG, f"{len(value)} characters, at most {MAX_TEXT_CHARS}"
        )
    text = value.strip()
    if not text:
        raise UnclassifiableText(UnknownReason.EMPTY, "no text to classify")
    return text


def sentiment_of(score: float) -> Sentiment:
    """The sentiment of a compound score in [-1, 1], with VADER's customary cut-offs."""
    if score >= 0.05:
        return Sentiment.POSITIVE
    if score <= -0.05:
        return Sentiment.NEGATIVE
    return Sentiment.NEUTRAL
