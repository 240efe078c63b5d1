"""The Message aggregate: one allowed send, its attempts and its statuses."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from domain.message.aggregate import Attempt, Message, MessageStatus
from domain.message.content import Content
from domain.policy.vocabulary import Channel, Purpose

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def fields() -> dict[str, Any]:
    return dict(
        id=uuid.uuid4(),
        timestamp=T0,
        customer_id=uuid.uuid4(),
        decision_id=uuid.uuid4(),
        channel=Channel.SMS,
        purpose=Purpose.TRANSACTIONAL,
        team="billing",
        recipient="+14155550100",
        content=Content(body="Your code is 123456"),
        campaign=None,
        template=None,
        template_version=None,
        correlation_id="c-1",
    )


def a_message() -> Message:
    return Message(**fields())


def tried(provider: str, accepted: bool, answer: str = "SM1") -> Attempt:
    return Attempt(provider, T0 + timedelta(seconds=1), 12.5, accepted, answer, not accepted)


class TestQueueing:
    """`Message.queue` builds the message in place, for speed: it must be the very message,
    and the very event, that `Message(...)` makes through eventsourcing."""

    def test_queue_makes_what_the_constructor_makes(self) -> None:
        given = fields() | {
            "campaign": "spring",
            "template": "news",
            "template_version": 3,
            "fallback_channels": (Channel.EMAIL,),
            "fallback_due": T0 + timedelta(hours=1),
            "expires_at": T0 + timedelta(days=1),
        }
        queued, constructed = Message.queue(**given), Message(**given)
        made, expected = queued.collect_events(), constructed.collect_events()
        assert [type(e) for e in made] == [type(e) for e in expected] == [Message.Queued]
        assert vars(made[0]) == vars(expected[0])
        assert vars(queued) == vars(constructed)

    def test_its_event_rebuilds_the_same_message(self) -> None:
        queued = Message.queue(**fields())
        (event,) = queued.collect_events()
        assert type(event)(**vars(event)) == event
        rebuilt = event.mutate(None)
        assert vars(rebuilt) == vars(queued)


class TestDispatchRounds:
    def test_a_new_message_is_queued_and_tied_to_its_decision(self) -> None:
        message = a_message()
        assert message.status is MessageStatus.QUEUED
        assert not message.settled

    def test_acceptance_after_a_failover_keeps_every_attempt_and_the_cost(self) -> None:
        message = a_message()
        attempts = (tried("primary", False, "timed out"), tried("backup", True, "SM9"))
        message.accepted(attempts, "backup", "SM9", MessageStatus.SENT, Decimal("0.0079"), "USD")
        assert message.settled
        assert [a.provider for a in message.attempts] == ["primary", "backup"]
        assert (message.provider, message.provider_message_id) == ("backup", "SM9")
        assert (message.cost, message.currency) == (Decimal("0.0079"), "USD")
        assert message.status is MessageStatus.SENT

    def test_a_second_acceptance_changes_nothing(self) -> None:
        message = a_message()
        message.accepted((tried("p", True),), "p", "SM1", MessageStatus.QUEUED, None, None)
        message.accepted((tried("p", True),), "p", "SM1", MessageStatus.QUEUED, None, None)
        assert len(message.collect_events()) == 2  # queued, accepted

    def test_a_recorded_failure_settles_the_message(self) -> None:
        message = a_message()
        message.failed((tried("p", False, "invalid number"),), "refused", T0)
        assert message.settled
        assert message.status is MessageStatus.FAILED
        assert message.failure == "refused"


class TestStatuses:
    def accepted(self) -> Message:
        message = a_message()
        message.accepted((tried("p", True),), "p", "SM1", MessageStatus.QUEUED, None, None)
        return message

    def test_each_status_is_recorded_once(self) -> None:
        message = self.accepted()
        assert message.report(MessageStatus.DELIVERED, "p", T0)
        assert not message.report(MessageStatus.DELIVERED, "p", T0)
        assert message.status is MessageStatus.DELIVERED

    def test_a_late_sent_after_delivered_does_not_move_it_back(self) -> None:
        message = self.accepted()
        message.report(MessageStatus.DELIVERED, "p", T0)
        message.report(MessageStatus.SENT, "p", T0)
        assert message.status is MessageStatus.DELIVERED
        assert [s.status for s in message.statuses][-2:] == [
            MessageStatus.DELIVERED,
            MessageStatus.SENT,
        ]

    def test_a_complaint_after_delivery_shows_and_sticks(self) -> None:
        message = self.accepted()
        message.report(MessageStatus.DELIVERED, "p", T0)
        message.report(MessageStatus.COMPLAINED, "p", T0)
        message.report(MessageStatus.READ, "p", T0)
        assert message.status is MessageStatus.COMPLAINED

    def test_a_status_carrying_a_price_sets_the_cost(self) -> None:
        message = self.accepted()
        message.report(MessageStatus.DELIVERED, "p", T0, cost=Decimal("0.05"), currency="EUR")
        assert (message.cost, message.currency) == (Decimal("0.05"), "EUR")
