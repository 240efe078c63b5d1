"""A segment: a named condition over customers, versioned; and the facts of who is in it."""

from __future__ import annotations

import re
from datetime import datetime  # events carry these types; eventsourcing resolves them at run time
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.segments.conditions import Condition
from domain.shared.errors import DomainError, InvalidValue

__all__ = [
    "Membership",
    "Segment",
    "SegmentDeleted",
    "check_segment_key",
    "membership_id",
    "segment_id",
]

_NAMESPACE = UUID("3b0f6f0e-2f5d-4a8e-9a55-6c1b7d2f9e41")
_KEY = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


def check_segment_key(key: str) -> str:
    """The key, if it is one: lower-case letters, digits, `_`, `.`, `-`; at most 64."""
    if not _KEY.match(key):
        raise InvalidValue(
            "key", f"{key!r} is not a segment key like 'lapsed-buyers' (a-z, 0-9, _ . -, ≤ 64)"
        )
    return key


def segment_id(key: str) -> UUID:
    return uuid5(_NAMESPACE, check_segment_key(key))


def membership_id(segment: UUID, customer: UUID) -> UUID:
    """The stream of one customer's entries into and exits from one segment."""
    return uuid5(segment, str(customer))


class SegmentDeleted(DomainError):
    """The segment was deleted; its key can be defined again."""


class Segment(Aggregate):
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

    def same_as(self, name: str, description: str, condition: Condition) -> bool:
        return (self.name, self.description, self.condition) == (name, description, condition)

    def redefine(
        self, name: str, description: str, condition: Condition, author: str, at: datetime
    ) -> bool:
        """A new version, or nothing when it is the same as the one in force."""
        if self.deleted:
            self._restored(timestamp=at, author=author)
        elif self.same_as(name, description, condition):
            return False
        self._redefined(
            timestamp=at, name=name, description=description, condition=condition, author=author
        )
        return True

    def delete(self, author: str, at: datetime) -> bool:
        if self.deleted:
            return False
        self._deleted(timestamp=at, author=author)
        return True

    # events: each method body is the state change the event makes

    @event("Redefined")
    def _redefined(
        self, timestamp: datetime, name: str, description: str, condition: Condition, author: str
    ) -> None:
        self.name = name
        self.description = description
        self.condition = condition
        self.number += 1
        self.changed_at = timestamp

    @event("Deleted")
    def _deleted(self, timestamp: datetime, author: str) -> None:
        self.deleted = True
        self.changed_at = timestamp

    @event("Restored")
    def _restored(self, timestamp: datetime, author: str) -> None:
        self.deleted = False


class Membership(Aggregate):
    """One customer in one segment: entered and exited as conditions and time decide.

    Built only by its events; the evaluator appends them with the version it tracks.
    """

    class Entered(Aggregate.Event):
        segment_id: UUID
        segment_key: str
        segment_version: int
        customer_id: UUID

        def apply(self, aggregate: Aggregate) -> None:
            pass

    class Exited(Aggregate.Event):
        segment_id: UUID
        segment_key: str
        segment_version: int
        customer_id: UUID
        reason: str  # "condition" | "merged" | "segment deleted"

        def apply(self, aggregate: Aggregate) -> None:
            pass
