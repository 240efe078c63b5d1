"""Rule sets held in memory: the built-in one, or one given by a test."""

from __future__ import annotations

from domain.policy.defaults import default_rule_set
from domain.policy.rules import RuleSet
from ports.rules import PublishedRules

__all__ = ["DefaultRuleSets"]


class DefaultRuleSets:
    """Serves one rule set, never published."""

    def __init__(self, rules: RuleSet | None = None) -> None:
        self.published = PublishedRules(rules or default_rule_set(), None, None)

    async def current(self) -> RuleSet:
        return self.published.rules

    async def latest(self) -> PublishedRules:
        return self.published

    def forget(self) -> None:
        """Nothing to forget: the rule set given is the one served."""
