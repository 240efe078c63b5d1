"""Rule sets held in memory: the built-in one, or one given by a test."""

from __future__ import annotations

from dataclasses import replace

from domain.policy.defaults import default_rule_set
from domain.policy.rules import RuleSet
from ports.rules import PublishedRules

__all__ = ["DefaultRuleSets"]


class DefaultRuleSets:
    """Serves one rule set; publishing replaces it in this process only."""

    def __init__(self, rules: RuleSet | None = None) -> None:
        self.published = PublishedRules(rules or default_rule_set(), None, None)

    async def current(self) -> RuleSet:
        return self.published.rules

    async def latest(self) -> PublishedRules:
        return self.published

    async def publish(self, rules: RuleSet, author: str) -> PublishedRules:
        version = self.published.rules.version + 1
        self.published = PublishedRules(replace(rules, version=version), None, author)
        return self.published
