"""Publishes a rule set as the next version; decisions from then on cite it."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from application.conflicts import retry_on_conflict

if TYPE_CHECKING:
    from domain.policy.rules import RuleSet
    from ports.rules import PublishedRules, RuleSets

__all__ = ["PublishRules"]


class PublishRules:
    """Two publishers racing both publish, one version after the other; the rules already in
    force, sent again (a retried PUT), publish nothing."""

    def __init__(self, rule_sets: RuleSets) -> None:
        self.rule_sets = rule_sets

    async def __call__(self, rules: RuleSet, author: str) -> PublishedRules:
        async def attempt() -> PublishedRules:
            latest = await self.rule_sets.latest()
            in_force = latest.rules
            if latest.published_at is not None and replace(rules, version=in_force.version) == (
                in_force
            ):
                return latest
            return await self.rule_sets.publish(rules, author)

        return await retry_on_conflict(attempt)
