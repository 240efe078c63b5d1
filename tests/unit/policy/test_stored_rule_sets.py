"""A published rule set as the rule book stores it: since version 2 of `RuleBook.Published`, each
channel it names holds only the fields it gave. One stored before held each named channel's whole
policy, which governed the channel alone; it reads back giving every field and every purpose, so
it still means what it meant, and old decisions decided again under it come out the same."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from adapters.postgres.codec import EventCodec
from domain.policy.decision import Outcome
from domain.policy.defaults import default_rule_set
from domain.policy.engine import decide
from domain.policy.rule_book import RULE_BOOK_ID, RuleBook
from domain.policy.rule_document import decode_rule_set, rule_set_document
from domain.policy.rules import BUILT_IN_CHANNELS, ChannelPolicy, ConsentMode, RuleSet
from domain.policy.tone import ChannelTone
from domain.policy.vocabulary import Channel, Purpose
from tests.unit.policy.builders import NOON, customer, request

CODEC = EventCodec()
T0 = datetime(2026, 11, 27, 14, tzinfo=UTC)


def published(rules: RuleSet) -> Any:
    book = RuleBook.open(T0)
    book.publish(rules, "admin", T0)
    return book.collect_events()[-1]


def stored_before(channels: dict[str, Any]) -> RuleSet:
    """The rule set a version 1 `Published` event holding these channels reads back as."""
    event = published(RuleSet(version=0))
    stored = CODEC.encode(event)
    body = {
        "rules": {"version": 2, "default_time_zone": "UTC", "channels": channels},
        "author": "a",
    }
    old = CODEC.decode(RULE_BOOK_ID, stored.version, stored.topic, 1, T0, msgspec.json.encode(body))
    rules: RuleSet = vars(old)["rules"]
    return rules


def whole(policy: ChannelPolicy) -> dict[str, Any]:
    """A channel's policy as version 1 stored it (the fields of `ChannelPolicy`, tone and all)."""
    return json.loads(msgspec.json.encode(policy))


def same_meaning(one: ChannelPolicy, other: ChannelPolicy) -> bool:
    """The same demands: a purpose left out of a consent is opt_out, so it may be written out."""
    fields = ("session_window", "requires_verified_identity", "hard_opt_out", "cost", "tone")
    return all(one.consent_mode(p) is other.consent_mode(p) for p in Purpose) and all(
        getattr(one, name) == getattr(other, name) for name in fields
    )


class TestARuleSetPublishedNow:
    def test_is_stored_as_version_2_with_only_what_each_channel_named(self) -> None:
        rules = decode_rule_set(
            '{"channels": {"sms": {"tone": {"max_length": 100}}, '
            '"whatsapp": {"session_window": null, "consent": {"marketing": "opt_out"}}}}',
            version=0,
        )
        event = published(rules)
        stored = CODEC.encode(event)
        assert stored.class_version == 2
        channels = json.loads(stored.payload)["rules"]["channels"]
        assert channels == {
            "sms": {
                "consent": {},
                "tone": {
                    "max_length": 100,
                    "structure": "one_paragraph",
                    "emoji": False,
                    "links": True,
                    "max_links": None,
                },
            },
            "whatsapp": {"consent": {"marketing": "opt_out"}, "session_window": None},
        }
        read = CODEC.decode(*msgspec.structs.astuple(stored))
        assert read == event
        assert vars(read)["rules"].effective_channels() == vars(event)["rules"].effective_channels()


class TestARuleSetStoredBefore:
    def test_a_channel_stored_whole_is_governed_as_it_was_by_its_entry_alone(self) -> None:
        rules = stored_before(
            {
                "sms": whole(ChannelPolicy(Channel.SMS, cost=0.01)),
                "whatsapp": whole(
                    ChannelPolicy(
                        Channel.WHATSAPP,
                        {Purpose.MARKETING: ConsentMode.OPT_IN},
                        hard_opt_out=True,
                        tone=ChannelTone(300),
                    )
                ),
            }
        )
        sms = rules.channel_policy(Channel.SMS)
        assert same_meaning(sms, ChannelPolicy(Channel.SMS, cost=0.01))
        assert not sms.hard_opt_out
        assert sms.consent_mode(Purpose.MARKETING) is ConsentMode.OPT_OUT
        whatsapp = rules.channel_policy(Channel.WHATSAPP)
        assert whatsapp.session_window is None
        assert whatsapp.consent_mode(Purpose.SERVICE) is ConsentMode.OPT_OUT
        assert whatsapp.tone == ChannelTone(300)
        # Decided again, a marketing SMS without a grant goes, as it went then.
        decision = decide(request(Channel.SMS), customer(consents={}), [], rules, NOON)
        assert decision.outcome is Outcome.SEND
        # A channel it left out had no policy then, and has none now: a marketing voice call
        # without a grant went then, and is decided again alike.
        assert same_meaning(rules.channel_policy(Channel.VOICE), ChannelPolicy(Channel.VOICE))
        called = decide(request(Channel.VOICE), customer(consents={}), [], rules, NOON)
        assert called.outcome is Outcome.SEND

    def test_one_stored_before_tones_existed_reads_back_with_the_default_tone(self) -> None:
        legacy = {
            "channel": "whatsapp",
            "consent": {"marketing": "opt_in", "service": "opt_in"},
            "session_window": "P1D",
            "requires_verified_identity": False,
            "hard_opt_out": True,
            "cost": 0.0147,
        }
        rules = stored_before({"whatsapp": legacy})
        in_force = rules.channel_policy(Channel.WHATSAPP)
        assert same_meaning(in_force, BUILT_IN_CHANNELS[Channel.WHATSAPP])
        assert in_force.session_window == timedelta(days=1)

    def test_the_built_in_rules_stored_whole_mean_the_built_in_policies(self) -> None:
        channels = {str(c): whole(policy) for c, policy in BUILT_IN_CHANNELS.items()}
        rules = stored_before(channels)
        for channel in Channel:
            assert same_meaning(rules.channel_policy(channel), BUILT_IN_CHANNELS[channel])
            assert same_meaning(
                rules.channel_policy(channel), default_rule_set().channel_policy(channel)
            )

    def test_its_document_publishes_again_as_the_same_rule_set(self) -> None:
        rules = stored_before({"sms": whole(ChannelPolicy(Channel.SMS, hard_opt_out=False))})
        document = rule_set_document(rules)
        assert document["channels"]["sms"]["hard_opt_out"] is False
        assert document["channels"]["sms"]["consent"] == {
            "transactional": "opt_out",
            "service": "opt_out",
            "marketing": "opt_out",
        }
        assert decode_rule_set(json.dumps(document), rules.version) == rules
