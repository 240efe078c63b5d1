"""Where rule sets are published and the one in force is read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from datetime import datetime

    from domain.policy.rules import RuleSet

__all__ = ["PublishedRules", "RuleSets"]


@dataclass(frozen=True, slots=True)
class PublishedRules:
    rules: RuleSet
    published_at: datetime | None  # None: the built-in rules, never published
    author: str | None


class RuleSets(Protocol):
    """The rule set in force; every decision cites its version."""

    async def current(self) -> RuleSet: ...

    async def latest(self) -> PublishedRules:
        """The rule set in force with who published it and when."""
        ...

    async def publish(self, rules: RuleSet, author: str) -> PublishedRules:
        """Makes `rules` the next version; raises ConcurrencyConflict if another won."""
        ...
