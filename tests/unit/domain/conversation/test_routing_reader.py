"""The routing document: read and checked whole, every fault named by its JSON path; and the
routing book that keeps its versions."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from domain.conversation.routing import RoutingDocument
from domain.conversation.routing_book import NoRoutingYet, RoutingBook
from domain.conversation.routing_reader import RoutingInvalid, decode_routing, routing_document
from domain.shared.counts import MAX_COUNT
from domain.shared.errors import InvalidValue

from .routings import SEGMENTS, TEAMS, example
from .stored import rebuilt, stored_and_read_back

T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)


def read(document: Any) -> Any:
    return decode_routing(document, teams=TEAMS, segments=SEGMENTS)


def fault(document: Any) -> RoutingInvalid:
    with pytest.raises(RoutingInvalid) as refused:
        read(document)
    return refused.value


def changed(**changes: Any) -> dict[str, Any]:
    document = example()
    document.update(changes)
    return document


class TestReading:
    def test_the_example_reads_and_writes_back_the_same(self) -> None:
        routing = read(example())
        assert read(routing_document(routing)) == routing
        assert [rule.id for rule in routing.rules] == ["refunds", "spanish", "repeat"]

    def test_json_text_is_read_too(self) -> None:
        assert read('{"default_team": "support"}').default_team == "support"

    def test_text_that_is_not_json_is_refused_at_the_root(self) -> None:
        assert fault("{").path == "$"


class TestSchemaFaults:
    def test_an_unknown_field_is_named_by_its_path(self) -> None:
        document = example()
        document["rules"][0]["teem"] = "billing"
        refused = fault(document)
        assert (refused.path, refused.reason) == ("$.rules[0].teem", "unknown field")

    def test_a_rule_with_neither_team_nor_skills_is_refused(self) -> None:
        refused = fault(changed(rules=[{"id": "lost", "intents": ["refund"]}]))
        assert refused.path == "$.rules[0].team"
        assert "names a team, or the skills" in refused.reason

    def test_an_escalation_that_changes_nothing_is_refused(self) -> None:
        refused = fault(changed(escalations=[{"id": "noop", "tiers": ["vip"]}]))
        assert refused.path == "$.escalations[0].priority"

    def test_a_sentiment_that_is_not_one_is_named_with_the_ones_that_are(self) -> None:
        refused = fault(
            changed(escalations=[{"id": "x", "sentiments": ["angry"], "priority": "high"}])
        )
        assert refused.path == "$.escalations[0].sentiments[0]"
        assert refused.reason == "'angry' is not one of negative, neutral, positive"

    def test_a_priority_that_is_not_one_is_named_with_the_ones_that_are(self) -> None:
        document = example()
        document["rules"][0]["priority"] = "asap"
        refused = fault(document)
        assert refused.path == "$.rules[0].priority"
        assert "low, normal, high, urgent" in refused.reason

    def test_a_bad_condition_inside_a_rule_is_named_by_its_path(self) -> None:
        document = example()
        document["rules"][1]["when"]["op"] = "like"
        refused = fault(document)
        assert refused.path == "$.rules[1].when.op"

    @pytest.mark.parametrize(
        ("where", "path"),
        [
            ("rules", "$.rules[0].when.type"),
            ("escalations", "$.escalations[0].when.conditions[0].type"),
        ],
    )
    def test_a_condition_of_no_type_there_is_lists_the_types_there_are(
        self, where: str, path: str
    ) -> None:
        when = {"type": "nope"}
        if where == "escalations":
            when = {"type": "all", "conditions": [when]}
        refused = fault(changed(**{where: [{"id": "x", "team": "billing", "when": when}]}))
        assert refused.path == path
        assert refused.reason == (
            "'nope' is not a condition type: use all, any, not, attribute, identity, consent, "
            "signal_count, signal_sum, no_signal, classified"
        )

    def test_an_sla_target_that_is_no_duration_is_named_by_its_path(self) -> None:
        refused = fault(changed(sla={"first_response": {"chat": "soon"}}))
        assert refused.path == "$.sla.first_response.chat"
        assert refused.reason.startswith("'soon' is not a duration")

    def test_a_tier_s_target_that_is_no_time_is_named_by_its_path(self) -> None:
        refused = fault(changed(sla={"tiers": {"vip": {"next_response": {"email": "0m"}}}}))
        assert refused.path == "$.sla.tiers.vip.next_response.email"
        assert refused.reason == "'0m' is no time at all"

    def test_an_sla_target_longer_than_30_days_is_named_by_its_path(self) -> None:
        refused = fault(changed(sla={"first_response": {"email": "200d"}}))
        assert refused.path == "$.sla.first_response.email"
        assert refused.reason == "'200d' is longer than a target may be (30d)"

    def test_an_sla_for_a_kind_that_does_not_exist_is_refused(self) -> None:
        refused = fault(changed(sla={"first_response": {"fax": "1h"}}))
        assert refused.path == "$.sla.first_response.fax"
        assert refused.reason == "'fax' is not one of chat, email, voice"

    @pytest.mark.parametrize("targets", [["chat"], "2m", 5])
    def test_sla_targets_that_are_no_map_are_named_by_the_field(self, targets: Any) -> None:
        refused = fault(changed(sla={"first_response": targets}))
        assert refused.path == "$.sla.first_response"
        assert refused.reason.startswith("Expected `object`")

    @pytest.mark.parametrize("as_text", [False, True])
    def test_an_sla_target_of_the_wrong_type_is_named_by_its_channel_kind(
        self, as_text: bool
    ) -> None:
        document = changed(sla={"next_response": {"chat": "5m", "email": 8}})
        refused = fault(json.dumps(document) if as_text else document)
        assert refused.path == "$.sla.next_response.email"
        assert refused.reason == "Expected `str`, got `int`"

    def test_a_tier_s_target_of_the_wrong_type_is_named_by_tier_and_kind(self) -> None:
        tiers = {"gold": {}, "vip": {"first_response": {"chat": "1m", "voice": None}}}
        refused = fault(changed(sla={"tiers": tiers}))
        assert refused.path == "$.sla.tiers.vip.first_response.voice"
        assert fault(changed(sla={"tiers": {"vip": 5}})).path == "$.sla.tiers.vip"

    def test_an_sla_kind_that_does_not_exist_in_a_tier_is_named_by_its_path(self) -> None:
        refused = fault(changed(sla={"tiers": {"vip": {"first_response": {"fax": "1h"}}}}))
        assert refused.path == "$.sla.tiers.vip.first_response.fax"

    @pytest.mark.parametrize(
        ("changes", "path"),
        [
            ({"rules": 5}, "$.rules"),
            ({"rules": [5]}, "$.rules[0]"),
            ({"escalations": "vip"}, "$.escalations"),
            ({"sla": []}, "$.sla"),
            ({"sla": {"working_hours": "yes"}}, "$.sla.working_hours"),
        ],
    )
    def test_a_value_of_the_wrong_type_is_named_by_its_path(
        self, changes: dict[str, Any], path: str
    ) -> None:
        assert fault(changed(**changes)).path == path

    def test_open_conversations_compare_only_as_numbers_do(self) -> None:
        rule = {"id": "x", "team": "support", "open_conversations": {"op": "contains", "value": 1}}
        refused = fault(changed(rules=[rule]))
        assert refused.path == "$.rules[0].open_conversations.op"


class TestWholeDocumentFaults:
    def test_every_unknown_team_and_segment_is_named_at_once(self) -> None:
        document = example()
        document["default_team"] = "nobody"
        document["rules"][0]["team"] = "accounts"
        document["rules"][2]["segments"] = ["churn-risk", "whales"]
        document["sla"]["on_breach"] = {"team": "managers"}
        refused = fault(document)
        assert [f.path for f in refused.faults] == [
            "$.default_team",
            "$.rules[0].team",
            "$.rules[2].segments[1]",
            "$.sla.on_breach.team",
        ]
        assert "no team 'nobody'" in refused.faults[0].reason

    def test_an_id_used_twice_is_named_where_it_is_used_again(self) -> None:
        document = example()
        document["escalations"][1]["id"] = "refunds"
        refused = fault(document)
        assert refused.path == "$.escalations[1].id"
        assert "already used at $.rules[0]" in refused.reason

    def test_the_router_s_own_reason_names_are_reserved(self) -> None:
        document = example()
        document["rules"][0]["id"] = "queue"
        assert fault(document).path == "$.rules[0].id"

    def test_an_overflow_to_the_rule_s_own_team_is_refused(self) -> None:
        document = example()
        document["rules"][0]["overflow"] = {"team": "billing"}
        assert fault(document).path == "$.rules[0].overflow.team"

    def test_every_count_past_what_postgresql_and_json_hold_is_named(self) -> None:
        beyond_64_bits = 99999999999999999999
        document = example()
        document["rules"][0]["overflow"]["queue_at_least"] = MAX_COUNT + 1
        document["rules"][2]["open_conversations"]["value"] = beyond_64_bits
        when = {"type": "signal_count", "signal": "order", "within": "30d", "op": "gte"}
        document["escalations"][1]["when"] = {
            "type": "not",
            "condition": {"type": "any", "conditions": [{**when, "value": beyond_64_bits}]},
        }
        refused = fault(document)
        assert [(f.path, f.reason) for f in refused.faults] == [
            ("$.rules[0].overflow.queue_at_least", "at most 2,147,483,647"),
            ("$.rules[2].open_conversations.value", "at most 2,147,483,647"),
            ("$.escalations[1].when.condition.conditions[0].value", "at most 2,147,483,647"),
        ]

    def test_a_count_of_2_147_483_647_is_read(self) -> None:
        document = example()
        document["rules"][2]["open_conversations"]["value"] = MAX_COUNT
        assert read(document).rules[2].open_conversations.value == MAX_COUNT

    def test_a_stored_document_is_read_back_whatever_its_counts(self) -> None:
        # Published before counts were bounded: its events still read.
        document = example()
        document["rules"][2]["open_conversations"]["value"] = 99999999999999999999
        stored = msgspec.convert(document, RoutingDocument)
        assert stored.rules[2].open_conversations is not None
        assert stored.rules[2].open_conversations.value == 99999999999999999999


class TestTheRoutingBook:
    def test_each_publication_is_the_next_version_and_old_ones_stay(self) -> None:
        book = RoutingBook.open(T0)
        with pytest.raises(NoRoutingYet):
            _ = book.current
        first = book.publish(read(example()), "admin", T0)
        second = book.publish(read({"default_team": "support"}), "admin", T0)
        assert (first.version, second.version) == (1, 2)
        assert book.current == second
        assert book.policy_of(1) == first
        with pytest.raises(InvalidValue):
            book.policy_of(3)

    def test_its_events_are_stored_and_read_back_documents_and_all(self) -> None:
        book = RoutingBook.open(T0)
        book.publish(read(example()), "admin", T0)
        events, read_back = stored_and_read_back(book)
        assert read_back == events
        assert rebuilt(read_back).current.document == read(example())


class TestIntentsUrgenciesAndScores:
    def test_an_intent_no_classifier_knows_is_named_by_its_path(self) -> None:
        document = example()
        document["rules"][0]["intents"] = ["refund", "refnud"]
        refused = fault(document)
        assert refused.path == "$.rules[0].intents[1]"
        assert "'refnud' is not an intent a classifier knows" in refused.reason

    def test_the_models_intents_are_known_by_their_keys(self) -> None:
        document = example()
        document["rules"][0]["intents"] = ["refund_not_showing_up", "reverted_card_payment"]
        assert read(document).rules[0].intents == (
            "refund_not_showing_up",
            "reverted_card_payment",
        )

    def test_an_urgency_that_is_not_one_is_named_with_the_ones_that_are(self) -> None:
        refused = fault(
            changed(escalations=[{"id": "x", "urgencies": ["asap"], "priority": "high"}])
        )
        assert refused.path == "$.escalations[0].urgencies[0]"
        assert refused.reason == "'asap' is not one of low, normal, high, critical"

    def test_a_sentiment_score_is_between_minus_one_and_one(self) -> None:
        score = {"op": "lte", "value": -2}
        refused = fault(
            changed(escalations=[{"id": "x", "sentiment_score": score, "priority": "high"}])
        )
        assert refused.path == "$.escalations[0].sentiment_score.value"

    def test_urgencies_and_scores_read_and_write_back_the_same(self) -> None:
        routing = read(
            changed(
                escalations=[
                    {"id": "critical", "urgencies": ["critical"], "priority": "urgent"},
                    {
                        "id": "upset",
                        "sentiment_score": {"op": "lte", "value": -0.5},
                        "priority": "high",
                    },
                ]
            )
        )
        assert read(routing_document(routing)) == routing
