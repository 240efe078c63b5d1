"""A key limited to teams acts on, and reads, only the campaigns that send as its teams
(application/campaigns/teams.py); any other is a 403 naming each send step of another team."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from entrypoints.http.auth import current_key
from entrypoints.http.problems import problem

if TYPE_CHECKING:
    from litestar import Request, Response
    from litestar.connection import ASGIConnection

    from application.campaigns.teams import SendsAsOtherTeams

__all__ = ["sends_as_other_teams", "teams_of_key"]


def teams_of_key(connection: ASGIConnection[Any, Any, Any, Any]) -> frozenset[str] | None:
    """The teams the request's key acts for; None: every team."""
    return current_key(connection).teams or None


def sends_as_other_teams(request: Request[Any, Any, Any], exc: SendsAsOtherTeams) -> Response[Any]:
    return problem(
        403,
        "forbidden",
        "The campaign sends as a team this key does not act for",
        str(exc),
        errors=[{"field": fault.path, "reason": fault.reason} for fault in exc.faults],
    )
