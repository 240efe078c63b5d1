"""Journey documents: what a valid one reads as, and every fault refused naming its JSON path."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.campaign.journey import (
    Branch,
    Every,
    OnApi,
    OnSchedule,
    ReEntry,
    Response,
    Send,
    Split,
    Wait,
)
from domain.campaign.journey_reader import (
    MAX_COUNT,
    MAX_PRIORITY,
    MAX_SPAN,
    MAX_STEPS,
    MAX_WEIGHT,
    JourneyFault,
    JourneyInvalid,
    decode_journey,
    journey_document,
)
from domain.policy.vocabulary import Channel
from domain.shared.documents import DocumentInvalid
from domain.triggers.definition import OnSignal

from .journeys import SEGMENTS, TEMPLATES, example, journey, read, send


def faults(document: Any) -> list[tuple[str, str]]:
    with pytest.raises(JourneyInvalid) as caught:
        decode_journey(document, templates=TEMPLATES, segments=SEGMENTS)
    return [(fault.path, fault.reason) for fault in caught.value.faults]


def paths(document: Any) -> list[str]:
    return [path for path, _ in faults(document)]


class TestAValidJourney:
    def test_the_worked_example_of_the_module_reads(self) -> None:
        read_back = read(example())
        assert isinstance(read_back.entry, OnSignal)
        assert read_back.start == "a-day-later"
        whatsapp = read_back.step("whatsapp")
        assert isinstance(whatsapp, Send)
        assert whatsapp.channels == (Channel.WHATSAPP,)
        assert read_back.policies.re_entry is ReEntry.AFTER_COOL_DOWN
        assert read_back.goal is not None
        assert read_back.goal.signal == "purchase"

    def test_it_survives_its_document(self) -> None:
        original = read(example())
        assert read(journey_document(original)) == original

    def test_it_reads_from_json_text_too(self) -> None:
        text = '{"entry": {"type": "api"}, "start": "bye", "steps": {"bye": {"type": "exit"}}}'
        read_back = decode_journey(text, templates=set(), segments=set())
        assert isinstance(read_back.entry, OnApi)

    def test_a_branch_reads_conditions_in_the_segments_language(self) -> None:
        document = journey(
            {
                "check": {
                    "type": "branch",
                    "cases": [
                        {
                            "condition": {
                                "type": "attribute",
                                "name": "tier",
                                "op": "eq",
                                "value": "gold",
                            },
                            "next": "bye",
                        },
                        {"in_segment": "vip", "next": "bye"},
                    ],
                    "else": "bye",
                },
                "bye": {"type": "exit"},
            }
        )
        step = read(document).step("check")
        assert isinstance(step, Branch)
        assert len(step.cases) == 2

    def test_a_weekly_schedule_in_each_customers_zone_reads(self) -> None:
        document = journey({"bye": {"type": "exit"}})
        document["entry"] = {
            "type": "schedule",
            "segment": "vip",
            "every": "week",
            "days": ["mon", "thu"],
            "time": "09:00",
        }
        entry = read(document).entry
        assert isinstance(entry, OnSchedule)
        assert entry.every is Every.WEEK


class TestTheSchemaNamesThePath:
    def test_a_document_that_is_not_json(self) -> None:
        assert paths("{nope") == ["$"]

    def test_a_fault_inside_a_step_names_the_step_by_its_id(self) -> None:
        document = journey({"welcome": send(channels=["fax"])})
        [(path, reason)] = faults(document)
        assert path == "$.steps.welcome.channels[0]"
        assert "'fax' is not one of email, sms" in reason

    def test_an_unknown_step_type_lists_the_types(self) -> None:
        [(path, reason)] = faults(journey({"welcome": {"type": "teleport"}}))
        assert path == "$.steps.welcome.type"
        assert "use send, wait, wait_for_signal, branch, split, update, exit" in reason

    def test_an_unknown_entry_type_lists_the_entry_types(self) -> None:
        document = journey({"bye": {"type": "exit"}})
        document["entry"] = {"type": "telepathy"}
        [(path, reason)] = faults(document)
        assert path == "$.entry.type"
        assert "signal, segment_entered, schedule, api" in reason

    def test_an_unknown_condition_type_in_a_branch_lists_the_condition_types(self) -> None:
        case = {"condition": {"type": "horoscope"}, "next": "bye"}
        document = journey(
            {"check": {"type": "branch", "cases": [case], "else": "bye"}, "bye": {"type": "exit"}}
        )
        [(path, reason)] = faults(document)
        assert path == "$.steps.check.cases[0].condition.type"
        assert "is not a condition type" in reason

    def test_a_conditions_own_fault_is_named_inside_the_branch(self) -> None:
        condition = {"type": "attribute", "name": "tier", "op": "exists", "value": 1}
        case = {"condition": condition, "next": "bye"}
        document = journey(
            {"check": {"type": "branch", "cases": [case], "else": "bye"}, "bye": {"type": "exit"}}
        )
        assert faults(document) == [
            ("$.steps.check.cases[0].condition.value", "exists takes no value")
        ]

    def test_a_goal_condition_too_big_is_refused_naming_its_path(self) -> None:
        leaf = {"type": "identity", "identity_type": "email"}
        many = {"type": "any", "conditions": [{"type": "all", "conditions": [leaf] * 60}] * 2}
        document = journey(
            {"bye": {"type": "exit"}},
            goal={"signal": "purchase", "within": "7d", "condition": many},
        )
        assert paths(document) == ["$.goal.condition"]

    def test_an_unknown_field_of_a_step(self) -> None:
        assert faults(journey({"welcome": send(colour="red")})) == [
            ("$.steps.welcome.colour", "unknown field")
        ]

    def test_a_missing_field_of_a_step(self) -> None:
        step = send()
        del step["template"]
        assert faults(journey({"welcome": step})) == [
            ("$.steps.welcome.template", "required field is missing")
        ]


class TestTheJourneyIsCheckedWhole:
    def test_an_unknown_template_is_refused_naming_its_path(self) -> None:
        assert faults(journey({"welcome": send("no-such-template")})) == [
            ("$.steps.welcome.template", "'no-such-template' is not a template")
        ]

    def test_an_unknown_segment_of_the_entry_is_refused_naming_its_path(self) -> None:
        document = journey({"bye": {"type": "exit"}})
        document["entry"] = {"type": "segment_entered", "segment": "nobody"}
        assert faults(document) == [("$.entry.segment", "'nobody' is not a segment")]

    def test_an_unknown_segment_of_a_branch_is_refused_naming_its_path(self) -> None:
        case = {"in_segment": "nobody", "next": "bye"}
        document = journey(
            {"check": {"type": "branch", "cases": [case], "else": "bye"}, "bye": {"type": "exit"}}
        )
        assert paths(document) == ["$.steps.check.cases[0].in_segment"]

    def test_a_send_with_no_channel_is_refused_naming_its_path(self) -> None:
        assert faults(journey({"welcome": send(channels=[])})) == [
            ("$.steps.welcome.channels", "a send needs at least one channel")
        ]

    def test_a_step_that_cannot_be_reached_is_refused_naming_its_path(self) -> None:
        document = journey({"welcome": send(), "orphan": {"type": "exit"}})
        assert faults(document) == [
            ("$.steps.orphan", "cannot be reached from the start ('welcome')")
        ]

    def test_a_next_naming_a_missing_step_is_refused_naming_its_path(self) -> None:
        [(path, reason)] = faults(journey({"welcome": send(next="nowhere")}))
        assert path == "$.steps.welcome.next"
        assert reason.startswith("'nowhere' is not a step of the journey")

    def test_a_start_naming_a_missing_step_is_refused(self) -> None:
        assert paths(journey({"welcome": send()}, start="nowhere")) == ["$.start"]

    def test_a_loop_without_a_wait_is_refused_naming_its_path(self) -> None:
        document = journey(
            {
                "welcome": send(next="again"),
                "again": {
                    "type": "branch",
                    "cases": [{"in_segment": "vip", "next": "bye"}],
                    "else": "welcome",
                },
                "bye": {"type": "exit"},
            }
        )
        [(path, reason)] = faults(document)
        assert path == "$.steps.again.else"
        assert "loop with no wait" in reason
        assert "welcome → again → welcome" in reason

    def test_a_step_that_leads_to_itself_is_a_loop_too(self) -> None:
        document = journey({"spin": {"type": "update", "attributes": {"n": 1}, "next": "spin"}})
        assert paths(document) == ["$.steps.spin.next"]

    def test_a_loop_through_a_wait_is_allowed(self) -> None:
        document = journey(
            {
                "nudge": send(next="pause"),
                "pause": {"type": "wait", "for": "1d", "next": "check"},
                "check": {
                    "type": "branch",
                    "cases": [{"in_segment": "vip", "next": "bye"}],
                    "else": "nudge",
                },
                "bye": {"type": "exit"},
            }
        )
        assert read(document).start == "nudge"

    @pytest.mark.parametrize(
        ("arms", "control", "path"),
        [
            ([{"name": "a", "weight": -1, "next": "bye"}], None, "$.steps.ab.arms[0].weight"),
            ([{"name": "a", "weight": 0, "next": "bye"}], {"weight": 0}, "$.steps.ab.arms"),
            (
                [{"name": "a", "weight": 5, "next": "bye"}],
                {"weight": -5},
                "$.steps.ab.control.weight",
            ),
            ([], {"weight": 5, "next": "bye"}, "$.steps.ab.arms"),
        ],
    )
    def test_bad_weights_are_refused_naming_their_path(
        self, arms: list[dict[str, Any]], control: dict[str, Any] | None, path: str
    ) -> None:
        split: dict[str, Any] = {"type": "split", "arms": arms}
        if control is not None:
            split["control"] = control
        assert paths(journey({"ab": split, "bye": {"type": "exit"}})) == [path]

    def test_a_weight_that_is_not_a_whole_number_is_refused(self) -> None:
        split = {"type": "split", "arms": [{"name": "a", "weight": 0.5, "next": "bye"}]}
        assert paths(journey({"ab": split, "bye": {"type": "exit"}})) == [
            "$.steps.ab.arms[0].weight"
        ]

    def test_two_arms_of_one_name_are_refused(self) -> None:
        arms = [
            {"name": "a", "weight": 1, "next": "bye"},
            {"name": "a", "weight": 1, "next": "bye"},
        ]
        document = journey({"ab": {"type": "split", "arms": arms}, "bye": {"type": "exit"}})
        assert paths(document) == ["$.steps.ab.arms[1].name"]

    def test_a_response_branch_must_name_an_earlier_send(self) -> None:
        def on(step: str) -> dict[str, Any]:
            case = {"response": {"step": step, "is": ["opened"]}, "next": "bye"}
            return journey(
                {
                    "welcome": send(next="pause"),
                    "pause": {"type": "wait", "for": "1d", "next": "check"},
                    "check": {"type": "branch", "cases": [case], "else": "later"},
                    "later": send(),
                    "bye": {"type": "exit"},
                }
            )

        read(on("welcome"))
        assert faults(on("pause")) == [
            ("$.steps.check.cases[0].response.step", "'pause' is not a send step")
        ]
        assert paths(on("later")) == ["$.steps.check.cases[0].response.step"]

    def test_a_case_needs_exactly_one_test(self) -> None:
        case = {
            "in_segment": "vip",
            "response": {"step": "welcome", "is": ["opened"]},
            "next": "bye",
        }
        document = journey(
            {
                "welcome": send(next="check"),
                "check": {"type": "branch", "cases": [case], "else": "bye"},
                "bye": {"type": "exit"},
            }
        )
        assert paths(document) == ["$.steps.check.cases[0]"]

    def test_a_wait_needs_a_duration_or_a_time_of_day(self) -> None:
        both = {"type": "wait", "for": "1d", "until": "09:00"}
        assert paths(journey({"w": both})) == ["$.steps.w"]
        assert paths(journey({"w": {"type": "wait", "until": "25:00"}})) == ["$.steps.w.until"]
        assert paths(journey({"w": {"type": "wait", "for": "soon"}})) == ["$.steps.w.for"]
        assert paths(journey({"w": {"type": "wait", "until": "09:00", "days": ["funday"]}})) == [
            "$.steps.w.days[0]"
        ]

    def test_an_update_of_a_field_no_profile_has_is_refused(self) -> None:
        update = {"type": "update", "profile": {"shoe_size": "42"}}
        assert paths(journey({"u": update})) == ["$.steps.u.profile.shoe_size"]

    def test_an_update_to_no_time_zone_is_refused(self) -> None:
        update = {"type": "update", "profile": {"time_zone": "Mars/Olympus"}}
        assert paths(journey({"u": update})) == ["$.steps.u.profile.time_zone"]

    def test_a_schedule_needs_one_way_to_come_round(self) -> None:
        document = journey({"bye": {"type": "exit"}})
        document["entry"] = {"type": "schedule", "segment": "vip"}
        assert paths(document) == ["$.entry", "$.entry.time"]

    def test_a_schedule_in_no_time_zone_is_refused(self) -> None:
        document = journey({"bye": {"type": "exit"}})
        document["entry"] = {
            "type": "schedule",
            "segment": "vip",
            "on": "2026-12-24",
            "time": "09:00",
            "time_zone": "Atlantis/Capital",
        }
        assert paths(document) == ["$.entry.time_zone"]

    def test_a_cool_down_goes_with_after_cool_down(self) -> None:
        document = journey({"bye": {"type": "exit"}}, policies={"re_entry": "after_cool_down"})
        assert paths(document) == ["$.policies.cool_down"]
        document["policies"] = {"re_entry": "once", "cool_down": "30d"}
        assert paths(document) == ["$.policies.cool_down"]

    def test_every_fault_is_reported_at_once(self) -> None:
        document = journey(
            {"welcome": send("nope", channels=[], next="nowhere"), "orphan": {"type": "exit"}}
        )
        assert paths(document) == [
            "$.steps.welcome.next",
            "$.steps.welcome.channels",
            "$.steps.welcome.template",
            "$.steps.orphan",
        ]

    def test_too_many_steps_are_refused(self) -> None:
        steps = {f"s{i}": {"type": "exit"} for i in range(MAX_STEPS + 1)}
        assert paths(journey(steps)) == ["$.steps"]

    def test_the_error_is_a_document_error_the_http_edge_already_answers(self) -> None:
        with pytest.raises(DocumentInvalid) as caught:
            read(journey({"welcome": send("nope")}))
        assert caught.value.path == "$.steps.welcome.template"
        assert isinstance(caught.value, JourneyInvalid)
        assert caught.value.faults == (
            JourneyFault("$.steps.welcome.template", "'nope' is not a template"),
        )


class TestEveryFaultIsReportedAtOnce:
    def test_every_fault_of_one_step_is_named(self) -> None:
        step = send(channels=["fax"], colour="red", priority="high")
        del step["team"]
        assert sorted(paths(journey({"welcome": step}))) == [
            "$.steps.welcome.channels[0]",
            "$.steps.welcome.colour",
            "$.steps.welcome.priority",
            "$.steps.welcome.team",
        ]

    def test_a_step_that_cannot_be_read_hides_no_fault_of_the_others(self) -> None:
        document = journey(
            {
                "welcome": send(colour="red", next="thanks"),
                "thanks": send("no-such-template", channels=[], next="nowhere"),
                "orphan": {"type": "exit"},
            }
        )
        assert paths(document) == [
            "$.steps.welcome.colour",
            "$.steps.thanks.next",
            "$.steps.thanks.channels",
            "$.steps.thanks.template",
            "$.steps.orphan",
        ]

    def test_the_steps_after_a_step_that_cannot_be_read_are_still_reached(self) -> None:
        broken = {"type": "wait", "for": 5, "next": "thanks"}
        document = journey({"first": broken, "thanks": send()})
        assert paths(document) == ["$.steps.first.for"]

    def test_each_fault_inside_the_parts_of_a_step_is_named(self) -> None:
        arms = [
            {"name": "a", "weight": "heavy", "next": "bye"},
            {"name": "b", "weight": 1, "next": "bye", "colour": "red"},
        ]
        document = journey({"offer": {"type": "split", "arms": arms}, "bye": {"type": "exit"}})
        assert paths(document) == [
            "$.steps.offer.arms[0].weight",
            "$.steps.offer.arms[1].colour",
        ]

    def test_faults_of_the_entry_goal_and_policies_are_named_with_those_of_the_steps(
        self,
    ) -> None:
        document = journey(
            {"welcome": send("no-such-template")},
            entry={"type": "telepathy"},
            goal={"signal": "purchase", "within": 7},
            policies={"re_entry": "sometimes"},
        )
        assert sorted(paths(document)) == [
            "$.entry.type",
            "$.goal.within",
            "$.policies.re_entry",
            "$.steps.welcome.template",
        ]

    def test_a_step_that_is_not_an_object_leaves_reachability_unjudged(self) -> None:
        document = journey({"welcome": "send it", "thanks": send("no-such-template")})
        assert paths(document) == ["$.steps.welcome", "$.steps.thanks.template"]


class TestAFieldOfTheWrongTypeHidesNoOtherFault:
    def test_a_send_with_a_priority_of_text_still_has_its_channels_and_template_checked(
        self,
    ) -> None:
        step = send("zzz", channels=[], priority="high")
        assert faults(journey({"s": step})) == [
            ("$.steps.s.priority", "Expected `int`, got `str`"),
            ("$.steps.s.channels", "a send needs at least one channel"),
            ("$.steps.s.template", "'zzz' is not a template"),
        ]

    def test_policies_with_an_unknown_re_entry_still_have_their_other_fields_checked(
        self,
    ) -> None:
        policies = {
            "re_entry": "sometimes",
            "cool_down": "forever",
            "enrollment_cap": -1,
            "send_limit": 99999999999,
        }
        assert sorted(paths(journey({"s": send()}, policies=policies))) == [
            "$.policies.cool_down",
            "$.policies.enrollment_cap",
            "$.policies.re_entry",
            "$.policies.send_limit",
        ]

    def test_a_cap_too_large_is_named_beside_a_negative_send_limit(self) -> None:
        text = json.dumps(journey({"s": send()})).removesuffix("}") + (
            ', "policies": {"enrollment_cap": 10000000000000000000000000, "send_limit": -5}}'
        )
        assert faults(text) == [
            ("$.policies.send_limit", "Expected `int` >= 0"),
            ("$.policies.enrollment_cap", f"at most {MAX_COUNT:,}"),
        ]

    def test_a_wait_with_an_unknown_day_still_has_its_time_of_day_checked(self) -> None:
        step = {"type": "wait", "until": "25:99", "days": ["funday"]}
        assert paths(journey({"w": step})) == ["$.steps.w.days[0]", "$.steps.w.until"]

    def test_a_goal_with_a_faulty_filter_still_has_its_window_checked(self) -> None:
        goal = {"signal": "", "within": "-1d", "where": [{"property": "p", "op": "zz"}]}
        assert paths(journey({"s": send()}, goal=goal)) == [
            "$.goal.signal",
            "$.goal.where[0].op",
            "$.goal.within",
        ]

    def test_a_faulty_step_is_still_judged_reachable_or_not(self) -> None:
        steps = {"s": send(), "t": send("zzz", channels=[], priority="high")}
        assert paths(journey(steps)) == [
            "$.steps.t.priority",
            "$.steps.t.channels",
            "$.steps.t.template",
            "$.steps.t",
        ]

    def test_a_check_across_the_fields_of_a_part_is_left_when_one_is_a_stand_in(self) -> None:
        steps = {
            "w": {"type": "wait", "for": 5, "next": "u"},
            "u": {"type": "update", "profile": 5, "next": "o"},
            "o": {"type": "split", "arms": [{"name": "a", "weight": "x", "next": "bye"}]},
            "bye": {"type": "exit"},
        }
        assert paths(journey(steps)) == [
            "$.steps.w.for",
            "$.steps.u.profile",
            "$.steps.o.arms[0].weight",
        ]

    def test_a_type_that_is_a_list_is_named_not_a_crash(self) -> None:
        steps = {"s": send(next="t"), "t": {"type": ["exit"]}, "u": {"type": {"a": 1}}}
        assert paths(journey(steps)) == ["$.steps.t.type", "$.steps.u.type", "$.steps.u"]

    def test_a_cool_down_is_checked_when_re_entry_is_unknown(self) -> None:
        policies = {"re_entry": "sometimes", "cool_down": "7d"}
        assert paths(journey({"s": send()}, policies=policies)) == ["$.policies.re_entry"]


class TestFaultsTheCallerFoundAreNamedWithTheOthers:
    def test_refused_strings_are_named_first_and_every_other_fault_after(self) -> None:
        nul = "holds the control character U+0000 at position 6"
        document = journey(
            {
                "s": {"type": "exit", "reason": "done\u0000"},
                "orphan": send("zzz", channels=[]),
            },
            entry={"type": "signal", "signal": "order\u0000placed"},
        )
        refused = [
            JourneyFault("$.entry.signal", nul),
            JourneyFault("$.steps.s.reason", nul),
        ]
        with pytest.raises(JourneyInvalid) as caught:
            decode_journey(document, templates=TEMPLATES, segments=SEGMENTS, refused=refused)
        assert [(f.path, f.reason) for f in caught.value.faults] == [
            ("$.entry.signal", nul),
            ("$.steps.s.reason", nul),
            ("$.steps.orphan.channels", "a send needs at least one channel"),
            ("$.steps.orphan.template", "'zzz' is not a template"),
            ("$.steps.orphan", "cannot be reached from the start ('s')"),
        ]

    def test_no_fault_is_named_under_a_refused_string(self) -> None:
        refused = [JourneyFault("$.steps.s.template", "holds the control character U+0000")]
        document = journey({"s": send("wel\u0000come")})
        with pytest.raises(JourneyInvalid) as caught:
            decode_journey(document, templates=TEMPLATES, segments=SEGMENTS, refused=refused)
        assert caught.value.faults == tuple(refused)


class TestAMigrationTargetIsReached:
    def test_a_step_only_a_migration_moves_customers_to_is_reached(self) -> None:
        document = journey(
            {"welcome": send(), "catch-up": send(next="bye"), "bye": {"type": "exit"}}
        )
        assert paths(document) == ["$.steps.catch-up", "$.steps.bye"]
        read_back = decode_journey(
            document, templates=TEMPLATES, segments=SEGMENTS, entries={"catch-up"}
        )
        assert set(read_back.steps) == {"welcome", "catch-up", "bye"}

    def test_a_step_neither_the_start_nor_a_migration_reaches_is_still_refused(self) -> None:
        document = journey({"welcome": send(), "moved": send(), "orphan": {"type": "exit"}})
        with pytest.raises(JourneyInvalid) as caught:
            decode_journey(document, templates=TEMPLATES, segments=SEGMENTS, entries={"moved"})
        [fault] = caught.value.faults
        assert fault.path == "$.steps.orphan"
        assert "nor from a step the migration moves customers to" in fault.reason

    def test_a_migration_target_that_is_no_step_adds_nothing(self) -> None:
        document = journey({"welcome": send()})
        read_back = decode_journey(
            document, templates=TEMPLATES, segments=SEGMENTS, entries={"nowhere"}
        )
        assert set(read_back.steps) == {"welcome"}


# Where each number of a journey is, set by `place` in a valid document.
NUMBERS: dict[str, Any] = {
    "$.steps.welcome.priority": lambda d, n: d["steps"]["welcome"].update(priority=n),
    "$.steps.offer.arms[0].weight": lambda d, n: d["steps"]["offer"]["arms"][0].update(weight=n),
    "$.steps.offer.control.weight": lambda d, n: d["steps"]["offer"]["control"].update(weight=n),
    "$.policies.enrollment_cap": lambda d, n: d["policies"].update(enrollment_cap=n),
    "$.policies.send_limit": lambda d, n: d["policies"].update(send_limit=n),
    "$.steps.bye.attributes.score": lambda d, n: d["steps"]["bye"]["attributes"].update(score=n),
    "$.steps.check.cases[0].condition.value": (
        lambda d, n: d["steps"]["check"]["cases"][0]["condition"].update(value=n)
    ),
}


def numbered() -> dict[str, Any]:
    """A valid journey holding every kind of number a journey has."""
    condition = {"type": "attribute", "name": "score", "op": "gte", "value": 1}
    return journey(
        {
            "welcome": send(priority=1, next="offer"),
            "offer": {
                "type": "split",
                "arms": [{"name": "a", "weight": 1, "next": "check"}],
                "control": {"weight": 1},
            },
            "check": {
                "type": "branch",
                "cases": [{"condition": condition, "next": "bye"}],
                "else": "bye",
            },
            "bye": {"type": "update", "attributes": {"score": 1}},
        },
        policies={"enrollment_cap": 10, "send_limit": 3},
    )


class TestNumbersOutOfRangeNameTheirPath:
    def test_the_numbered_journey_reads(self) -> None:
        assert read(numbered()).policies.send_limit == 3

    @pytest.mark.parametrize("path", list(NUMBERS))
    def test_a_number_json_overflows_to_infinity_is_named_in_json_text(self, path: str) -> None:
        document = numbered()
        NUMBERS[path](document, 123456789.5)
        text = json.dumps(document).replace("123456789.5", "1e400")
        assert paths(text) == [path]

    @pytest.mark.parametrize("path", list(NUMBERS))
    @pytest.mark.parametrize("number", [float("inf"), float("-inf"), float("nan")])
    def test_a_number_that_is_not_finite_is_named_in_decoded_json(
        self, path: str, number: float
    ) -> None:
        document = numbered()
        NUMBERS[path](document, number)
        assert paths(document) == [path]

    @given(
        path=st.sampled_from(
            [
                "$.steps.welcome.priority",
                "$.steps.offer.arms[0].weight",
                "$.steps.offer.control.weight",
                "$.policies.enrollment_cap",
                "$.policies.send_limit",
            ]
        ),
        number=st.integers(min_value=MAX_COUNT + 1) | st.integers(max_value=-(2**31)),
    )
    def test_a_whole_number_out_of_range_is_named(self, path: str, number: int) -> None:
        document = numbered()
        NUMBERS[path](document, number)
        assert paths(document) == [path]

    def test_the_largest_numbers_allowed_read(self) -> None:
        document = numbered()
        NUMBERS["$.steps.welcome.priority"](document, MAX_PRIORITY)
        NUMBERS["$.steps.offer.arms[0].weight"](document, MAX_WEIGHT)
        NUMBERS["$.policies.send_limit"](document, MAX_COUNT)
        assert read(document).step("welcome") == read(document).step("welcome")
        NUMBERS["$.steps.welcome.priority"](document, MAX_PRIORITY + 1)
        NUMBERS["$.steps.offer.arms[0].weight"](document, MAX_WEIGHT + 1)
        assert paths(document) == ["$.steps.welcome.priority", "$.steps.offer.arms[0].weight"]

    @pytest.mark.parametrize(
        "path",
        [
            "$.steps.wait.for",
            "$.steps.signal.timeout",
            "$.steps.welcome.fallback.after",
            "$.steps.welcome.on_not_delivered.within",
            "$.goal.within",
            "$.policies.cool_down",
        ],
    )
    def test_a_span_longer_than_the_calendar_allows_is_named(self, path: str) -> None:
        too_long = f"{MAX_SPAN.days + 1}d"
        steps = {
            "welcome": send(
                next="wait",
                fallback={"channels": ["sms"], "after": "1h"},
                on_not_delivered={"within": "1h", "next": "wait"},
            ),
            "wait": {"type": "wait", "for": "1d", "next": "signal"},
            "signal": {
                "type": "wait_for_signal",
                "signal": "purchase",
                "timeout": "1d",
                "on_signal": "bye",
                "on_timeout": "bye",
            },
            "bye": {"type": "exit"},
        }
        document = journey(
            steps,
            goal={"signal": "purchase", "within": "7d"},
            policies={"re_entry": "after_cool_down", "cool_down": "30d"},
        )
        assert read(document).goal is not None
        *parts, last = path.removeprefix("$.").split(".")
        holder = document
        for part in parts:
            holder = holder[part]
        holder[last] = too_long
        assert faults(document) == [(path, f"'{too_long}' is too long: at most 3650d")]


class TestTheModel:
    def test_a_split_lists_its_weights_control_last(self) -> None:
        split = {
            "type": "split",
            "arms": [{"name": "a", "weight": 3, "next": "bye"}],
            "control": {"weight": 1},
        }
        step = read(journey({"ab": split, "bye": {"type": "exit"}})).step("ab")
        assert isinstance(step, Split)
        assert step.weights == (("a", 3), ("control", 1))

    def test_a_response_lists_every_outcome_a_branch_can_ask_about(self) -> None:
        assert {str(r) for r in Response} == {
            "delivered",
            "opened",
            "clicked",
            "replied",
            "failed",
            "suppressed",
            "deferred",
        }

    def test_a_wait_until_a_time_of_day_reads(self) -> None:
        step = read(journey({"w": {"type": "wait", "until": "09:00"}})).step("w")
        assert isinstance(step, Wait)
        assert step.until == "09:00"


class TestWhetherAJourneyReadsTheCustomer:
    """A journey with no condition and no wait on the customer's wall clock is taken without
    reading what is known of them (a broadcast of one send reads no one's facts)."""

    _TIER = {"type": "attribute", "name": "tier", "op": "eq", "value": "gold"}

    def test_sends_waits_for_a_while_and_response_branches_read_nothing(self) -> None:
        document = journey(
            {
                "hello": send(next="later"),
                "later": {"type": "wait", "for": "1d", "next": "check"},
                "check": {
                    "type": "branch",
                    "cases": [{"response": {"step": "hello", "is": ["delivered"]}, "next": "bye"}],
                    "else": "bye",
                },
                "bye": {"type": "exit"},
            },
            goal={"signal": "purchase", "within": "7d"},
        )
        assert not read(document).reads_customer()

    def test_a_condition_or_a_time_of_day_reads_them(self) -> None:
        branch = {
            "type": "branch",
            "cases": [{"condition": self._TIER, "next": "bye"}],
            "else": "bye",
        }
        by_condition = journey({"check": branch, "bye": {"type": "exit"}})
        by_clock = journey(
            {"w": {"type": "wait", "until": "09:00", "next": "bye"}, "bye": {"type": "exit"}}
        )
        by_goal = journey(
            {"hello": send(next="bye"), "bye": {"type": "exit"}},
            goal={"signal": "purchase", "within": "7d", "condition": self._TIER},
        )
        assert all(read(d).reads_customer() for d in (by_condition, by_clock, by_goal))
