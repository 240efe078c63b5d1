"""The demo's agent desk: agents, the support and billing teams, and a routing document."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from application.conversations.agents import ChangeAgentPresence, RegisterAgent
from application.conversations.teams import AddTeamMember, CreateTeam
from domain.conversation.vocabulary import ChannelKind, Presence
from domain.conversation.working_hours import DayName, OpenWindow, WorkingHours
from entrypoints.demo_publishing import publish_demo_routing

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
            # Money may be leaving the account without the customer: support acts at once.
            "id": "fraud",
            "intents": [
                "card_payment_not_recognised",
                "compromised_card",
                "lost_or_stolen_card",
                "lost_or_stolen_phone",
                "cash_withdrawal_not_recognised",
                "direct_debit_payment_not_recognised",
            ],
            "team": "support",
            "priority": "high",
        },
        {
            "id": "money",
            "intents": [
                "request_refund",
                "refund_not_showing_up",
                "reverted_card_payment",
                "transaction_charged_twice",
                "extra_charge_on_statement",
                "card_payment_fee_charged",
                "card_payment_wrong_exchange_rate",
                "cash_withdrawal_charge",
                "transfer_fee_charged",
                "exchange_charge",
            ],
            "team": "billing",
            "skills": ["billing"],
            "priority": "high",
            "overflow": {"team": "support", "queue_at_least": 5},
        },
        {
            # What a customer waits for and has not had: a card, a parcel (the model learnt
            # from a bank's messages, so a parcel reads to it as a card or a transfer).
            "id": "deliveries",
            "intents": [
                "card_arrival",
                "card_delivery_estimate",
                "transfer_not_received_by_recipient",
            ],
            "skills": ["orders"],
        },
        {
            "id": "spanish",
            "when": {"type": "attribute", "name": "locale", "op": "starts_with", "value": "es"},
            "team": "support",
            "skills": ["es"],
        },
    ],
    "escalations": [
        {"id": "vip", "tiers": ["gold"], "priority": "urgent"},
        {"id": "critical", "urgencies": ["critical"], "priority": "urgent"},
        {"id": "upset", "sentiment_score": {"op": "lte", "value": -0.5}, "priority": "high"},
    ],
    "sla": {
        "first_response": {"chat": "2m", "email": "4h", "voice": "1m"},
        "next_response": {"chat": "5m", "email": "8h"},
        "working_hours": True,
        "on_breach": {"priority": "urgent"},
    },
}
"""The demo's routing document (docs/conversations.md), on the intent model's Banking77 intents
(data/banking77/categories.json, by their keys): fraud to support at high priority, money
to billing, what has not arrived to support's `orders` skill; a critical urgency is urgent, and
an angry message (a sentiment score at or below -0.5, as urgency reads anger) high."""


async def load_demo_desk(container: AsyncContainer) -> None:
    """Registers the demo's agents and teams and publishes its routing (unless an operator
    published theirs since); idempotent."""
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
    await publish_demo_routing(container, DEMO_ROUTING)  # never over an operator's version
