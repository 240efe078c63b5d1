"""An inbound message whose `text` is no text is the customer's message all the same: threaded
with no text, classified `unknown` for `not_text` on its conversation and on its customer."""

from __future__ import annotations

from typing import Any

import pytest

from domain.customer.keywords import INBOUND_SIGNAL
from tests.unit.application.conversation_world import SUPPORT_ONLY, ConversationWorld, customer
from tests.unit.in_memory_chorus import report


async def world() -> ConversationWorld:
    found = ConversationWorld()
    await found.agent("ana", {})
    await found.team("support", "ana")
    await found.routing(SUPPORT_ONLY)
    await found.settle()
    return found


class TestAMessageThatIsNoText:
    @pytest.mark.parametrize("sent", [12345, None, {"a": 1}, ["I", "want", "refund"]])
    async def test_is_threaded_and_classified_unknown_not_text(self, sent: Any) -> None:
        found = await world()
        await found.inbound(customer(1), "whatsapp", sent)
        conversation = await found.conversation(customer(1))
        (message,) = conversation.messages
        assert message.text == ""
        known = conversation.classification
        assert known is not None
        assert (known.intent, known.unknown_reason) == (None, "not_text")
        customer_id = await found.customer_of(customer(1))
        (event,) = [
            r.event
            for r in found.store.log
            if type(r.event).__name__ == "MessageClassified"
            and r.event.originator_id == customer_id
        ]
        assert (vars(event)["intent"], vars(event)["unknown_reason"]) == ("unknown", "not_text")
        assert vars(event)["message_id"] == message.message_id

    async def test_a_message_with_an_intent_after_it_clears_the_reason(self) -> None:
        found = await world()
        await found.inbound(customer(1), "whatsapp", 12345)
        await found.inbound(customer(1), "whatsapp", "I want a refund, this is unacceptable")
        known = (await found.conversation(customer(1))).classification
        assert known is not None
        assert (known.intent, known.unknown_reason) == ("refund", None)

    @pytest.mark.parametrize(
        ("properties", "shown"),
        [
            ({"channel": "whatsapp"}, ""),
            ({"channel": "whatsapp", "text": None, "content_type": "order"}, "[order]"),
        ],
        ids=["no-text-property", "a-whatsapp-order"],
    )
    async def test_a_received_signal_with_no_text_is_threaded_as_not_text(
        self, properties: dict[str, Any], shown: str
    ) -> None:
        found = await world()
        await found.inbound(customer(1), "whatsapp", "hello")
        signal = report(
            "whatsapp:no-text",
            customer(1),
            kind=INBOUND_SIGNAL,
            occurred_at=found.clock.now(),
            properties=properties,
        )
        await found.chorus.ingest([signal])
        await found.settle()
        conversation = await found.conversation(customer(1))
        assert [m.text for m in conversation.messages] == ["hello", shown]
        known = conversation.classification
        assert known is not None
        assert (known.intent, known.unknown_reason) == (None, "not_text")
