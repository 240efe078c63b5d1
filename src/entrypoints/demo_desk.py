"""The demo's agent desk: agents, the support and billing teams, and a routing document."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from application.conversations.agents import ChangeAgentPresence, RegisterAgent
from application.conversations.routing_document import PublishRouting
from application.conversations.teams import AddTeamMember, CreateTeam
from domain.conversation.vocabulary import ChannelKind, Presence
from domain.conversation.working_hours import DayName, OpenWindow, WorkingHours

if TYPE_CHECKING:
    from dishka import AsyncContainer

__all__ = ["DEMO_AGENTS", "DEMO_ROUTING", "DEMO_TEAMS", "load_demo_desk"]

_WEEKDAYS: tuple[DayName, ...] = ("mon", "tue", "wed", "thu", "fri")

DEMO_AGENTS: dict[str, tuple[str, frozenset[str], dict[ChannelKind, int], Presence]] = {
    "ana.silva": (
        "Ana Silva",
        frozenset({"returns", "orders"}),
        {ChannelKind.CHAT: 3, ChannelKind.EMAIL: 10},
        Presence.AVAILABLE,
    ),
    "bruno.costa": (
        "Bruno Costa",
        frozenset({"billing"}),
        {ChannelKind.CHAT: 2, ChannelKind.EMAIL: 8},
        Presence.AVAILABLE,
    ),
    "carla.mendes": (
        "Carla Mendes",
        frozenset({"billing", "orders", "es"}),
        {ChannelKind.CHAT: 3, ChannelKind.EMAIL: 10, ChannelKind.VOICE: 1},
        Presence.AWAY,
    ),
}
"""Agents by key: name, skills, capacity per channel kind, presence."""

DEMO_TEAMS: dict[str, tuple[str, frozenset[str], WorkingHours | None, tuple[str, ...]]] = {
    "support": (
        "Customer support",
        frozenset({"orders", "returns"}),
        WorkingHours(
            time_zone="Europe/London",
            windows=(
                OpenWindow(days=_WEEKDAYS, start="08:00", end="20:00"),
                OpenWindow(days=("sat",), start="10:00", end="14:00"),
            ),
        ),
        ("ana.silva", "carla.mendes"),
    ),
    "billing": (
        "Billing",
        frozenset({"billing"}),
        WorkingHours(
            time_zone="Europe/Lisbon",
            windows=(OpenWindow(days=_WEEKDAYS, start="09:00", end="18:00"),),
        ),
        ("bruno.costa", "carla.mendes"),
    ),
}
"""Teams by key: name, skills covered, working hours in their time zone, members."""

DEMO_ROUTING: dict[str, Any] = {
    "default_team": "support",
    "rules": [
        {
            "id": "money",
            "intents": [
                "refund",
                "billing",
                "request_refund",
                "transaction_charged_twice",
                "extra_charge_on_statement",
                "card_payment_fee_charged",
            ],
            "team": "billing",
            "skills": ["billing"],
            "priority": "high",
            "overflow": {"team": "support", "queue_at_least": 5},
        },
        {"id": "deliveries", "intents": ["delivery", "card_arrival"], "skills": ["orders"]},
        {
            "id": "spanish",
            "when": {"type": "attribute", "name": "locale", "op": "starts_with", "value": "es"},
            "team": "support",
            "skills": ["es"],
        },
    ],
    "escalations": [
        {"id": "vip", "tiers": ["gold"], "priority": "urgent"},
        {"id": "upset", "sentiments": ["negative"], "priority": "high"},
    ],
    "sla": {
        "first_response": {"chat": "2m", "email": "4h", "voice": "1m"},
        "next_response": {"chat": "5m", "email": "8h"},
        "working_hours": True,
        "on_breach": {"priority": "urgent"},
    },
}
"""The demo's routing document (docs/conversations.md): its intents are the keyword
classifier's (the default: `refund`, `billing`, `delivery`) and Banking77's (`CHORUS_CLASSIFIER=
model`), so it routes with either."""


async def load_demo_desk(container: AsyncContainer) -> None:
    """Registers the demo's agents and teams and publishes its routing; idempotent."""
    register = await container.get(RegisterAgent)
    presence = await container.get(ChangeAgentPresence)
    for key, (name, skills, capacity, status) in DEMO_AGENTS.items():
        await register(key, name, skills, capacity, "demo")
        await presence(key, status, "demo")
    create = await container.get(CreateTeam)
    add = await container.get(AddTeamMember)
    for key, (name, skills, hours, members) in DEMO_TEAMS.items():
        await create(key, name, "demo", skills, hours)
        for member in members:
            await add(key, member, "demo")
    await (await container.get(PublishRouting))(DEMO_ROUTING, "demo")
