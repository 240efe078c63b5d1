"""Journey documents: what a valid one reads as, and every fault refused naming its JSON path."""

from __future__ import annotations

from typing import Any

import pytest

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
    MAX_STEPS,
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
