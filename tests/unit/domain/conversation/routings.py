"""A routing document and the teams and agents of the routing tests."""

from __future__ import annotations

from typing import Any

from domain.conversation.routing import Candidate, RoutingPolicy, TeamView
from domain.conversation.routing_reader import decode_routing
from domain.conversation.vocabulary import ChannelKind, Presence

TEAMS = frozenset({"support", "billing", "vip-desk", "retention", "spanish"})
SEGMENTS = frozenset({"churn-risk"})


def example() -> dict[str, Any]:
    return {
        "default_team": "support",
        "rules": [
            {
                "id": "refunds",
                "intents": ["refund", "billing"],
                "team": "billing",
                "skills": ["billing"],
                "priority": "high",
                "overflow": {"team": "support", "queue_at_least": 2},
            },
            {
                "id": "spanish",
                "when": {"type": "attribute", "name": "language", "op": "eq", "value": "es"},
                "skills": ["es"],
            },
            {
                "id": "repeat",
                "open_conversations": {"op": "gte", "value": 2},
                "segments": ["churn-risk"],
                "team": "retention",
            },
        ],
        "escalations": [
            {"id": "vip", "tiers": ["vip"], "priority": "urgent", "team": "vip-desk"},
            {"id": "upset", "sentiments": ["negative"], "priority": "high"},
        ],
        "sla": {"first_response": {"chat": "2m", "email": "4h"}},
    }


def policy(document: dict[str, Any] | None = None, version: int = 7) -> RoutingPolicy:
    return RoutingPolicy(
        version, decode_routing(document or example(), teams=TEAMS, segments=SEGMENTS)
    )


def agent(
    key: str,
    chats: int = 3,
    load: int = 0,
    skills: frozenset[str] = frozenset(),
    presence: Presence = Presence.AVAILABLE,
) -> Candidate:
    return Candidate(
        key=key,
        skills=skills,
        presence=presence,
        capacity={ChannelKind.CHAT: chats, ChannelKind.EMAIL: 10},
        load={ChannelKind.CHAT: load},
    )


def team(
    key: str, *members: str, skills: frozenset[str] = frozenset(), queued: int = 0
) -> TeamView:
    return TeamView(key=key, skills=skills, members=frozenset(members), queued=queued)
