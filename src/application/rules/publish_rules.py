"""Publishes a rule set as the next version; decisions from then on cite it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from application.customer.conflicts import retry_on_conflict

if TYPE_CHECKING:
    from domain.policy.rules import RuleSet
    from ports.rules import PublishedRules, RuleSets

__all__ = ["PublishRules"]


class PublishRules:
    """Two publishers racing both publish, one version after the other."""

    def __init__(self, rule_sets: RuleSets) -> None:
        self.rule_sets = rule_sets

    async def __call__(self, rules: RuleSet, author: str) -> PublishedRules:
        return await retry_on_conflict(lambda: self.rule_sets.publish(rules, author))
