"""The built-in rule set, in force until a team publishes its own."""

from __future__ import annotations

from domain.policy.defaults import default_rule_set
from domain.policy.rules import RuleSet

__all__ = ["DefaultRuleSets"]


class DefaultRuleSets:
    """Serves the default rule set (version 1): consent and quiet hours as regulation expects."""

    def __init__(self, rules: RuleSet | None = None) -> None:
        self.rules = rules or default_rule_set()

    async def current(self) -> RuleSet:
        return self.rules
