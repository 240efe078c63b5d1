"""The demo's routing, on the intent model's Banking77 intents: money to billing, fraud to support
at once, and priority raised for a critical urgency or real anger, never for a polite question."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import pytest

from domain.conversation.routing import (
    Candidate,
    ConversationFacts,
    CustomerContext,
    RoutingPolicy,
    TeamView,
    route,
)
from domain.conversation.routing_reader import decode_routing
from domain.conversation.vocabulary import ChannelKind, Presence, Priority, Sentiment
from entrypoints.demo_desk import DEMO_AGENTS, DEMO_ROUTING, DEMO_TEAMS

NOW = datetime(2026, 12, 1, 10, tzinfo=UTC)
ID = UUID("6f1c0b8e-2d3a-4e5f-9a7b-1c2d3e4f5a6b")
POLICY = RoutingPolicy(1, decode_routing(DEMO_ROUTING, teams=set(DEMO_TEAMS), segments=set()))
TEAMS = [
    TeamView(key, skills, frozenset(members)) for key, (_, skills, _, members) in DEMO_TEAMS.items()
]
AGENTS = [
    Candidate(key, skills, Presence.AVAILABLE, capacity)
    for key, (_, skills, capacity, _) in DEMO_AGENTS.items()
]


def routed(intent: str | None, urgency: str, score: float = 0.0) -> tuple[str, Priority]:
    sentiment = Sentiment.NEGATIVE if score <= -0.05 else Sentiment.NEUTRAL
    facts = ConversationFacts(
        ID, ChannelKind.CHAT, intent=intent, sentiment=sentiment, urgency=urgency,
        sentiment_score=score,
    )  # fmt: skip
    decision = route(facts, CustomerContext(), POLICY, TEAMS, AGENTS, NOW)
    return decision.team, decision.priority


class TestTheDemosRouting:
    @pytest.mark.parametrize(
        "intent",
        ["card_payment_not_recognised", "compromised_card", "lost_or_stolen_card"],
    )
    def test_fraud_goes_to_support_at_once(self, intent: str) -> None:
        assert routed(intent, "critical") == ("support", Priority.URGENT)

    @pytest.mark.parametrize(
        "intent",
        [
            "request_refund",
            "refund_not_showing_up",
            "reverted_card_payment",
            "transaction_charged_twice",
            "card_payment_fee_charged",
        ],
    )
    def test_money_goes_to_billing(self, intent: str) -> None:
        assert routed(intent, "high") == ("billing", Priority.HIGH)

    def test_a_polite_question_that_reads_a_little_negative_is_not_escalated(self) -> None:
        # "Can I add my card to Google Pay?": VADER scores it -0.1
        assert routed("apple_pay_or_google_pay", "low", -0.1) == ("support", Priority.NORMAL)

    def test_an_angry_message_is_raised_to_high(self) -> None:
        assert routed("card_arrival", "normal", -0.7) == ("support", Priority.HIGH)

    def test_a_message_the_model_could_not_read_goes_to_support(self) -> None:
        assert routed(None, "normal") == ("support", Priority.NORMAL)
