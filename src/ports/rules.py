"""The rule set in force, as decisions read it.

Rule sets are published on the RuleBook aggregate through the unit of work
(`uow.repository(RuleBook)`, by `RULE_BOOK_ID`).
"""

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

    def forget(self) -> None:
        """A rule set was just published: the next read looks for it."""
        ...
