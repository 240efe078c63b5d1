"""Where the current rule set comes from."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from domain.policy.rules import RuleSet

__all__ = ["RuleSets"]


class RuleSets(Protocol):
    """The rule set in force; every decision cites its version."""

    async def current(self) -> RuleSet: ...
