"""The routing book: every published routing document, in versions. Publishing is an event.

A decision cites the version it used (`RoutingDecision.version`); old versions stay readable
(`policy_of`), so an auditor reads the rules a conversation was routed by.
"""

from __future__ import annotations

from datetime import datetime  # events carry these types; eventsourcing resolves them at run time
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.conversation.routing import RoutingDocument, RoutingPolicy
from domain.shared.errors import InvalidValue, NotFound
from domain.shared.topics import StoredAs

__all__ = ["ROUTING_BOOK_ID", "NoRoutingYet", "RoutingBook"]

ROUTING_BOOK_ID = UUID("3f8b2d6a-5c1e-4a97-b0d3-7e6f1a2c9b58")
"""One routing book per installation."""


class NoRoutingYet(NotFound):
    """No routing document was ever published."""


class RoutingBook(Aggregate):
    """Holds the routing document in force and every earlier version."""

    stored_as = StoredAs("domain.conversation.routing_book:RoutingBook")

    @event("Opened")
    def __init__(self, id: UUID, timestamp: datetime) -> None:
        self.versions: dict[int, RoutingDocument] = {}
        self.published_at: datetime | None = None
        self.author: str | None = None

    @classmethod
    def open(cls, at: datetime) -> RoutingBook:
        return cls(id=ROUTING_BOOK_ID, timestamp=at)

    @property
    def current(self) -> RoutingPolicy:
        """The routing in force."""
        if not self.versions:
            raise NoRoutingYet("no routing document has been published")
        version = max(self.versions)
        return RoutingPolicy(version, self.versions[version])

    def policy_of(self, version: int) -> RoutingPolicy:
        """Any published version, for the decisions that cite it."""
        try:
            return RoutingPolicy(version, self.versions[version])
        except KeyError:
            raise InvalidValue("version", f"no routing version {version}") from None

    def publish(self, document: RoutingDocument, by: str, at: datetime) -> RoutingPolicy:
        """Publishes a checked document (`routing_reader.decode_routing`) as the next version."""
        version = max(self.versions, default=0) + 1
        self._published(timestamp=at, version=version, document=document, by=by)
        return RoutingPolicy(version, document)

    @event("Published")
    def _published(
        self, timestamp: datetime, version: int, document: RoutingDocument, by: str
    ) -> None:
        self.versions[version] = document
        self.published_at = timestamp
        self.author = by
