"""The assistant's classifier: intent, sentiment and urgency of an inbound message."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from domain.assistant.classification import Classification, CustomerContext

__all__ = ["Classifier"]


class Classifier(Protocol):
    """Classifies a message; never raises on bad input, which comes back unknown with its reason."""

    def classify(self, text: object, context: CustomerContext | None = None) -> Classification:
        """Intent with confidence, sentiment with score, urgency from both and the context."""
        ...
