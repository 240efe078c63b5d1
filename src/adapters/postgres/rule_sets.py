"""The rule set in force, read from the rule book's stream and kept warm for a second."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, cast

from adapters.postgres.event_store import PostgresEventStore
from domain.policy.rule_book import RULE_BOOK_ID, RuleBook
from ports.rules import PublishedRules

if TYPE_CHECKING:
    import asyncpg

    from domain.policy.rules import RuleSet
    from ports.clock import Clock

__all__ = ["PostgresRuleSets"]

_FRESH_FOR = 1.0  # seconds a process may decide on a rule set before looking for a newer one


class PostgresRuleSets:
    """Publishing goes through the unit of work; this process reads what it published at once,
    others within a second."""

    def __init__(
        self, pool: asyncpg.Pool, clock: Clock, events: PostgresEventStore | None = None
    ) -> None:
        self.pool = pool
        self.clock = clock
        self.events = events or PostgresEventStore()
        self._cached: PublishedRules | None = None
        self._loaded_at = 0.0

    async def latest(self) -> PublishedRules:
        if self._cached is not None and time.monotonic() - self._loaded_at < _FRESH_FOR:
            return self._cached
        loaded = await self.events.load(self.pool, [RULE_BOOK_ID])
        book = cast("RuleBook | None", loaded.get(RULE_BOOK_ID)) or RuleBook.open(self.clock.now())
        self._cached = PublishedRules(book.current, book.published_at, book.author)
        self._loaded_at = time.monotonic()
        return self._cached

    async def current(self) -> RuleSet:
        return (await self.latest()).rules

    def forget(self) -> None:
        self._cached = None
