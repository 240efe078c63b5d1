"""Classifications stored before intents had one key and conversations kept urgency read back as
they are recorded now: the intent by its key, and no urgency or score where none was kept."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import msgspec
import msgspec.structs

from adapters.postgres.codec import EventCodec
from domain.conversation.aggregate import Conversation
from domain.conversation.vocabulary import Sentiment
from domain.customer.aggregate import ClassifiedMessage, Customer
from domain.customer.classified import classified_properties
from domain.customer.identities import Identity, IdentityClaim
from domain.policy.vocabulary import Channel
from domain.templates.aggregate import Template, Variant

T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)
CODEC = EventCodec()


def read_back_as_version_1(event: Any, before: dict[str, Any]) -> Any:
    stored = CODEC.encode(event)
    assert stored.class_version == 2
    assert CODEC.decode(*msgspec.structs.astuple(stored)) == event
    return CODEC.decode(
        stored.stream_id,
        stored.version,
        stored.topic,
        1,
        stored.occurred_at,
        msgspec.json.encode(before),
    )


class TestACustomersClassifiedMessage:
    def test_one_stored_with_the_datasets_spelling_reads_back_by_the_intents_key(self) -> None:
        customer = Customer.register(uuid4(), T0, (IdentityClaim(Identity("email", "a@b.org")),))
        message = ClassifiedMessage(
            uuid4(), Channel.EMAIL, T0, "reverted_card_payment", 0.9, "neutral", 0.0, "high"
        )
        customer.note_classified(message, T0)
        event = customer.collect_events()[-1]
        before = {
            "message_id": str(message.message_id),
            "channel": "email",
            "received_at": T0.isoformat(),
            "intent": "reverted_card_payment?",
            "confidence": 0.9,
            "sentiment": "neutral",
            "score": 0.0,
            "urgency": "high",
            "unknown_reason": None,
        }
        assert read_back_as_version_1(event, before) == event
        before["intent"] = "Refund_not_showing_up"
        assert read_back_as_version_1(event, before).intent == "refund_not_showing_up"

    def test_the_read_models_read_an_old_spelling_by_the_key_too(self) -> None:
        fields = {"intent": "reverted_card_payment?", "confidence": 0.9, "sentiment": "neutral"}
        properties = classified_properties(
            {**fields, "score": 0.0, "urgency": "high", "channel": "email"}
        )
        assert properties["intent"] == "reverted_card_payment"


class TestAConversationsClassification:
    def test_one_stored_before_urgency_was_kept_reads_back_with_none(self) -> None:
        conversation = Conversation.start(uuid4(), "customer", T0)
        conversation.classify(
            "request_refund",
            Sentiment.NEGATIVE,
            "classifier",
            T0,
            0.9,
            urgency="critical",
            sentiment_score=-0.7,
        )
        event = conversation.collect_events()[-1]
        before = {
            "intent": "request_refund",
            "sentiment": "negative",
            "confidence": 0.9,
            "by": "classifier",
        }
        old = read_back_as_version_1(event, before)
        assert (old.urgency, old.sentiment_score) == (None, None)
        assert (event.urgency, event.sentiment_score) == ("critical", -0.7)


class TestATemplatesIntentTags:
    def test_a_version_tagged_with_the_datasets_spelling_reads_back_by_the_keys(self) -> None:
        template = Template.create("reply.refund", T0)
        email = Variant(Channel.EMAIL, "en", subject="Your refund", body="On its way")
        template.publish((email,), "en", "", "ana", T0, ("refund_not_showing_up",))
        event = template.collect_events()[-1]
        stored = CODEC.encode(event)
        spelled = msgspec.json.decode(stored.payload)
        spelled["intents"] = ["Refund_not_showing_up", "refund_not_showing_up"]
        read_back = CODEC.decode(
            stored.stream_id,
            stored.version,
            stored.topic,
            stored.class_version,
            stored.occurred_at,
            msgspec.json.encode(spelled),
        )
        again = Template.create("reply.refund", T0)
        read_back.mutate(again)
        assert again.versions[-1].intents == ("refund_not_showing_up",)


class TestAnErasure:
    def test_names_who_asked_and_one_stored_before_reads_back_naming_no_one(self) -> None:
        customer = Customer.register(uuid4(), T0, (IdentityClaim(Identity("email", "a@b.org")),))
        customer.collect_events()
        assert customer.erase(T0, "admin key 1234")
        event = customer.collect_events()[-1]
        assert vars(event)["by"] == "admin key 1234"
        old = read_back_as_version_1(event, {"customer_ids": [str(customer.id)]})
        assert vars(old)["by"] is None
        assert tuple(vars(old)["customer_ids"]) == (customer.id,)
