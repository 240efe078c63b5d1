"""The rule set in force, read from the rule book's in-memory stream."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from domain.policy.rule_book import RULE_BOOK_ID, RuleBook
from ports.rules import PublishedRules

if TYPE_CHECKING:
    from adapters.inmemory.storage import InMemoryStorage
    from domain.policy.rules import RuleSet
    from ports.clock import Clock

__all__ = ["InMemoryRuleSets"]


class InMemoryRuleSets:
    """The built-in rules until a version is published on the rule book."""

    def __init__(self, storage: InMemoryStorage, clock: Clock) -> None:
        self.storage = storage
        self.clock = clock

    def _book(self) -> RuleBook | None:
        found = self.storage.events.load([RULE_BOOK_ID]).get(RULE_BOOK_ID)
        return cast("RuleBook", found) if found is not None else None

    async def latest(self) -> PublishedRules:
        book = self._book() or RuleBook.open(self.clock.now())
        return PublishedRules(book.current, book.published_at, book.author)

    async def current(self) -> RuleSet:
        return (await self.latest()).rules

    def forget(self) -> None:
        """Nothing is kept: every read is of the log."""
