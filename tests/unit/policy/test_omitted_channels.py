"""A channel a published rule set leaves out keeps its built-in policy; one it names changes only
the fields it gives, over its built-in policy. Neither leaving a channel out nor naming it for
one field drops what the channel's regulation demands."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest

from domain.policy.decision import ConsentState, Effect, Outcome
from domain.policy.defaults import default_rule_set
from domain.policy.engine import decide
from domain.policy.rule_document import (
    RuleSetInvalid,
    channels_in_force,
    decode_rule_set,
    rule_set_document,
)
from domain.policy.rules import BUILT_IN_CHANNELS, ConsentMode
from domain.policy.tone import DEFAULT_TONES, ChannelTone
from domain.policy.vocabulary import Channel, Purpose
from tests.unit.policy.builders import NOON, customer, opted_in, request

ONLY_EMAIL = decode_rule_set(
    '{"channels": {"email": {"consent": {"marketing": "opt_in"}, "cost": 0.001}}}', version=5
)
NO_CHANNELS = decode_rule_set('{"channels": {}}', version=6)
EMPTY = decode_rule_set("{}", version=7)
STOPPED_SMS = {Channel.SMS: ConsentState(False, "inbound STOP", NOON - timedelta(days=1))}


def rule_ids(decision) -> list[str]:  # type: ignore[no-untyped-def]
    return [rule.rule_id for rule in decision.fired]


class TestAnOmittedChannelKeepsItsBuiltInPolicy:
    def test_marketing_sms_without_consent_is_suppressed_under_rules_naming_only_email(
        self,
    ) -> None:
        no_sms_consent = customer(consents=opted_in((Channel.EMAIL, Purpose.MARKETING)))
        decision = decide(request(Channel.SMS), no_sms_consent, [], ONLY_EMAIL, NOON)
        assert decision.outcome is Outcome.SUPPRESS
        assert decision.rule_set_version == 5
        blocked = decision.fired[0]
        assert blocked.rule_id == "consent.sms.marketing"
        assert blocked.effect is Effect.BLOCKED_CHANNEL
        assert blocked.channel is Channel.SMS
        assert "sms needs opt-in for marketing" in blocked.reason
        assert rule_ids(decision)[-1] == "channels"

    def test_marketing_sms_with_consent_goes_and_cites_it(self) -> None:
        consented = customer(consents=opted_in((Channel.SMS, Purpose.MARKETING)))
        decision = decide(request(Channel.SMS), consented, [], ONLY_EMAIL, NOON)
        assert decision.outcome is Outcome.SEND
        assert rule_ids(decision) == ["consent.sms.marketing"]

    def test_whatsapp_service_outside_the_session_window_is_blocked_under_no_channels(
        self,
    ) -> None:
        wrote_long_ago = customer(last_inbound={Channel.WHATSAPP: NOON - timedelta(hours=30)})
        decision = decide(
            request(Channel.WHATSAPP, purpose=Purpose.SERVICE),
            wrote_long_ago,
            [],
            NO_CHANNELS,
            NOON,
        )
        assert decision.outcome is Outcome.SUPPRESS
        assert decision.fired[0].rule_id == "session_window.whatsapp"
        assert "24h customer-service window" in decision.fired[0].reason

    def test_whatsapp_inside_the_window_or_as_an_approved_template_goes_under_no_channels(
        self,
    ) -> None:
        wrote_lately = customer(last_inbound={Channel.WHATSAPP: NOON - timedelta(hours=2)})
        service = request(Channel.WHATSAPP, purpose=Purpose.SERVICE)
        assert decide(service, wrote_lately, [], NO_CHANNELS, NOON).outcome is Outcome.SEND
        template = request(Channel.WHATSAPP, purpose=Purpose.SERVICE, approved_template=True)
        assert decide(template, customer(), [], NO_CHANNELS, NOON).outcome is Outcome.SEND

    def test_whatsapp_service_needs_opt_in_under_an_empty_document(self) -> None:
        decision = decide(
            request(Channel.WHATSAPP, purpose=Purpose.SERVICE, approved_template=True),
            customer(consents={}),
            [],
            EMPTY,
            NOON,
        )
        assert decision.outcome is Outcome.SUPPRESS
        assert decision.fired[0].rule_id == "consent.whatsapp.service"

    def test_stop_on_sms_stays_absolute_when_sms_is_left_out(self) -> None:
        for rules in (ONLY_EMAIL, NO_CHANNELS, EMPTY):
            decision = decide(
                request(Channel.SMS, purpose=Purpose.TRANSACTIONAL),
                customer(opted_out=STOPPED_SMS),
                [],
                rules,
                NOON,
            )
            assert decision.outcome is Outcome.SUPPRESS, rules.version
            assert decision.fired[0].rule_id == "opt_out.sms"

    def test_marketing_voice_needs_opt_in_when_voice_is_left_out(self) -> None:
        decision = decide(request(Channel.VOICE), customer(consents={}), [], NO_CHANNELS, NOON)
        assert decision.outcome is Outcome.SUPPRESS
        assert decision.fired[0].rule_id == "consent.voice.marketing"

    def test_an_omitted_channel_costs_what_it_is_built_in_to_cost(self) -> None:
        rules = decode_rule_set(
            '{"channels": {"email": {}}, "approvals": [{"id": "approval.costly", '
            '"cost_above": 0.01}]}',
            version=8,
        )
        decision = decide(
            request(Channel.WHATSAPP, purpose=Purpose.TRANSACTIONAL, approved_template=True),
            customer(),
            [],
            rules,
            NOON,
        )
        assert decision.outcome is Outcome.HOLD
        assert "one whatsapp message costs 0.0147" in decision.fired[-1].reason
        assert rules.channel_policy(Channel.SMS).cost == BUILT_IN_CHANNELS[Channel.SMS].cost

    def test_every_omitted_channel_is_as_the_default_rule_set_has_it(self) -> None:
        defaults = default_rule_set()
        for channel in Channel:
            assert NO_CHANNELS.channel_policy(channel) == defaults.channel_policy(channel)
            assert EMPTY.tone_for(channel) == defaults.tone_for(channel) == DEFAULT_TONES[channel]
        for channel in set(Channel) - {Channel.EMAIL}:
            assert ONLY_EMAIL.channel_policy(channel) == BUILT_IN_CHANNELS[channel]

    def test_the_default_rule_set_names_every_channel_as_built_in(self) -> None:
        defaults = default_rule_set()
        assert set(defaults.channels) == set(Channel)
        assert defaults.effective_channels() == dict(BUILT_IN_CHANNELS)


class TestANamedChannelChangesOnlyWhatItNames:
    def test_a_tone_only_sms_keeps_its_opt_in_and_its_absolute_stop(self) -> None:
        rules = decode_rule_set('{"channels": {"sms": {"tone": {"max_length": 100}}}}', version=9)
        no_grant = decide(request(Channel.SMS), customer(consents={}), [], rules, NOON)
        assert no_grant.outcome is Outcome.SUPPRESS
        assert no_grant.fired[0].rule_id == "consent.sms.marketing"
        stopped = decide(
            request(Channel.SMS, purpose=Purpose.TRANSACTIONAL),
            customer(opted_out=STOPPED_SMS),
            [],
            rules,
            NOON,
        )
        assert stopped.outcome is Outcome.SUPPRESS
        assert stopped.fired[0].rule_id == "opt_out.sms"
        assert rules.tone_for(Channel.SMS).max_length == 100
        built_in = BUILT_IN_CHANNELS[Channel.SMS]
        assert rules.channel_policy(Channel.SMS) == replace(built_in, tone=ChannelTone(100))

    def test_a_cost_only_sms_keeps_everything_else(self) -> None:
        rules = decode_rule_set('{"channels": {"sms": {"cost": 0.01}}}', version=10)
        built_in = BUILT_IN_CHANNELS[Channel.SMS]
        assert rules.channel_policy(Channel.SMS) == replace(built_in, cost=0.01)

    def test_naming_marketing_opt_out_makes_marketing_sms_permissive(self) -> None:
        rules = decode_rule_set(
            '{"channels": {"sms": {"consent": {"marketing": "opt_out"}}}}', version=11
        )
        decision = decide(request(Channel.SMS), customer(consents={}), [], rules, NOON)
        assert decision.outcome is Outcome.SEND
        policy = rules.channel_policy(Channel.SMS)
        assert policy.consent_mode(Purpose.MARKETING) is ConsentMode.OPT_OUT
        assert policy.consent_mode(Purpose.SERVICE) is ConsentMode.OPT_IN  # not named: kept
        assert policy.hard_opt_out

    def test_an_empty_consent_or_an_empty_entry_changes_nothing(self) -> None:
        for document in ('{"sms": {"consent": {}}}', '{"sms": {}}'):
            rules = decode_rule_set(f'{{"channels": {document}}}', version=12)
            assert rules.effective_channels() == dict(BUILT_IN_CHANNELS), document

    def test_hard_opt_out_false_lets_transactional_pass_a_stop(self) -> None:
        rules = decode_rule_set('{"channels": {"sms": {"hard_opt_out": false}}}', version=13)
        decision = decide(
            request(Channel.SMS, purpose=Purpose.TRANSACTIONAL),
            customer(opted_out=STOPPED_SMS),
            [],
            rules,
            NOON,
        )
        assert decision.outcome is Outcome.SEND
        marketing = decide(request(Channel.SMS), customer(consents={}), [], rules, NOON)
        assert marketing.fired[0].rule_id == "consent.sms.marketing"  # opt-in kept

    def test_a_null_session_window_removes_whatsapps(self) -> None:
        rules = decode_rule_set('{"channels": {"whatsapp": {"session_window": null}}}', 14)
        wrote_long_ago = customer(last_inbound={Channel.WHATSAPP: NOON - timedelta(hours=30)})
        service = request(Channel.WHATSAPP, purpose=Purpose.SERVICE)
        assert decide(service, wrote_long_ago, [], rules, NOON).outcome is Outcome.SEND
        policy = rules.channel_policy(Channel.WHATSAPP)
        assert policy.session_window is None
        assert policy.hard_opt_out
        assert policy.consent_mode(Purpose.SERVICE) is ConsentMode.OPT_IN

    def test_a_named_whatsapp_without_a_session_window_keeps_the_built_in_one(self) -> None:
        rules = decode_rule_set('{"channels": {"whatsapp": {"cost": 0.02}}}', version=15)
        wrote_long_ago = customer(last_inbound={Channel.WHATSAPP: NOON - timedelta(hours=30)})
        service = request(Channel.WHATSAPP, purpose=Purpose.SERVICE)
        decision = decide(service, wrote_long_ago, [], rules, NOON)
        assert decision.outcome is Outcome.SUPPRESS
        assert decision.fired[0].rule_id == "session_window.whatsapp"
        changed = decode_rule_set('{"channels": {"whatsapp": {"session_window": "2h"}}}', 16)
        assert changed.channel_policy(Channel.WHATSAPP).session_window == timedelta(hours=2)

    def test_a_tone_replaces_the_tone_whole(self) -> None:
        rules = decode_rule_set(
            '{"channels": {"sms": {"cost": 0.05, "tone": {"max_length": 100}}}}', version=17
        )
        assert rules.channel_policy(Channel.SMS).cost == 0.05
        assert rules.tone_for(Channel.SMS) == ChannelTone(100)  # tone's defaults, not SMS's
        assert rules.tone_for(Channel.EMAIL) == DEFAULT_TONES[Channel.EMAIL]
        reset = decode_rule_set('{"channels": {"sms": {"tone": null}}}', version=18)
        assert reset.tone_for(Channel.SMS) == DEFAULT_TONES[Channel.SMS]

    def test_validation_still_names_the_channels_field(self) -> None:
        faults = {
            '{"sms": {"consent": {"marketing": "maybe"}}}': "$.channels.sms.consent.marketing",
            '{"sms": {"hard_opt_out": null}}': "$.channels.sms.hard_opt_out",
            '{"sms": {"cost": -1}}': "$.channels.sms.cost",
            '{"whatsapp": {"session_window": "soon"}}': "$.channels.whatsapp.session_window",
            '{"sms": {"tone": {"max_length": 5}}}': "$.channels.sms.tone.max_length",
        }
        for channels, path in faults.items():
            with pytest.raises(RuleSetInvalid) as refused:
                decode_rule_set(f'{{"channels": {channels}}}', version=19)
            assert [error.path for error in refused.value.errors] == [path], channels


class TestTheDocumentOut:
    def test_the_document_keeps_only_the_channels_it_named(self) -> None:
        assert "channels" not in rule_set_document(NO_CHANNELS)  # none named, none shown
        assert list(rule_set_document(ONLY_EMAIL)["channels"]) == ["email"]

    def test_the_document_keeps_only_the_fields_each_channel_named(self) -> None:
        channels = {
            "sms": {"tone": {"max_length": 100}},
            "whatsapp": {"session_window": None, "consent": {"marketing": "opt_out"}},
            "voice": {"hard_opt_out": False, "cost": 0.0},
            "push": {"tone": None},
            "chat": {},
        }
        rules = decode_rule_set(json.dumps({"channels": channels}), version=20)
        shown = rule_set_document(rules)["channels"]
        assert shown == {**channels, "push": {"tone": None}}
        assert decode_rule_set(json.dumps(rule_set_document(rules)), version=20) == rules

    def test_channels_in_force_show_every_channel_named_or_built_in(self) -> None:
        in_force = channels_in_force(ONLY_EMAIL)
        assert list(in_force) == [str(channel) for channel in Channel]
        assert in_force["email"] == {
            "consent": {"marketing": "opt_in"},
            "session_window": None,
            "requires_verified_identity": False,
            "hard_opt_out": False,
            "cost": 0.001,
        }
        assert in_force["sms"] == {
            "consent": {"marketing": "opt_in", "service": "opt_in"},
            "session_window": None,
            "requires_verified_identity": False,
            "hard_opt_out": True,
            "cost": 0.0079,
        }
        assert in_force["whatsapp"]["session_window"] == "24h"

    def test_channels_in_force_show_a_named_channel_over_its_built_in_policy(self) -> None:
        rules = decode_rule_set(
            '{"channels": {"sms": {"hard_opt_out": false, "tone": {"max_length": 99}}}}', 21
        )
        assert channels_in_force(rules)["sms"] == {
            "consent": {"marketing": "opt_in", "service": "opt_in"},
            "session_window": None,
            "requires_verified_identity": False,
            "hard_opt_out": False,
            "cost": 0.0079,
            "tone": {"max_length": 99},
        }

    def test_channels_in_force_read_back_as_the_same_policies(self) -> None:
        for rules in (EMPTY, ONLY_EMAIL, default_rule_set()):
            document = json.dumps({"channels": channels_in_force(rules)})
            explicit = decode_rule_set(document, version=7)
            assert explicit.effective_channels() == rules.effective_channels()
