"""Listings: read tables written in the statement that appends their aggregate's events.

A definition listed by key (segments, triggers, templates, campaigns), or a message listed for
the read side and the fallbacks, is never behind its stream: the row and the events commit
together or not at all, and a stale writer loses both. Register an aggregate's listings in `LISTINGS`; the
unit of work writes them for every such aggregate it saves (`listed_rows`), and so does a
process that saves aggregates on its runner's connection (`PostgresAggregateSaves`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from eventsourcing.domain import Aggregate

from adapters.postgres.conversation_roster import (
    HOLDS,
    ROSTER_AGENTS,
    ROSTER_TEAMS,
    agent_row,
    hold_row,
    team_row,
)
from adapters.postgres.event_store import SideTable
from adapters.postgres.messages import MESSAGES, message_row
from domain.campaign.aggregate import Campaign
from domain.campaign.journey_reader import journey_document
from domain.conversation.agents import Agent, Team
from domain.conversation.aggregate import Conversation
from domain.message.aggregate import Message
from domain.segments.aggregate import Segment
from domain.segments.conditions import condition_document
from domain.templates.aggregate import Template
from domain.triggers.aggregate import Trigger
from domain.triggers.definition import on_document
from ports.campaigns import versions_written

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

__all__ = [
    "AGENTS",
    "CAMPAIGNS",
    "LISTINGS",
    "SEGMENTS",
    "TEAMS",
    "TEMPLATES",
    "TRIGGERS",
    "Listing",
    "listed_rows",
]

A = TypeVar("A", bound=Aggregate)


@dataclass(frozen=True, slots=True)
class Listing(Generic[A]):
    """The table that lists one aggregate type, and its row for an aggregate (None: unlisted)."""

    table: SideTable
    row: Callable[[A], tuple[Any, ...] | None]


_SEGMENTS = SideTable(
    insert=(
        "INSERT INTO segments (key, segment_id, name, description, version, condition, deleted,"
        " updated_at)"
    ),
    types=("text", "uuid", "text", "text", "int4", "jsonb", "bool", "timestamptz"),
    on_conflict=(
        "ON CONFLICT (key) DO UPDATE SET name = EXCLUDED.name,"
        " description = EXCLUDED.description, version = EXCLUDED.version,"
        " condition = EXCLUDED.condition, deleted = EXCLUDED.deleted,"
        " updated_at = EXCLUDED.updated_at"
    ),
)
_TRIGGERS = SideTable(
    insert=(
        "INSERT INTO triggers (key, trigger_id, name, description, version, definition, deleted,"
        " updated_at)"
    ),
    types=("text", "uuid", "text", "text", "int4", "jsonb", "bool", "timestamptz"),
    on_conflict=(
        "ON CONFLICT (key) DO UPDATE SET name = EXCLUDED.name,"
        " description = EXCLUDED.description, version = EXCLUDED.version,"
        " definition = EXCLUDED.definition, deleted = EXCLUDED.deleted,"
        " updated_at = EXCLUDED.updated_at"
    ),
)
_TEMPLATES = SideTable(
    insert="INSERT INTO templates (key, template_id, latest_version, description, updated_at)",
    types=("text", "uuid", "int4", "text", "timestamptz"),
    on_conflict=(
        "ON CONFLICT (key) DO UPDATE SET latest_version = EXCLUDED.latest_version, "
        "description = EXCLUDED.description, updated_at = EXCLUDED.updated_at"
    ),
)

# A version's time and author are in its events alone: the ones being appended are merged in.
_CAMPAIGNS = SideTable(
    insert=(
        "INSERT INTO campaigns (key, campaign_id, name, status, version, journey, versions,"
        " updated_at)"
    ),
    types=("text", "uuid", "text", "text", "int4", "jsonb", "jsonb", "timestamptz"),
    on_conflict=(
        "ON CONFLICT (key) DO UPDATE SET name = EXCLUDED.name, status = EXCLUDED.status,"
        " version = EXCLUDED.version, journey = EXCLUDED.journey,"
        " versions = campaigns.versions || EXCLUDED.versions, updated_at = EXCLUDED.updated_at"
    ),
)


def _segment(segment: Segment) -> tuple[Any, ...]:
    return (
        segment.key,
        segment.id,
        segment.name,
        segment.description,
        segment.number,
        json.dumps(condition_document(segment.condition)),
        segment.deleted,
        segment.changed_at,
    )


def _trigger(trigger: Trigger) -> tuple[Any, ...]:
    return (
        trigger.key,
        trigger.id,
        trigger.name,
        trigger.description,
        trigger.number,
        json.dumps(on_document(trigger.on)),
        trigger.deleted,
        trigger.changed_at,
    )


def _template(template: Template) -> tuple[Any, ...] | None:
    latest = template.latest
    if latest is None:
        return None
    return (template.key, template.id, latest.number, latest.description, latest.published_at)


def _campaign(campaign: Campaign) -> tuple[Any, ...]:
    versions = {
        str(written.version): {"at": written.at.isoformat(), "by": written.by}
        for written in versions_written(campaign.pending_events)
    }
    return (
        campaign.key,
        campaign.id,
        campaign.name,
        str(campaign.status),
        campaign.number,
        json.dumps(journey_document(campaign.journey)),
        json.dumps(versions),
        campaign.changed_at,
    )


# Agents and teams by key; a team's members, for an agent's teams.
_AGENTS = SideTable(
    insert="INSERT INTO agents (key, agent_id, updated_at)",
    types=("text", "uuid", "timestamptz"),
    on_conflict="ON CONFLICT (key) DO UPDATE SET updated_at = EXCLUDED.updated_at",
)
_TEAMS = SideTable(
    insert="INSERT INTO teams (key, team_id, members, updated_at)",
    types=("text", "uuid", "jsonb", "timestamptz"),
    on_conflict=(
        "ON CONFLICT (key) DO UPDATE SET members = EXCLUDED.members,"
        " updated_at = EXCLUDED.updated_at"
    ),
)


def _agent(agent: Agent) -> tuple[Any, ...]:
    return (agent.key, agent.id, agent.modified_on)


def _team(team: Team) -> tuple[Any, ...]:
    return (team.key, team.id, json.dumps(sorted(team.members)), team.modified_on)


AGENTS: Listing[Agent] = Listing(_AGENTS, _agent)
TEAMS: Listing[Team] = Listing(_TEAMS, _team)
SEGMENTS: Listing[Segment] = Listing(_SEGMENTS, _segment)
TRIGGERS: Listing[Trigger] = Listing(_TRIGGERS, _trigger)
TEMPLATES: Listing[Template] = Listing(_TEMPLATES, _template)
CAMPAIGNS: Listing[Campaign] = Listing(_CAMPAIGNS, _campaign)

LISTINGS: Mapping[type[Aggregate], tuple[Listing[Any], ...]] = {
    Message: (Listing(MESSAGES, message_row),),
    Segment: (SEGMENTS,),
    Trigger: (TRIGGERS,),
    Template: (TEMPLATES,),
    Campaign: (CAMPAIGNS,),
    # Routing's roster beside the staff listings, and the conversations' holders, whose trigger
    # keeps the agents' loads and checks capacity (migration 0024, docs/conversations.md).
    Agent: (AGENTS, Listing(ROSTER_AGENTS, agent_row)),
    Team: (TEAMS, Listing(ROSTER_TEAMS, team_row)),
    Conversation: (Listing(HOLDS, hold_row),),
}
"""Every listed aggregate type and its listings; an aggregate without one needs no entry."""


def listed_rows(
    aggregates: Iterable[Aggregate],
    listings: Mapping[type[Aggregate], tuple[Listing[Any], ...]] = LISTINGS,
) -> dict[SideTable, list[tuple[Any, ...]]]:
    """The rows listing the aggregates that have pending events, by table (the first table
    used first), as the state those events leave: taken before they are appended."""
    found: dict[SideTable, list[tuple[Any, ...]]] = {}
    for aggregate in aggregates:
        if not aggregate.pending_events:
            continue
        for listing in listings.get(type(aggregate), ()):
            row = listing.row(aggregate)
            if row is not None:
                found.setdefault(listing.table, []).append(row)
    return found
