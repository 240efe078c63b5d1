"""The routing document as data: the version in force, and publishing the next one.

A document is checked whole against the teams and segments that exist
(`routing_reader.decode_routing` names the JSON path of every fault) before anything is stored;
the document in force, sent again (a retried PUT), publishes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from application.conflicts import retry_on_conflict
from domain.conversation.routing_book import ROUTING_BOOK_ID, NoRoutingYet, RoutingBook
from domain.conversation.routing_reader import decode_routing
from domain.shared.errors import InvalidValue, NotFound

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from domain.conversation.routing import RoutingPolicy
    from ports.campaigns import JourneyReferences
    from ports.clock import Clock
    from ports.staff import StaffDirectory
    from ports.unit_of_work import UnitsOfWork

__all__ = ["PublishRouting", "PublishedRouting", "RoutingQueries"]


@dataclass(frozen=True, slots=True)
class PublishedRouting:
    """A routing version, who published it and when."""

    policy: RoutingPolicy
    published_at: datetime
    author: str
    changed: bool = True  # False: it was in force already, nothing was published


def _published(book: RoutingBook, changed: bool) -> PublishedRouting:
    assert book.published_at is not None
    assert book.author is not None
    return PublishedRouting(book.current, book.published_at, book.author, changed)


class PublishRouting:
    """Checks a routing document and publishes it as the next version."""

    def __init__(
        self,
        uows: UnitsOfWork,
        staff: StaffDirectory,
        references: JourneyReferences,
        clock: Clock,
    ) -> None:
        self.uows = uows
        self.staff = staff
        self.references = references
        self.clock = clock

    async def __call__(
        self, document: bytes | str | Mapping[str, Any], by: str
    ) -> PublishedRouting:
        """Raises `RoutingInvalid` naming every fault's path; then nothing is stored."""
        routing = decode_routing(
            document,
            teams=set(await self.staff.team_keys()),
            segments=await self.references.segment_keys(),
        )

        async def attempt() -> PublishedRouting:
            async with self.uows() as uow:
                books = uow.repository(RoutingBook)
                now = self.clock.now()
                book = (await books.get([ROUTING_BOOK_ID])).get(ROUTING_BOOK_ID)
                if book is not None and book.versions and book.current.document == routing:
                    return _published(book, changed=False)
                book = book or RoutingBook.open(now)
                book.publish(routing, by, now)
                books.add(book)
                return _published(book, changed=True)

        return await retry_on_conflict(attempt)


class RoutingQueries:
    """The routing in force, and any earlier version."""

    def __init__(self, uows: UnitsOfWork) -> None:
        self.uows = uows

    async def _book(self) -> RoutingBook:
        async with self.uows() as uow:
            book = (await uow.repository(RoutingBook).get([ROUTING_BOOK_ID])).get(ROUTING_BOOK_ID)
        if book is None:
            raise NoRoutingYet("no routing document has been published")
        return book

    async def current(self) -> PublishedRouting:
        return _published(await self._book(), changed=False)

    async def version(self, number: int) -> RoutingPolicy:
        """A published version; NotFound when there is none."""
        try:
            return (await self._book()).policy_of(number)
        except InvalidValue:
            raise NotFound(f"no routing version {number}") from None
