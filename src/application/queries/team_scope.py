"""What of a customer a reader limited to teams sees: the customer is everyone's, their teams'
sends and conversations are the teams'."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["EVERY_TEAM", "TeamScope", "team_of_decision"]


@dataclass(frozen=True, slots=True)
class TeamScope:
    """The teams whose sends (messages and their decisions) and whose conversations a reader
    sees; None: every team's. A send or conversation of no team is seen only by who sees
    every team's."""

    sends: frozenset[str] | None = None
    conversations: frozenset[str] | None = None

    @property
    def every_team(self) -> bool:
        return self.sends is None and self.conversations is None

    def sees_send(self, team: str | None) -> bool:
        return _holds(self.sends, team)

    def sees_conversation(self, team: str | None) -> bool:
        return _holds(self.conversations, team)


def _holds(teams: frozenset[str] | None, team: str | None) -> bool:
    return teams is None or (team is not None and team in teams)


EVERY_TEAM = TeamScope()
"""What admins and auditors see: everything."""


def team_of_decision(data: Mapping[str, object]) -> str | None:
    """The team a recorded decision's send request named."""
    request: Any = data.get("request") or {}
    team = request.get("team")
    return None if team is None else str(team)
