from __future__ import annotations

from datetime import UTC, datetime

from adapters.inmemory.rule_sets import InMemoryRuleSets
from adapters.inmemory.storage import InMemoryStorage
from adapters.inmemory.unit_of_work import InMemoryUnitsOfWork
from adapters.system.clock import ManualClock
from application.rules.publish_rules import PublishRules
from domain.policy.rule_book import RULE_BOOK_ID
from domain.policy.rules import RuleSet

AT = datetime(2026, 12, 5, 10, tzinfo=UTC)


class Book:
    """Publishing on one storage, and the rule set in force read from it."""

    def __init__(self) -> None:
        self.storage = InMemoryStorage()
        clock = ManualClock(AT)
        self.rule_sets = InMemoryRuleSets(self.storage, clock)
        self.publish = PublishRules(InMemoryUnitsOfWork(self.storage), self.rule_sets, clock)


class TestPublishRules:
    async def test_a_rule_set_is_published_as_the_next_version(self) -> None:
        published = await Book().publish(RuleSet(0, "Europe/Lisbon"), "key:admin")
        assert (published.rules.version, published.author) == (2, "key:admin")

    async def test_the_rules_in_force_sent_again_publish_nothing(self) -> None:
        book = Book()
        publish = book.publish
        await publish(RuleSet(0, "Europe/Lisbon"), "key:admin")
        again = await publish(RuleSet(0, "Europe/Lisbon"), "key:other")
        assert (again.rules.version, again.author) == (2, "key:admin")
        assert again.published_at == AT
        assert book.storage.events.version_of(RULE_BOOK_ID) == 2  # opened, published once

    async def test_a_change_publishes_a_new_version(self) -> None:
        book = Book()
        publish = book.publish
        await publish(RuleSet(0, "Europe/Lisbon"), "key:admin")
        changed = await publish(RuleSet(0, "UTC"), "key:admin")
        assert changed.rules.version == 3

    async def test_the_built_in_rules_sent_as_they_are_are_published(self) -> None:
        published = await Book().publish(RuleSet(0), "key:admin")
        assert published.rules.version == 2
