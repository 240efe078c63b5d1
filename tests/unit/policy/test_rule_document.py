"""The rule-set document: what it accepts, what it means, and how it says what is wrong."""

from __future__ import annotations

import json
from datetime import time, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.policy.defaults import default_rule_set
from domain.policy.rule_document import (
    RuleError,
    RuleSetInvalid,
    decode_rule_set,
    rule_set_document,
)
from domain.policy.rules import (
    ApprovalRule,
    ChannelOverride,
    ConsentMode,
    DedupRule,
    FrequencyCap,
    OnExceed,
    QuietHours,
    QuietWindow,
    RuleSet,
)
from domain.policy.tone import ChannelTone
from domain.policy.vocabulary import Channel, Purpose
from domain.shared.durations import format_duration, parse_duration

EXAMPLE: dict[str, Any] = {
    "default_time_zone": "Europe/London",
    "channels": {
        "sms": {
            "consent": {"marketing": "opt_in", "service": "opt_in"},
            "hard_opt_out": True,
            "cost": 0.0079,
        },
        "whatsapp": {
            "consent": {"marketing": "opt_in"},
            "session_window": "24h",
            "hard_opt_out": True,
        },
    },
    "quiet_hours": [
        {
            "id": "quiet.night",
            "windows": [
                {
                    "start": "21:00",
                    "end": "08:00",
                    "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                }
            ],
            "channels": ["sms", "push"],
            "purposes": ["marketing", "service"],
            "bypass": {"purposes": ["transactional"], "min_priority": 90},
        }
    ],
    "caps": [
        {"id": "cap.global.daily", "limit": 3, "window": "1d"},
        {
            "id": "cap.marketing.weekly",
            "limit": 5,
            "window": "7d",
            "purpose": "marketing",
            "on_exceed": "defer",
        },
        {
            "id": "cap.growth.sms",
            "limit": 2,
            "window": "24h",
            "channel": "sms",
            "team": "growth",
            "reserved": 1,
            "reserved_priority": 80,
        },
    ],
    "dedup": {"id": "dedup", "window": "24h"},
    "team_priorities": {"billing": 90, "growth": 20},
}


def parse(document: dict[str, Any] | list[Any], version: int = 1) -> RuleSet:
    return decode_rule_set(json.dumps(document).encode(), version)


def errors_of(document: dict[str, Any] | list[Any] | bytes) -> list[RuleError]:
    raw = document if isinstance(document, bytes) else json.dumps(document).encode()
    with pytest.raises(RuleSetInvalid) as raised:
        decode_rule_set(raw, 1)
    return raised.value.errors


def paths_of(document: dict[str, Any] | list[Any] | bytes) -> list[str]:
    return [error.path for error in errors_of(document)]


def only_error(document: dict[str, Any] | list[Any] | bytes) -> RuleError:
    (error,) = errors_of(document)
    return error


def cap(**fields: Any) -> dict[str, Any]:
    return {"id": "cap.test", "limit": 3, "window": "1d", **fields}


def quiet(*windows: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"id": "quiet.test", "windows": list(windows), **fields}


def window(start: str = "21:00", end: str = "08:00", **fields: Any) -> dict[str, Any]:
    return {"start": start, "end": end, **fields}


class TestAValidDocumentParses:
    def test_the_example_document_becomes_the_domain_rule_set(self) -> None:
        rules = parse(EXAMPLE, version=4)

        assert rules == RuleSet(
            version=4,
            default_time_zone="Europe/London",
            channels={
                Channel.SMS: ChannelOverride(
                    {Purpose.MARKETING: ConsentMode.OPT_IN, Purpose.SERVICE: ConsentMode.OPT_IN},
                    hard_opt_out=True,
                    cost=0.0079,
                ),
                Channel.WHATSAPP: ChannelOverride(
                    {Purpose.MARKETING: ConsentMode.OPT_IN},
                    session_window=timedelta(hours=24),
                    hard_opt_out=True,
                ),
            },
            quiet_hours=(
                QuietHours(
                    "quiet.night",
                    (QuietWindow(time(21), time(8)),),
                    channels=frozenset({Channel.SMS, Channel.PUSH}),
                    purposes=frozenset({Purpose.MARKETING, Purpose.SERVICE}),
                    bypass_purposes=frozenset({Purpose.TRANSACTIONAL}),
                    bypass_min_priority=90,
                ),
            ),
            caps=(
                FrequencyCap("cap.global.daily", 3, timedelta(days=1)),
                FrequencyCap(
                    "cap.marketing.weekly", 5, timedelta(days=7), purpose=Purpose.MARKETING
                ),
                FrequencyCap(
                    "cap.growth.sms",
                    2,
                    timedelta(hours=24),
                    channel=Channel.SMS,
                    team="growth",
                    reserved=1,
                    reserved_priority=80,
                ),
            ),
            dedup=DedupRule("dedup", timedelta(hours=24)),
            team_priorities={"billing": 90, "growth": 20},
        )

    def test_an_empty_document_is_the_empty_rule_set_in_utc(self) -> None:
        assert parse({}, version=2) == RuleSet(version=2)

    def test_omitted_fields_take_the_domain_defaults(self) -> None:
        rules = parse({"caps": [cap()], "channels": {"push": {}}, "dedup": {"window": "1h"}})

        (only,) = rules.caps
        assert only == FrequencyCap("cap.test", 3, timedelta(days=1))
        assert only.exempt_purposes == frozenset({Purpose.TRANSACTIONAL})
        assert only.on_exceed is OnExceed.DEFER
        assert rules.channels == {Channel.PUSH: ChannelOverride()}  # changes nothing
        assert rules.dedup == DedupRule("dedup", timedelta(hours=1))

    def test_an_empty_exempt_list_makes_even_transactional_count(self) -> None:
        (only,) = parse({"caps": [cap(exempt_purposes=[])]}).caps
        assert only.exempt_purposes == frozenset()

    def test_days_name_the_weekdays_a_window_starts_on(self) -> None:
        rules = parse({"quiet_hours": [quiet(window("22:00", "09:30", days=["fri", "sat"]))]})
        (quiet_window,) = rules.quiet_hours[0].windows
        assert quiet_window == QuietWindow(time(22), time(9, 30), frozenset({4, 5}))

    def test_a_bypass_without_a_minimum_priority_lets_any_priority_through(self) -> None:
        rules = parse({"quiet_hours": [quiet(window(), bypass={"purposes": ["transactional"]})]})
        assert rules.quiet_hours[0].bypass_min_priority == 0
        assert not rules.quiet_hours[0].applies(Channel.SMS, Purpose.TRANSACTIONAL, priority=0)

    def test_the_document_may_be_text(self) -> None:
        assert decode_rule_set('{"default_time_zone": "Asia/Tokyo"}', 1).default_time_zone == (
            "Asia/Tokyo"
        )


class TestDurations:
    @pytest.mark.parametrize(
        ("text", "span"),
        [
            ("30s", timedelta(seconds=30)),
            ("15m", timedelta(minutes=15)),
            ("2h", timedelta(hours=2)),
            ("1d", timedelta(days=1)),
            ("7d", timedelta(days=7)),
            ("2w", timedelta(weeks=2)),
            ("1h30m", timedelta(minutes=90)),
            ("1d12h", timedelta(hours=36)),
            ("1h0m5s", timedelta(hours=1, seconds=5)),
        ],
    )
    def test_human_durations_parse(self, text: str, span: timedelta) -> None:
        assert parse_duration(text) == span

    @pytest.mark.parametrize("text", ["", "1", "h", "1x", "1.5h", "30m1h", "1 h", "-1h", "1H"])
    def test_anything_else_is_refused_with_the_syntax(self, text: str) -> None:
        with pytest.raises(ValueError, match=r"e\.g\. 30s, 15m, 2h, 7d or 1h30m"):
            parse_duration(text)

    @pytest.mark.parametrize(
        ("span", "text"),
        [
            (timedelta(hours=24), "24h"),
            (timedelta(days=7), "7d"),
            (timedelta(minutes=90), "1h30m"),
            (timedelta(days=2, hours=3), "2d3h"),
            (timedelta(seconds=45), "45s"),
        ],
    )
    def test_windows_are_written_as_people_say_them(self, span: timedelta, text: str) -> None:
        assert format_duration(span) == text

    @given(st.integers(min_value=1, max_value=10 * 365 * 86400))
    def test_every_whole_number_of_seconds_reads_back(self, seconds: int) -> None:
        span = timedelta(seconds=seconds)
        assert parse_duration(format_duration(span)) == span


def _every_rule_kind() -> RuleSet:
    return RuleSet(
        version=9,
        default_time_zone="America/New_York",
        channels={
            Channel.EMAIL: ChannelOverride(
                {Purpose.MARKETING: ConsentMode.OPT_IN, Purpose.TRANSACTIONAL: ConsentMode.NONE},
                requires_verified_identity=True,
                cost=0.001,
            ),
            Channel.WHATSAPP: ChannelOverride(session_window=timedelta(hours=23, minutes=30)),
            Channel.SMS: ChannelOverride(
                session_window=None, hard_opt_out=False, cost=0.0, tone=ChannelTone(200)
            ),
            Channel.VOICE: ChannelOverride(tone=None),
        },
        quiet_hours=(
            QuietHours(
                "quiet.weekend",
                (
                    QuietWindow(time(0), time(23, 59, 30), frozenset({5, 6})),
                    QuietWindow(time(22, 15), time(7, 45), frozenset({0, 2, 4})),
                ),
                bypass_purposes=frozenset({Purpose.TRANSACTIONAL, Purpose.SERVICE}),
                bypass_min_priority=50,
            ),
            QuietHours(
                "quiet.push", (QuietWindow(time(20), time(9)),), channels=frozenset({Channel.PUSH})
            ),
        ),
        caps=(
            FrequencyCap(
                "cap.team.daily",
                2,
                timedelta(days=1),
                per_team=True,
                exempt_purposes=frozenset(),
                on_exceed=OnExceed.SUPPRESS,
            ),
            FrequencyCap(
                "cap.billing.sms",
                4,
                timedelta(hours=6),
                channel=Channel.SMS,
                purpose=Purpose.SERVICE,
                team="billing",
                exempt_purposes=frozenset({Purpose.TRANSACTIONAL, Purpose.MARKETING}),
                reserved=4,
                reserved_priority=70,
            ),
            FrequencyCap("cap.off", 0, timedelta(minutes=5)),
        ),
        dedup=None,
        team_priorities={"support": 100},
    )


class TestRoundTrip:
    @pytest.mark.parametrize(
        "rules",
        [
            default_rule_set(),
            default_rule_set(version=12),
            RuleSet(version=1),
            _every_rule_kind(),
            RuleSet(version=3, dedup=DedupRule("dedup.orders", timedelta(days=30))),
        ],
        ids=["default", "default-v12", "empty", "every-rule-kind", "dedup-only"],
    )
    def test_a_rule_set_reads_back_from_its_document(self, rules: RuleSet) -> None:
        document = json.dumps(rule_set_document(rules)).encode()
        assert decode_rule_set(document, rules.version) == rules

    def test_the_document_leaves_defaults_out_and_names_the_time_zone(self) -> None:
        document = rule_set_document(default_rule_set())

        assert document["default_time_zone"] == "UTC"
        assert document["channels"]["push"] == {}
        assert document["caps"][0] == {"id": "cap.global.daily", "limit": 3, "window": "24h"}
        assert document["dedup"] == {"window": "24h"}
        assert "version" not in document

    def test_the_document_is_plain_json(self) -> None:
        document = rule_set_document(_every_rule_kind())
        assert json.loads(json.dumps(document)) == document
        assert document["quiet_hours"][0]["windows"][0] == {
            "start": "00:00",
            "end": "23:59:30",
            "days": ["sat", "sun"],
        }


class TestTheDefaultRuleSetAsADocument:
    def test_a_hand_written_document_of_the_defaults_parses_to_them(self) -> None:
        document = {
            "default_time_zone": "UTC",
            "channels": {
                "email": {"consent": {"marketing": "opt_in"}, "cost": 0.0008},
                "sms": {
                    "consent": {"marketing": "opt_in", "service": "opt_in"},
                    "hard_opt_out": True,
                    "cost": 0.0079,
                },
                "whatsapp": {
                    "consent": {"marketing": "opt_in", "service": "opt_in"},
                    "session_window": "24h",
                    "hard_opt_out": True,
                    "cost": 0.0147,
                },
                "push": {},
                "voice": {"consent": {"marketing": "opt_in"}, "hard_opt_out": True},
                "chat": {},
            },
            "quiet_hours": [
                {
                    "id": "quiet.night",
                    "windows": [{"start": "21:00", "end": "08:00"}],
                    "channels": ["sms", "whatsapp", "voice", "push"],
                    "purposes": ["marketing", "service"],
                }
            ],
            "caps": [
                {"id": "cap.global.daily", "limit": 3, "window": "1d"},
                {
                    "id": "cap.marketing.weekly",
                    "limit": 5,
                    "window": "7d",
                    "purpose": "marketing",
                },
            ],
            "dedup": {"id": "dedup", "window": "1d"},
        }
        assert parse(document, version=5) == default_rule_set(version=5)


class TestSchemaErrorsNameTheirPath:
    def test_an_unknown_top_level_field_is_refused_with_its_path(self) -> None:
        assert only_error({"version": 3}) == RuleError("$.version", "unknown field")

    def test_an_unknown_field_deep_inside_is_refused_with_its_path(self) -> None:
        document = {"caps": [cap(), cap(id="cap.two", colour="red")]}
        assert only_error(document) == RuleError("$.caps[1].colour", "unknown field")

    def test_an_unknown_field_in_a_channel_names_the_channel(self) -> None:
        document = {"channels": {"email": {}, "sms": {"stop_words": ["STOP"]}}}
        assert only_error(document) == RuleError("$.channels.sms.stop_words", "unknown field")

    def test_an_unknown_field_in_a_window_names_the_window(self) -> None:
        document = {"quiet_hours": [quiet(window(), window(tz="UTC"))]}
        assert paths_of(document) == ["$.quiet_hours[0].windows[1].tz"]

    def test_a_missing_required_field_is_named(self) -> None:
        error = only_error({"caps": [{"id": "cap.x", "window": "1d"}]})
        assert error == RuleError("$.caps[0].limit", "required field is missing")

    def test_an_unknown_channel_lists_the_channels(self) -> None:
        error = only_error({"channels": {"fax": {}}})
        assert error.path == "$.channels.fax"
        assert error.reason == "'fax' is not one of email, sms, whatsapp, push, voice, chat"

    def test_an_unknown_purpose_in_consent_lists_the_purposes(self) -> None:
        error = only_error({"channels": {"sms": {"consent": {"promo": "opt_in"}}}})
        assert error.path == "$.channels.sms.consent.promo"
        assert "transactional, service, marketing" in error.reason

    def test_an_unknown_consent_mode_lists_the_modes(self) -> None:
        document = {"channels": {"email": {}, "sms": {"consent": {"marketing": "maybe"}}}}
        error = only_error(document)
        assert error == RuleError(
            "$.channels.sms.consent.marketing", "'maybe' is not one of opt_in, opt_out, none"
        )

    def test_a_negative_cost_names_the_channel(self) -> None:
        error = only_error({"channels": {"email": {}, "sms": {"cost": -0.01}}})
        assert error == RuleError("$.channels.sms.cost", "must be a number >= 0")

    def test_a_negative_limit_is_refused(self) -> None:
        assert only_error({"caps": [cap(limit=-1)]}) == RuleError(
            "$.caps[0].limit", "must be a whole number >= 0"
        )

    def test_a_wrong_type_says_what_was_expected(self) -> None:
        assert only_error({"caps": [cap(limit="three")]}) == RuleError(
            "$.caps[0].limit", "must be a whole number, not text"
        )

    def test_a_malformed_id_says_what_an_id_is(self) -> None:
        error = only_error({"caps": [cap(id="Cap Daily")]})
        assert error.path == "$.caps[0].id"
        assert "a-z, 0-9" in error.reason

    def test_an_unknown_enum_value_in_a_list_names_its_index(self) -> None:
        error = only_error({"quiet_hours": [quiet(window(), channels=["sms", "pigeon"])]})
        assert error.path == "$.quiet_hours[0].channels[1]"
        assert error.reason.startswith("'pigeon' is not one of email")

    def test_an_unknown_on_exceed_lists_the_choices(self) -> None:
        error = only_error({"caps": [cap(on_exceed="drop")]})
        assert error == RuleError("$.caps[0].on_exceed", "'drop' is not one of defer, suppress")

    def test_a_bad_team_priority_names_the_team(self) -> None:
        assert paths_of({"team_priorities": {"billing": 90, "growth": "high"}}) == [
            "$.team_priorities.growth"
        ]

    def test_a_bad_team_name_names_the_team(self) -> None:
        error = only_error({"team_priorities": {"billing": 90, "Growth Team": 1}})
        assert error.path == "$.team_priorities.Growth Team"
        assert error.reason.startswith("the name must be 1 to 64 characters")

    def test_an_empty_list_of_windows_is_refused(self) -> None:
        assert paths_of({"quiet_hours": [quiet()]}) == ["$.quiet_hours[0].windows"]

    def test_a_document_that_is_not_an_object_is_refused(self) -> None:
        assert only_error([]) == RuleError("$", "must be an object, not a list")

    def test_text_that_is_not_json_is_refused_at_the_root(self) -> None:
        error = only_error(b'{"caps": [')
        assert error.path == "$"
        assert error.reason.startswith("not valid JSON")


class TestSemanticErrorsNameTheirPath:
    def test_a_duplicate_id_points_at_the_first_use(self) -> None:
        document = {
            "quiet_hours": [quiet(window(), id="night")],
            "caps": [cap(id="daily"), cap(id="night")],
        }
        assert only_error(document) == RuleError(
            "$.caps[1].id", "id 'night' is already used at $.quiet_hours[0]"
        )

    def test_the_dedup_rule_id_must_be_unique_too(self) -> None:
        document = {"caps": [cap(id="dedup")], "dedup": {"window": "1d"}}
        assert paths_of(document) == ["$.dedup.id"]

    def test_more_reserved_slots_than_the_limit_is_refused(self) -> None:
        error = only_error({"caps": [cap(), cap(id="cap.b", limit=2, reserved=3)]})
        assert error.path == "$.caps[1].reserved"
        assert "3 slots reserved but the limit is 2" in error.reason

    def test_an_unknown_time_zone_is_refused(self) -> None:
        error = only_error({"default_time_zone": "Europe/Atlantis"})
        assert error.path == "$.default_time_zone"
        assert "'Europe/Atlantis' is not an IANA time zone" in error.reason

    def test_a_window_that_ends_when_it_starts_is_refused(self) -> None:
        error = only_error({"quiet_hours": [quiet(window(), window("21:00", "21:00"))]})
        assert error.path == "$.quiet_hours[0].windows[1].end"
        assert "ends when it starts" in error.reason

    def test_a_day_that_is_not_mon_to_sun_is_refused(self) -> None:
        error = only_error({"quiet_hours": [quiet(window(days=["mon", "Tuesday"]))]})
        assert error == RuleError(
            "$.quiet_hours[0].windows[0].days[1]",
            "'Tuesday' is not a day: use mon, tue, wed, thu, fri, sat, sun",
        )

    @pytest.mark.parametrize("text", ["a day", "24", "1.5h"])
    def test_a_duration_that_does_not_parse_is_refused(self, text: str) -> None:
        error = only_error({"caps": [cap(window=text)]})
        assert error.path == "$.caps[0].window"
        assert error.reason.startswith(f"{text!r} is not a duration")

    def test_a_zero_window_is_refused(self) -> None:
        error = only_error({"dedup": {"window": "0s"}})
        assert error.path == "$.dedup.window"
        assert "longer than zero" in error.reason

    def test_a_bad_session_window_names_the_channel(self) -> None:
        assert paths_of({"channels": {"whatsapp": {"session_window": "one day"}}}) == [
            "$.channels.whatsapp.session_window"
        ]

    @pytest.mark.parametrize("text", ["9:00", "24:00", "21h", "21:60"])
    def test_a_time_of_day_must_be_hh_mm(self, text: str) -> None:
        error = only_error({"quiet_hours": [quiet(window(start=text))]})
        assert error.path == "$.quiet_hours[0].windows[0].start"
        assert "HH:MM" in error.reason

    @pytest.mark.parametrize("rule_id", ["expiry", "channels", "suppression", "consent.sms.x"])
    def test_an_id_the_engine_cites_itself_is_reserved(self, rule_id: str) -> None:
        error = only_error({"caps": [cap(id=rule_id)]})
        assert error.path == "$.caps[0].id"
        assert "reserved for the engine" in error.reason


class TestEverySemanticErrorIsReported:
    def test_all_faults_come_back_together_in_document_order(self) -> None:
        document = {
            "default_time_zone": "Mars/Olympus",
            "channels": {"whatsapp": {"session_window": "a day"}},
            "quiet_hours": [
                quiet(window("21:00", "21:00"), window(days=["mon", "funday"]), id="rule.a")
            ],
            "caps": [
                cap(id="rule.a", window="1x"),
                cap(id="cap.b", limit=1, reserved=2),
            ],
            "dedup": {"window": "0s"},
        }
        assert paths_of(document) == [
            "$.default_time_zone",
            "$.channels.whatsapp.session_window",
            "$.quiet_hours[0].windows[0].end",
            "$.quiet_hours[0].windows[1].days[1]",
            "$.caps[0].id",
            "$.caps[0].window",
            "$.caps[1].reserved",
            "$.dedup.window",
        ]

    def test_the_exception_message_lists_every_fault(self) -> None:
        document = {"caps": [cap(window="soon"), cap(id="cap.test")]}
        with pytest.raises(RuleSetInvalid, match=r"\$\.caps\[0\]\.window: .*; \$\.caps\[1\]\.id"):
            parse(document)


class TestApprovalIntents:
    def test_an_intent_no_classifier_knows_is_named_by_its_path(self) -> None:
        document = {
            "approvals": [{"id": "approval.refund", "intents": ["request_refund", "refnud"]}]
        }
        error = only_error(document)
        assert error.path == "$.approvals[0].intents[1]"
        assert "'refnud' is not an intent a classifier knows" in error.reason

    def test_the_datasets_spellings_are_kept_as_the_intents_keys(self) -> None:
        document = {
            "approvals": [
                {
                    "id": "approval.refund",
                    "intents": ["Refund_not_showing_up", "reverted_card_payment?"],
                }
            ]
        }
        (approval,) = parse(document).approvals
        assert approval.intents == frozenset({"refund_not_showing_up", "reverted_card_payment"})
        assert rule_set_document(parse(document))["approvals"][0]["intents"] == [
            "refund_not_showing_up",
            "reverted_card_payment",
        ]

    def test_a_rule_published_before_with_the_datasets_spelling_holds_the_intents_key(self) -> None:
        stored = ApprovalRule("approval.refund", intents=frozenset({"Refund_not_showing_up"}))
        assert stored.intents == frozenset({"refund_not_showing_up"})
