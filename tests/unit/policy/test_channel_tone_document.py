"""A channel's tone in the rule-set document: validated with errors naming the JSON path, read
back as written, and the channel's default when the document says none."""

from __future__ import annotations

import json
from typing import Any

import pytest

from domain.policy.rule_document import RuleSetInvalid, decode_rule_set, rule_set_document
from domain.policy.tone import DEFAULT_TONES, ChannelTone, Structure
from domain.policy.vocabulary import Channel


def decoded(channels: dict[str, Any]) -> Any:
    return decode_rule_set(json.dumps({"channels": channels}), version=2)


def refused(channels: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(RuleSetInvalid) as refusal:
        decoded(channels)
    return [(e.path, e.reason) for e in refusal.value.errors]


class TestChannelToneInTheRuleSet:
    def test_a_tone_given_is_the_channels_tone_and_reads_back_as_written(self) -> None:
        tone = {"max_length": 160, "emoji": True, "max_links": 1}
        rules = decoded({"sms": {"tone": tone}})
        assert rules.tone_for(Channel.SMS) == ChannelTone(
            160, Structure.ONE_PARAGRAPH, emoji=True, links=True, max_links=1
        )
        assert rule_set_document(rules)["channels"] == {"sms": {"tone": tone}}

    def test_a_channel_without_a_tone_has_its_default(self) -> None:
        rules = decoded({"email": {"cost": 0.001}})
        assert rules.tone_for(Channel.EMAIL) == DEFAULT_TONES[Channel.EMAIL]
        assert rules.tone_for(Channel.WHATSAPP) == DEFAULT_TONES[Channel.WHATSAPP]

    def test_a_length_too_short_is_refused_at_its_path(self) -> None:
        assert refused({"sms": {"tone": {"max_length": 3}}}) == [
            ("$.channels.sms.tone.max_length", "must be a whole number >= 10")
        ]

    def test_an_unknown_structure_names_the_ones_there_are(self) -> None:
        [(path, reason)] = refused({"email": {"tone": {"max_length": 900, "structure": "poem"}}})
        assert path == "$.channels.email.tone.structure"
        assert reason == "'poem' is not one of paragraphs, one_paragraph"

    def test_a_link_count_where_links_are_banned_is_refused(self) -> None:
        channels = {"push": {"tone": {"max_length": 100, "links": False, "max_links": 2}}}
        assert refused(channels) == [
            (
                "$.channels.push.tone.max_links",
                "links are not allowed on this channel: leave it out",
            )
        ]

    def test_an_unknown_field_is_named(self) -> None:
        assert refused({"sms": {"tone": {"max_length": 100, "emojis": True}}}) == [
            ("$.channels.sms.tone.emojis", "unknown field")
        ]
