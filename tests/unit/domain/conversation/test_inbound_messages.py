"""What the edge refuses in an inbound message: a channel Chorus does not know or that its
identities do not write on, and a topic that is no key; each named by its property."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from domain.conversation.inbound import channel_fault, message_fault, topic_fault
from domain.customer.identities import IdentityNormalizer
from domain.signals.aggregate import SignalReport
from domain.signals.document import InvalidSignal, SignalIn, SignalReader
from entrypoints.text_checks import wire_fault

PHONE = {"type": "phone", "value": "+447700906001"}
EMAIL = {"type": "email", "value": "ana@example.org"}


def _message(properties: dict[str, Any], *identities: dict[str, str]) -> dict[str, Any]:
    return {
        "id": "h-1",
        "type": "message.received",
        "occurred_at": "2026-11-28T09:00:00Z",
        "identities": list(identities or [PHONE]),
        "properties": properties,
    }


def _check(signal: dict[str, Any]) -> SignalIn | InvalidSignal:
    reader = SignalReader(IdentityNormalizer("GB"), refuse=wire_fault)
    return reader.check(4, msgspec.json.encode(signal))


def _refused(signal: dict[str, Any]) -> InvalidSignal:
    checked = _check(signal)
    assert isinstance(checked, InvalidSignal), checked
    assert (checked.index, checked.signal_id) == (4, "h-1")
    return checked


class TestTheTopic:
    @pytest.mark.parametrize(
        "topic",
        ["Not A Key!! ", "x" * 300, "order 42", "-order", "", 42, ["billing"], True],
        ids=["spaces-and-capitals", "300-characters", "a-space", "a-dash-first", "empty",
             "a-number", "a-list", "a-boolean"],
    )  # fmt: skip
    def test_a_topic_that_is_no_key_is_refused_naming_the_property(self, topic: object) -> None:
        refused = _refused(
            _message({"channel": "sms", "text": "Where is my card?", "topic": topic})
        )
        assert refused.field == "$.properties.topic"
        assert "topic key like 'order-42'" in refused.reason

    def test_the_reason_for_a_long_topic_says_how_long_it_may_be(self) -> None:
        refused = _refused(_message({"channel": "sms", "text": "hi", "topic": "x" * 300}))
        assert refused.reason.startswith("is 300 characters long")
        assert refused.reason.endswith("at most 64")

    @pytest.mark.parametrize("topic", ["order-42", "billing", "a" * 64, "v1.2_x", None])
    def test_a_topic_key_or_none_passes(self, topic: str | None) -> None:
        checked = _check(_message({"channel": "sms", "text": "hi", "topic": topic}))
        assert isinstance(checked, SignalIn), checked

    def test_no_topic_passes(self) -> None:
        assert isinstance(_check(_message({"channel": "sms", "text": "hi"})), SignalIn)


class TestTheChannel:
    @pytest.mark.parametrize(
        ("channel", "said"),
        [
            (42, "must be a string"),
            (None, "is needed"),
            ("pigeon", "is not a channel Chorus knows"),
            ("SMS", "is not a channel Chorus knows"),
            (["sms"], "must be a string"),
        ],
    )
    def test_a_channel_chorus_does_not_know_is_refused(self, channel: object, said: str) -> None:
        refused = _refused(_message({"channel": channel, "text": "hello"}))
        assert refused.field == "$.properties.channel"
        assert refused.reason.startswith(said)
        assert "chat, email, push, sms, voice, whatsapp" in refused.reason

    def test_a_message_with_no_channel_at_all_is_refused(self) -> None:
        refused = _refused(_message({"text": "STOP"}))
        assert (refused.field, refused.reason.split(":")[0]) == (
            "$.properties.channel",
            "is needed",
        )

    def test_an_email_address_cannot_write_on_whatsapp(self) -> None:
        refused = _refused(_message({"channel": "whatsapp", "text": "hi"}, EMAIL))
        assert refused.field == "$.properties.channel"
        assert refused.reason == (
            "is 'whatsapp', whose messages come from a whatsapp_id or phone identity; "
            "the signal names only email"
        )

    @pytest.mark.parametrize(
        ("channel", "identity"),
        [
            ("email", EMAIL),
            ("sms", PHONE),
            ("voice", PHONE),
            ("whatsapp", PHONE),
            ("whatsapp", {"type": "whatsapp_id", "value": "447700906001"}),
            ("chat", {"type": "account_id", "value": "u-77"}),
            ("push", {"type": "device_token", "value": "dvc-77"}),
        ],
    )
    def test_each_channel_passes_from_an_identity_that_writes_on_it(
        self, channel: str, identity: dict[str, str]
    ) -> None:
        assert isinstance(_check(_message({"channel": channel, "text": "hi"}, identity)), SignalIn)

    def test_one_identity_of_several_that_writes_on_the_channel_is_enough(self) -> None:
        crm = {"type": "crm_id", "value": "CRM-1"}
        checked = _check(_message({"channel": "sms", "text": "hi"}, crm, PHONE))
        assert isinstance(checked, SignalIn)

    def test_the_channel_is_checked_before_the_topic(self) -> None:
        refused = _refused(_message({"channel": 42, "topic": "Not A Key!!"}))
        assert refused.field == "$.properties.channel"


class TestOnlyInboundMessages:
    def test_other_signals_may_say_any_channel_and_topic(self) -> None:
        signal = {**_message({"channel": 42, "topic": "Not A Key!!"}, EMAIL), "type": "note.made"}
        assert isinstance(_check(signal), SignalIn)

    def test_read_refuses_as_the_edge_does(self) -> None:
        reader = SignalReader(IdentityNormalizer("GB"))
        raw = msgspec.json.encode(_message({"channel": "sms", "topic": "Not A Key!!"}))
        read = reader.read(0, raw)
        assert isinstance(read, InvalidSignal)
        assert read.field == "$.properties.topic"

    def test_attribution_reads_one_received_before_the_checks_all_the_same(self) -> None:
        """Its conversation threads it in the default topic: refusing it here would lose it."""
        reader = SignalReader(IdentityNormalizer("GB"))
        raw = msgspec.json.encode(_message({"channel": "sms", "topic": "Not A Key!!"}, EMAIL))
        assert isinstance(reader.parse(raw), SignalReport)


class TestTheFaults:
    def test_message_fault_names_nothing_for_a_good_message(self) -> None:
        assert message_fault("message.received", {"channel": "sms"}, ["phone"]) is None

    def test_message_fault_says_which_identity_types_the_signal_named(self) -> None:
        fault = message_fault("message.received", {"channel": "chat"}, ["email", "crm_id"])
        assert fault is not None
        assert fault[1].endswith("the signal names only crm_id, email")

    def test_channel_fault_and_topic_fault_pass_good_values(self) -> None:
        assert (channel_fault("whatsapp"), topic_fault("order-42")) == (None, None)
