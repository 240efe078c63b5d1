"""Every aggregate whose events are stored, and the stable names they are stored as."""

from __future__ import annotations

from domain.access.records import RECORD_TOPICS
from domain.campaign.aggregate import Campaign
from domain.campaign.enrollment import Enrollment
from domain.conversation.agents import Agent, Team
from domain.conversation.aggregate import Conversation
from domain.conversation.routing_book import RoutingBook
from domain.customer.aggregate import Customer
from domain.message.aggregate import Message
from domain.policy.rule_book import RuleBook
from domain.segments.aggregate import Membership, Segment
from domain.shared.topics import TopicRegistry
from domain.signals.aggregate import Signal
from domain.signals.intake import RECEIVED_PERSONAL, RECEIVED_TOPIC, REFUSED_TOPIC
from domain.templates.aggregate import Template
from domain.triggers.aggregate import Firing, Trigger

__all__ = ["AGGREGATES", "TOPICS", "class_of", "topic_of"]

AGGREGATES: tuple[type, ...] = (
    Customer,
    Message,
    RuleBook,
    Template,
    Signal,
    Segment,
    Membership,
    Trigger,
    Firing,
    Campaign,
    Enrollment,
    Conversation,
    Agent,
    Team,
    RoutingBook,
)
"""Each one declares its stored name (`stored_as`) in its own module; a new one is added here."""

TOPICS = TopicRegistry(
    AGGREGATES,
    documents=(RECEIVED_TOPIC, REFUSED_TOPIC, *RECORD_TOPICS),
    personal_documents={RECEIVED_TOPIC: RECEIVED_PERSONAL},
)
topic_of = TOPICS.topic_of
class_of = TOPICS.class_of
