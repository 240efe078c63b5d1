from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from application.rules.publish_rules import PublishRules
from domain.policy.rules import RuleSet
from ports.rules import PublishedRules

AT = datetime(2026, 12, 5, 10, tzinfo=UTC)


class InMemoryRuleSets:
    """Versions in a list; the built-in rules (version 1) until one is published."""

    def __init__(self) -> None:
        self.published: list[PublishedRules] = []

    async def current(self) -> RuleSet:
        return (await self.latest()).rules

    async def latest(self) -> PublishedRules:
        if not self.published:
            return PublishedRules(RuleSet(version=1), None, None)
        return self.published[-1]

    async def publish(self, rules: RuleSet, author: str) -> PublishedRules:
        version = (await self.current()).version + 1
        self.published.append(PublishedRules(replace(rules, version=version), AT, author))
        return self.published[-1]


class TestPublishRules:
    async def test_a_rule_set_is_published_as_the_next_version(self) -> None:
        rule_sets = InMemoryRuleSets()
        published = await PublishRules(rule_sets)(RuleSet(0, "Europe/Lisbon"), "key:admin")
        assert (published.rules.version, published.author) == (2, "key:admin")

    async def test_the_rules_in_force_sent_again_publish_nothing(self) -> None:
        rule_sets = InMemoryRuleSets()
        publish = PublishRules(rule_sets)
        await publish(RuleSet(0, "Europe/Lisbon"), "key:admin")
        again = await publish(RuleSet(0, "Europe/Lisbon"), "key:other")
        assert (again.rules.version, again.author, len(rule_sets.published)) == (
            2,
            "key:admin",
            1,
        )

    async def test_a_change_publishes_a_new_version(self) -> None:
        rule_sets = InMemoryRuleSets()
        publish = PublishRules(rule_sets)
        await publish(RuleSet(0, "Europe/Lisbon"), "key:admin")
        changed = await publish(RuleSet(0, "UTC"), "key:admin")
        assert changed.rules.version == 3

    async def test_the_built_in_rules_sent_as_they_are_are_published(self) -> None:
        rule_sets = InMemoryRuleSets()
        published = await PublishRules(rule_sets)(RuleSet(0), "key:admin")
        assert published.rules.version == 2
