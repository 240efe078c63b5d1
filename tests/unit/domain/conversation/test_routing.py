"""Routing by intent, customer context and load; queues ordered by priority then SLA breach."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from domain.conversation.routing import (
    ConversationFacts,
    CustomerContext,
    QueueEntry,
    RoutingPolicy,
    offer,
    queue_order,
    route,
)
from domain.conversation.vocabulary import ChannelKind, Presence, Priority, Sentiment
from domain.segments.conditions import SegmentFacts, SignalFact

from .routings import agent, example, policy, team

NOW = datetime(2026, 12, 1, 10, tzinfo=UTC)
ID = UUID("6f1c0b8e-2d3a-4e5f-9a7b-1c2d3e4f5a6b")

TEAMS = [
    team("support", "sam", "sue"),
    team("billing", "bea", "bob", skills=frozenset({"billing"})),
    team("vip-desk", "vic"),
    team("retention", "ray"),
    team("spanish", "sol", skills=frozenset({"es"})),
]
BILLING = frozenset({"billing"})
AGENTS = [
    agent("sam", load=1),
    agent("sue", load=0),
    agent("bea", load=2, skills=BILLING),
    agent("bob", load=0, skills=BILLING),
    agent("vic"),
    agent("ray"),
    agent("sol", skills=frozenset({"es"})),
]


def chat(
    intent: str | None = None,
    sentiment: Sentiment | None = None,
    priority: Priority = Priority.NORMAL,
    kind: ChannelKind = ChannelKind.CHAT,
) -> ConversationFacts:
    return ConversationFacts(ID, kind, priority, intent, sentiment)


def customer(**attributes: object) -> CustomerContext:
    return CustomerContext(SegmentFacts(attributes=attributes))


class TestRules:
    def test_with_no_rule_matching_the_default_team_takes_it(self) -> None:
        decision = route(chat("hello"), customer(), policy(), TEAMS, AGENTS, NOW)
        assert (decision.team, decision.agent, decision.rule) == ("support", "sue", None)
        assert decision.reasons[0].rule == "default"
        assert decision.version == 7

    def test_the_first_rule_matching_the_intent_names_the_team_and_priority(self) -> None:
        decision = route(chat("refund"), customer(), policy(), TEAMS, AGENTS, NOW)
        assert (decision.team, decision.agent, decision.priority) == (
            "billing",
            "bob",
            Priority.HIGH,
        )
        assert decision.rule == "refunds"
        assert decision.reasons[0].says == "intent refund; team billing; priority high"

    def test_a_condition_over_any_attribute_of_the_customer_matches(self) -> None:
        decision = route(chat(), customer(language="es"), policy(), TEAMS, AGENTS, NOW)
        assert (decision.team, decision.agent) == ("spanish", "sol")

    def test_a_rule_with_only_skills_goes_to_the_team_that_covers_them(self) -> None:
        decision = route(chat(), customer(language="es"), policy(), TEAMS, AGENTS, NOW)
        assert decision.skills == frozenset({"es"})
        assert decision.reasons[0].says.endswith("team spanish")

    def test_segments_and_open_conversations_match_together(self) -> None:
        context = CustomerContext(segments=frozenset({"churn-risk"}), open_conversations=2)
        assert route(chat(), context, policy(), TEAMS, AGENTS, NOW).team == "retention"
        fewer = CustomerContext(segments=frozenset({"churn-risk"}), open_conversations=1)
        assert route(chat(), fewer, policy(), TEAMS, AGENTS, NOW).team == "support"

    def test_recent_history_is_read_through_signal_conditions(self) -> None:
        document = {
            "default_team": "support",
            "rules": [
                {
                    "id": "complainers",
                    "when": {
                        "type": "signal_count",
                        "signal": "complaint.filed",
                        "within": "30d",
                        "op": "gte",
                        "value": 2,
                    },
                    "team": "retention",
                }
            ],
        }
        complaints = [SignalFact(NOW - timedelta(days=d)) for d in (1, 3)]
        context = CustomerContext(SegmentFacts(signals={"complaint.filed": complaints}))
        assert route(chat(), context, policy(document), TEAMS, AGENTS, NOW).team == "retention"
        assert route(chat(), customer(), policy(document), TEAMS, AGENTS, NOW).team == "support"


class TestEscalation:
    def test_a_vip_goes_to_the_escalation_team_at_urgent_priority(self) -> None:
        decision = route(chat("refund"), customer(tier="vip"), policy(), TEAMS, AGENTS, NOW)
        assert (decision.team, decision.agent, decision.priority) == (
            "vip-desk",
            "vic",
            Priority.URGENT,
        )
        assert decision.escalated
        assert decision.skills == frozenset()
        assert [r.rule for r in decision.reasons] == ["refunds", "vip", "agent"]

    def test_negative_sentiment_raises_the_priority_and_keeps_the_team(self) -> None:
        decision = route(
            chat("refund", Sentiment.NEGATIVE), customer(), policy(), TEAMS, AGENTS, NOW
        )
        assert (decision.team, decision.priority, decision.escalated) == (
            "billing",
            Priority.HIGH,
            True,
        )

    def test_a_priority_is_never_lowered(self) -> None:
        decision = route(
            chat("refund", priority=Priority.URGENT), customer(), policy(), TEAMS, AGENTS, NOW
        )
        assert decision.priority is Priority.URGENT


class TestTheWorkedExample:
    def test_an_upset_vip_asking_for_a_refund_goes_urgent_to_the_vip_desk(self) -> None:
        teams = [*TEAMS[:2], team("vip-desk", "rui")]
        decision = route(
            chat("refund", Sentiment.NEGATIVE),
            CustomerContext(SegmentFacts(attributes={"tier": "vip"}), open_conversations=1),
            policy(),
            teams,
            [*AGENTS, agent("rui")],
            NOW,
        )
        assert (decision.team, decision.agent, decision.priority) == (
            "vip-desk",
            "rui",
            Priority.URGENT,
        )
        assert [r.rule for r in decision.reasons] == ["refunds", "vip", "upset", "agent"]


class TestLoad:
    def test_the_available_agent_with_the_most_free_capacity_for_the_kind_is_chosen(self) -> None:
        decision = route(chat(), customer(), policy(), TEAMS, AGENTS, NOW)
        assert decision.agent == "sue"
        assert decision.reasons[-1].says == "sue: the most free chat capacity (3)"

    def test_an_agent_who_is_away_or_full_is_passed_over(self) -> None:
        agents = [agent("sam", load=3), agent("sue", presence=Presence.AWAY)]
        decision = route(chat(), customer(), policy(), TEAMS, agents, NOW)
        assert decision.queued
        assert decision.team == "support"
        assert decision.reasons[-1].says == (
            "no available member of team support has free chat capacity: queued"
        )

    def test_an_agent_without_the_rule_s_skills_is_passed_over(self) -> None:
        agents = [agent("bea", skills=frozenset()), agent("sam")]
        decision = route(chat("refund"), customer(), policy(), TEAMS, agents, NOW)
        assert (decision.team, decision.agent) == ("billing", None)

    def test_capacity_is_per_channel_kind(self) -> None:
        agents = [agent("sue", chats=0)]
        assert route(chat(), customer(), policy(), TEAMS, agents, NOW).queued
        email = chat(kind=ChannelKind.EMAIL)
        assert route(email, customer(), policy(), TEAMS, agents, NOW).agent == "sue"

    def test_equal_capacity_goes_to_who_was_assigned_longest_ago(self) -> None:
        agents = [
            replace(agent("sam"), last_assigned_at=NOW - timedelta(minutes=1)),
            replace(agent("sue"), last_assigned_at=NOW - timedelta(minutes=5)),
        ]
        assert route(chat(), customer(), policy(), TEAMS, agents, NOW).agent == "sue"

    def test_a_full_team_overflows_once_its_queue_is_long_enough(self) -> None:
        full = [agent("bea", load=3, skills=BILLING), agent("sue", skills=BILLING)]
        short = [team("billing", "bea", queued=1), team("support", "sue")]
        long = [team("billing", "bea", queued=2), team("support", "sue")]
        assert route(chat("refund"), customer(), policy(), short, full, NOW).queued
        decision = route(chat("refund"), customer(), policy(), long, full, NOW)
        assert (decision.team, decision.agent) == ("support", "sue")
        assert "overflow" in [r.rule for r in decision.reasons]

    def test_an_unknown_team_queues_to_it_saying_so(self) -> None:
        decision = route(chat("refund"), customer(), policy(), [], AGENTS, NOW)
        assert decision.queued
        assert "not known" in decision.reasons[-1].says


def entry(priority: Priority, breach_in: float | None, queued: float = 0) -> QueueEntry:
    return QueueEntry(
        conversation_id=uuid4(),
        priority=priority,
        queued_at=NOW + timedelta(minutes=queued),
        channel_kind=ChannelKind.CHAT,
        breach_at=None if breach_in is None else NOW + timedelta(minutes=breach_in),
    )


class TestQueues:
    def test_the_queue_is_ordered_by_priority_then_time_to_breach(self) -> None:
        urgent_late = entry(Priority.URGENT, 30)
        urgent_soon = entry(Priority.URGENT, 5)
        normal_soon = entry(Priority.NORMAL, 1)
        normal_no_sla = entry(Priority.NORMAL, None)
        ordered = queue_order([normal_no_sla, normal_soon, urgent_late, urgent_soon])
        assert ordered == [urgent_soon, urgent_late, normal_soon, normal_no_sla]

    def test_the_queue_drains_in_order_as_capacity_frees(self) -> None:
        first, second, third = (entry(Priority.HIGH, m) for m in (1, 2, 3))
        support = team("support", "sam", "sue")
        agents = [agent("sam", chats=2, load=1), agent("sue", chats=2, load=1)]
        offers = offer([third, first, second], support, agents, NOW)
        assert [o.conversation_id for o in offers] == [
            first.conversation_id,
            second.conversation_id,
        ]
        assert sorted(o.agent for o in offers) == ["sam", "sue"]

    def test_an_entry_nobody_can_take_is_passed_over_for_one_somebody_can(self) -> None:
        needs_billing = QueueEntry(uuid4(), Priority.URGENT, NOW, ChannelKind.CHAT, None, BILLING)
        plain = entry(Priority.LOW, None)
        offers = offer([needs_billing, plain], team("support", "sam"), [agent("sam")], NOW)
        assert [o.conversation_id for o in offers] == [plain.conversation_id]


def classified(
    intent: str | None, urgency: str | None, score: float | None = None
) -> ConversationFacts:
    return ConversationFacts(
        ID,
        ChannelKind.CHAT,
        intent=intent,
        sentiment=Sentiment.NEGATIVE if (score or 0) <= -0.05 else Sentiment.NEUTRAL,
        urgency=urgency,
        sentiment_score=score,
    )


def escalating(*escalations: dict[str, object]) -> RoutingPolicy:
    document = example()
    document["escalations"] = list(escalations)
    return policy(document)


class TestUrgencyAndSentimentScore:
    def test_a_critical_urgency_raises_the_priority(self) -> None:
        critical = escalating({"id": "critical", "urgencies": ["critical"], "priority": "urgent"})
        fraud = route(
            classified("card_payment_not_recognised", "critical"),
            customer(),
            critical,
            TEAMS,
            AGENTS,
            NOW,
        )
        assert (fraud.priority, fraud.escalated) == (Priority.URGENT, True)
        assert "urgency critical" in fraud.explained()
        question = route(
            classified("exchange_rate", "low"), customer(), critical, TEAMS, AGENTS, NOW
        )
        assert (question.priority, question.escalated) == (Priority.NORMAL, False)

    def test_a_conversation_classified_before_urgencies_were_kept_matches_none(self) -> None:
        critical = escalating({"id": "critical", "urgencies": ["critical"], "priority": "urgent"})
        decision = route(chat("refund"), customer(), critical, TEAMS, AGENTS, NOW)
        assert decision.escalated is False

    def test_anger_is_a_score_at_or_below_the_threshold_not_any_negative_word(self) -> None:
        upset = escalating(
            {"id": "upset", "sentiment_score": {"op": "lte", "value": -0.5}, "priority": "high"}
        )
        # VADER's score of "Can I add my card to Google Pay?": negative, and not angry.
        mild = route(
            classified("apple_pay_or_google_pay", "low", -0.1),
            customer(),
            upset,
            TEAMS,
            AGENTS,
            NOW,
        )
        assert (mild.priority, mild.escalated) == (Priority.NORMAL, False)
        angry = route(
            classified("request_refund", "critical", -0.69), customer(), upset, TEAMS, AGENTS, NOW
        )
        assert (angry.priority, angry.escalated) == (Priority.HIGH, True)
        assert "sentiment score -0.69" in angry.explained()
        unscored = route(classified("request_refund", None), customer(), upset, TEAMS, AGENTS, NOW)
        assert unscored.escalated is False
