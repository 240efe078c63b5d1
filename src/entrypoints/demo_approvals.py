"""The demo's approvals: rules that hold refunds and unsure answers for an operator, and one
refund answer to Maria (her double charge on M-7, demo_conversations), Bruno's reply in her
thread, waiting in `/v1/approvals`. Run again, the same rules publish nothing (nor over an
operator's newer rules) and the same idempotency key sends nothing twice."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import TYPE_CHECKING

from application.messages.compose import MessageContent
from application.messages.request_message import RequestMessage
from domain.conversation.aggregate import DEFAULT_TOPIC, conversation_id
from domain.customer.identities import Identity
from domain.message.content import Content
from domain.message.origin import reply_origin
from domain.policy.decision import SendRequest
from domain.policy.defaults import default_rule_set
from domain.policy.rules import ApprovalRule
from domain.policy.vocabulary import Channel, Purpose
from entrypoints.demo_publishing import publish_demo_rules
from ports.customers import CustomerRecords

if TYPE_CHECKING:
    from dishka import AsyncContainer

__all__ = ["DEMO_APPROVALS", "DEMO_REFUND_ANSWER", "load_demo_approvals"]

DEMO_APPROVALS = (
    ApprovalRule(
        "approval.refund",
        # Banking77's, by their keys: what a refund answers
        intents=frozenset({"request_refund", "refund_not_showing_up", "transaction_charged_twice"}),
        min_confidence=0.4,  # below it, `approval.unsure` holds: no refund answer goes unheld
        expires_after=timedelta(hours=24),
    ),
    ApprovalRule("approval.unsure", confidence_below=0.4, expires_after=timedelta(hours=8)),
)
"""Added to the built-in rules: refunds the model is sure of, and answers to what it is not."""

DEMO_REFUND_ANSWER = SendRequest(
    "billing",
    Purpose.SERVICE,
    (Channel.EMAIL,),
    intent="transaction_charged_twice",
    intent_confidence=0.91,
)
_MARIA = Identity("email", "maria@example.org")
_SAYS = MessageContent(
    inline=Content(
        subject="Your refund for order M-7",
        body="Hi {{ customer.first_name }}, we have refunded the second payment for M-7.",
    )
)


async def load_demo_approvals(container: AsyncContainer) -> None:
    """Publishes the demo's approval rules (unless an operator published theirs since) and
    holds one refund answer to Maria."""
    rules = dataclasses.replace(default_rule_set(), approvals=DEMO_APPROVALS)
    await publish_demo_rules(container, rules)
    maria = await (await container.get(CustomerRecords)).find(_MARIA)
    if maria is None:
        return
    send = await container.get(RequestMessage)
    await send(
        maria,
        DEMO_REFUND_ANSWER,
        idempotency_key="demo:refund-m7",
        # Bruno's answer in Maria's thread: approved, it is his message there.
        origin=reply_origin(conversation_id(maria, DEFAULT_TOPIC), "bruno.costa"),
        content=_SAYS,
    )
