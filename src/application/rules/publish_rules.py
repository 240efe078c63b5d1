"""Publishes a rule set as the next version; decisions from then on cite it."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from application.conflicts import retry_on_conflict
from domain.policy.rule_book import RULE_BOOK_ID, RuleBook
from ports.rules import PublishedRules

if TYPE_CHECKING:
    from domain.policy.rules import RuleSet
    from ports.clock import Clock
    from ports.rules import RuleSets
    from ports.unit_of_work import UnitsOfWork

__all__ = ["PublishRules"]


class PublishRules:
    """Two publishers racing both publish, one version after the other; the rules already in
    force, sent again (a retried PUT), publish nothing."""

    def __init__(self, uows: UnitsOfWork, rule_sets: RuleSets, clock: Clock) -> None:
        self.uows = uows
        self.rule_sets = rule_sets
        self.clock = clock

    async def __call__(self, rules: RuleSet, author: str) -> PublishedRules:
        async def attempt() -> PublishedRules:
            async with self.uows() as uow:
                books = uow.repository(RuleBook)
                now = self.clock.now()
                book = (await books.get([RULE_BOOK_ID])).get(RULE_BOOK_ID)
                if book is not None and _in_force(book, rules):
                    return PublishedRules(book.current, book.published_at, book.author)
                book = book or RuleBook.open(now)
                book.publish(rules, author, now)
                books.add(book)
            # Decisions in this process use the new rules from now on, not in a second.
            self.rule_sets.forget()
            return PublishedRules(book.current, book.published_at, book.author)

        return await retry_on_conflict(attempt)


def _in_force(book: RuleBook, rules: RuleSet) -> bool:
    """The rules were published already and are the ones in force (built-in rules never are)."""
    in_force = book.current
    return book.published_at is not None and replace(rules, version=in_force.version) == in_force
