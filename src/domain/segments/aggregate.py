"""A segment: a named condition over customers, versioned; and the facts of who is in it."""

from __future__ import annotations

from datetime import datetime  # events carry these types; eventsourcing resolves them at run time
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.segments.conditions import Condition
from domain.shared.definitions import KeyedDefinition
from domain.shared.keys import check_key, keyed_id

__all__ = [
    "Membership",
    "Segment",
    "check_segment_key",
    "membership_id",
    "segment_id",
]

_NAMESPACE = UUID("3b0f6f0e-2f5d-4a8e-9a55-6c1b7d2f9e41")


def check_segment_key(key: str) -> str:
    """The key, if it is one: lower-case letters, digits, `_`, `.`, `-`; at most 64."""
    return check_key(key, "segment", "lapsed-buyers")


def segment_id(key: str) -> UUID:
    return keyed_id(_NAMESPACE, check_segment_key(key))


def membership_id(segment: UUID, customer: UUID) -> UUID:
    """The stream of one customer's entries into and exits from one segment."""
    return uuid5(segment, str(customer))


class Segment(KeyedDefinition[Condition]):
    """Who counts as, say, a lapsed buyer. Each change of the condition is a new version;
    membership is re-evaluated against the version in force."""

    @event("Defined")
    def __init__(
        self,
        id: UUID,
        timestamp: datetime,
        key: str,
        name: str,
        description: str,
        condition: Condition,
        author: str,
    ) -> None:
        self.key = key
        self.name = name
        self.description = description
        self.condition = condition
        self.number = 1
        self.deleted = False
        self.changed_at = timestamp

    @classmethod
    def define(
        cls,
        key: str,
        name: str,
        description: str,
        condition: Condition,
        author: str,
        at: datetime,
    ) -> Segment:
        return cls(
            id=segment_id(key),
            timestamp=at,
            key=key,
            name=name,
            description=description,
            condition=condition,
            author=author,
        )

    @property
    def definition(self) -> Condition:
        return self.condition

    # events: each method body is the state change the event makes (Deleted and Restored are
    # KeyedDefinition's)

    @event("Redefined")
    def _redefined(
        self, timestamp: datetime, name: str, description: str, condition: Condition, author: str
    ) -> None:
        self.name = name
        self.description = description
        self.condition = condition
        self.number += 1
        self.changed_at = timestamp


class Membership(Aggregate):
    """One customer in one segment: entered and exited as conditions and time decide.

    Built only by its events; the evaluator appends them with the version it tracks.
    """

    class Entered(Aggregate.Event):
        segment_id: UUID
        segment_key: str
        segment_version: int
        customer_id: UUID

        @property
        def subject_id(self) -> UUID:
            """The customer who entered or exited."""
            return self.customer_id

        def apply(self, aggregate: Aggregate) -> None:
            pass

    class Exited(Aggregate.Event):
        segment_id: UUID
        segment_key: str
        segment_version: int
        customer_id: UUID
        reason: str  # "condition" | "merged" | "segment deleted"

        @property
        def subject_id(self) -> UUID:
            """The customer who entered or exited."""
            return self.customer_id

        def apply(self, aggregate: Aggregate) -> None:
            pass
