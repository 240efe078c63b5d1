"""The segment condition language: what each condition means, and how a bad document is refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from domain.policy.vocabulary import Channel, Purpose
from domain.segments.conditions import (
    AllOf,
    AnyOf,
    AttributeIs,
    Condition,
    ConditionInvalid,
    ConsentIs,
    ConsentStatus,
    HasIdentity,
    NoSignal,
    Not,
    Op,
    PropertyFilter,
    SegmentFacts,
    SignalCount,
    SignalFact,
    SignalSum,
    condition_document,
    count_conditions,
    decode_condition,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def ago(span: timedelta) -> datetime:
    return NOW - span


def orders(*moments: datetime, **properties: Any) -> SegmentFacts:
    return SegmentFacts(
        signals={"order.placed": [SignalFact(at, dict(properties)) for at in moments]}
    )


def attribute(name: str, op: str, value: Any = msgspec.UNSET) -> AttributeIs:
    return AttributeIs(name=name, op=Op(op), value=value)


def placed(op: str, value: int, within: str = "30d", **kwargs: Any) -> SignalCount:
    return SignalCount(signal="order.placed", within=within, op=Op(op), value=value, **kwargs)


class TestAttribute:
    facts = SegmentFacts(
        attributes={
            "country": "FR",
            "tier": "gold",
            "lifetime_value": 1200.5,
            "orders": 7,
            "vip": True,
            "signed_up": "2025-11-02",
        }
    )

    @pytest.mark.parametrize(
        ("condition", "expected"),
        [
            (attribute("country", "eq", "FR"), True),
            (attribute("country", "ne", "FR"), False),
            (attribute("orders", "gt", 6), True),
            (attribute("orders", "gte", 7.0), True),
            (attribute("lifetime_value", "lt", 1000), False),
            (attribute("lifetime_value", "lte", 1200.5), True),
            (attribute("tier", "in", ("gold", "platinum")), True),
            (attribute("tier", "not_in", ("gold", "platinum")), False),
            (attribute("tier", "starts_with", "go"), True),
            (attribute("tier", "contains", "ol"), True),
            (attribute("vip", "eq", True), True),
            (attribute("vip", "ne", False), True),
        ],
    )
    def test_a_value_is_compared_with_the_one_the_condition_gives(
        self, condition: AttributeIs, expected: bool
    ) -> None:
        assert condition.holds(self.facts, NOW) is expected

    def test_text_compares_character_by_character_so_iso_dates_order_in_time(self) -> None:
        assert attribute("signed_up", "gte", "2025-10-01").holds(self.facts, NOW)
        assert not attribute("signed_up", "gte", "2026-01-01").holds(self.facts, NOW)

    @pytest.mark.parametrize(
        "condition",
        [
            attribute("orders", "eq", "7"),
            attribute("orders", "ne", "7"),
            attribute("country", "gt", 3),
            attribute("vip", "eq", 1),
            attribute("orders", "eq", True),
            attribute("orders", "in", ("7", "8")),
            attribute("orders", "not_in", ("1", "2")),
            attribute("orders", "starts_with", "7"),
            attribute("orders", "contains", "7"),
        ],
    )
    def test_values_of_different_types_never_compare_and_never_fail(
        self, condition: AttributeIs
    ) -> None:
        assert not condition.holds(self.facts, NOW)

    def test_a_missing_attribute_meets_only_not_exists(self) -> None:
        assert attribute("nickname", "not_exists").holds(self.facts, NOW)
        assert not attribute("nickname", "exists").holds(self.facts, NOW)
        assert not attribute("nickname", "ne", "Bob").holds(self.facts, NOW)
        assert not attribute("nickname", "not_in", ("Bob",)).holds(self.facts, NOW)

    def test_an_attribute_set_to_null_counts_as_missing(self) -> None:
        facts = SegmentFacts(attributes={"nickname": None})

        assert attribute("nickname", "not_exists").holds(facts, NOW)
        assert not attribute("nickname", "exists").holds(facts, NOW)

    def test_not_in_holds_for_a_value_of_the_lists_type_that_is_not_in_it(self) -> None:
        assert attribute("country", "not_in", ("DE", "IT")).holds(self.facts, NOW)

    def test_integers_and_decimals_are_both_numbers(self) -> None:
        assert attribute("orders", "in", (7.0, 8.0)).holds(self.facts, NOW)

    def test_the_condition_never_changes_by_itself(self) -> None:
        assert attribute("country", "eq", "FR").changes_at(self.facts, NOW) is None


class TestIdentity:
    def test_a_customer_with_an_identity_of_the_type_matches(self) -> None:
        facts = SegmentFacts(identity_types=frozenset({"email", "crm_id"}))

        assert HasIdentity(identity_type="crm_id").holds(facts, NOW)

    def test_a_customer_without_one_does_not(self) -> None:
        facts = SegmentFacts(identity_types=frozenset({"email"}))

        assert not HasIdentity(identity_type="phone").holds(facts, NOW)


class TestConsent:
    facts = SegmentFacts(
        consents={(Channel.EMAIL, Purpose.MARKETING): True, (Channel.SMS, Purpose.MARKETING): False}
    )

    @pytest.mark.parametrize(
        ("channel", "state", "expected"),
        [
            (Channel.EMAIL, ConsentStatus.GRANTED, True),
            (Channel.EMAIL, ConsentStatus.REVOKED, False),
            (Channel.SMS, ConsentStatus.REVOKED, True),
            (Channel.SMS, ConsentStatus.GRANTED, False),
            (Channel.PUSH, ConsentStatus.UNKNOWN, True),
            (Channel.PUSH, ConsentStatus.REVOKED, False),
            (Channel.EMAIL, ConsentStatus.UNKNOWN, False),
        ],
    )
    def test_the_state_is_the_one_last_recorded_or_unknown_when_none_was(
        self, channel: Channel, state: ConsentStatus, expected: bool
    ) -> None:
        condition = ConsentIs(channel=channel, purpose=Purpose.MARKETING, state=state)

        assert condition.holds(self.facts, NOW) is expected

    def test_a_consent_for_another_purpose_is_not_this_one(self) -> None:
        condition = ConsentIs(
            channel=Channel.EMAIL, purpose=Purpose.SERVICE, state=ConsentStatus.UNKNOWN
        )

        assert condition.holds(self.facts, NOW)


class TestSignalCount:
    def test_a_count_in_a_window_ignores_signals_older_than_the_window(self) -> None:
        facts = orders(ago(DAY), ago(10 * DAY), ago(31 * DAY), ago(400 * DAY))

        assert placed("eq", 2).holds(facts, NOW)

    def test_the_window_leaves_out_its_start_and_takes_in_now(self) -> None:
        assert placed("eq", 0).holds(orders(ago(30 * DAY)), NOW)
        assert placed("eq", 1).holds(orders(NOW), NOW)

    def test_a_signal_dated_after_now_is_not_counted_yet(self) -> None:
        assert placed("eq", 0).holds(orders(NOW + timedelta(seconds=1)), NOW)

    def test_only_signals_of_its_type_count(self) -> None:
        facts = SegmentFacts(signals={"cart.abandoned": [SignalFact(ago(DAY), {})]})

        assert placed("eq", 0).holds(facts, NOW)

    def test_where_keeps_the_signals_whose_properties_all_match(self) -> None:
        facts = SegmentFacts(
            signals={
                "order.placed": [
                    SignalFact(ago(DAY), {"total": 80, "address": {"city": "Lyon"}}),
                    SignalFact(ago(2 * DAY), {"total": 20, "address": {"city": "Lyon"}}),
                    SignalFact(ago(3 * DAY), {"total": 90, "address": {"city": "Paris"}}),
                    SignalFact(ago(4 * DAY), {"total": "90", "address": "Lyon"}),
                ]
            }
        )
        where = (
            PropertyFilter(property="total", op=Op.GTE, value=50),
            PropertyFilter(property="address.city", op=Op.EQ, value="Lyon"),
        )

        assert placed("eq", 1, where=where).holds(facts, NOW)

    def test_a_property_named_with_a_dot_is_found_before_a_nested_one(self) -> None:
        facts = orders(ago(DAY), **{"utm.source": "mail", "utm": {"source": "ads"}})
        where = (PropertyFilter(property="utm.source", op=Op.EQ, value="mail"),)

        assert placed("eq", 1, where=where).holds(facts, NOW)

    def test_a_filter_can_look_for_an_item_in_a_list(self) -> None:
        facts = orders(ago(DAY), tags=["gift", "express"])
        where = (PropertyFilter(property="tags", op=Op.CONTAINS, value="gift"),)

        assert placed("gte", 1, where=where).holds(facts, NOW)

    def test_it_changes_when_enough_signals_have_left_the_window(self) -> None:
        facts = orders(ago(DAY), ago(2 * DAY), ago(3 * DAY))
        at_least_two = placed("gte", 2, within="7d")

        # The oldest leaving (at +4d) still leaves two; the next one (at +5d) does not.
        assert at_least_two.changes_at(facts, NOW) == NOW + 5 * DAY
        assert at_least_two.holds(facts, NOW + 5 * DAY - timedelta(microseconds=1))
        assert not at_least_two.holds(facts, NOW + 5 * DAY)

    def test_it_changes_when_a_signal_dated_in_the_future_comes_in(self) -> None:
        facts = orders(NOW + 2 * DAY)

        assert placed("gte", 1).changes_at(facts, NOW) == NOW + 2 * DAY

    def test_nothing_but_a_new_signal_can_change_an_empty_window(self) -> None:
        assert placed("gte", 1).changes_at(orders(ago(40 * DAY)), NOW) is None

    def test_it_asks_for_its_signal_type_over_its_window(self) -> None:
        condition = placed("gte", 1, within="2w")

        assert condition.signal_types == {"order.placed"}
        assert condition.lookback == timedelta(weeks=2)


class TestSignalSum:
    def spent(self, op: str, value: float, within: str = "30d") -> SignalSum:
        return SignalSum(
            signal="order.placed", property="total", within=within, op=Op(op), value=value
        )

    def test_it_sums_a_numeric_property_over_the_signals_in_the_window(self) -> None:
        facts = SegmentFacts(
            signals={
                "order.placed": [
                    SignalFact(ago(DAY), {"total": 120}),
                    SignalFact(ago(5 * DAY), {"total": 30.5}),
                    SignalFact(ago(45 * DAY), {"total": 1000}),
                ]
            }
        )

        assert self.spent("eq", 150.5).holds(facts, NOW)

    def test_values_that_are_not_numbers_are_left_out(self) -> None:
        facts = SegmentFacts(
            signals={
                "order.placed": [
                    SignalFact(ago(DAY), {"total": 10}),
                    SignalFact(ago(DAY), {"total": "99"}),
                    SignalFact(ago(DAY), {"total": True}),
                    SignalFact(ago(DAY), {"total": None}),
                    SignalFact(ago(DAY), {}),
                ]
            }
        )

        assert self.spent("eq", 10).holds(facts, NOW)

    def test_the_sum_of_nothing_is_zero(self) -> None:
        assert self.spent("eq", 0).holds(SegmentFacts(), NOW)

    def test_the_sum_is_exact_whatever_the_order_of_the_signals(self) -> None:
        amounts = [0.1, 0.2, 0.3, 1e16, -1e16]
        forward = SegmentFacts(
            signals={"order.placed": [SignalFact(ago(DAY), {"total": a}) for a in amounts]}
        )
        backward = SegmentFacts(
            signals={"order.placed": [SignalFact(ago(DAY), {"total": a}) for a in amounts[::-1]]}
        )

        assert self.spent("eq", 0.6).holds(forward, NOW)
        assert self.spent("eq", 0.6).holds(backward, NOW)

    def test_it_changes_when_a_big_order_leaves_the_window(self) -> None:
        facts = SegmentFacts(
            signals={
                "order.placed": [
                    SignalFact(ago(DAY), {"total": 20}),
                    SignalFact(ago(25 * DAY), {"total": 500}),
                ]
            }
        )

        assert self.spent("gte", 100).changes_at(facts, NOW) == NOW + 5 * DAY


class TestNoSignal:
    lapsed = NoSignal(signal="order.placed", for_="90d")

    def test_a_customer_who_never_had_the_signal_matches(self) -> None:
        assert self.lapsed.holds(SegmentFacts(), NOW)

    def test_last_seen_answers_without_loading_any_signal(self) -> None:
        assert not self.lapsed.holds(SegmentFacts(last_seen={"order.placed": ago(DAY)}), NOW)
        assert self.lapsed.holds(SegmentFacts(last_seen={"order.placed": ago(100 * DAY)}), NOW)

    def test_it_holds_again_once_the_latest_signal_is_older_than_for(self) -> None:
        facts = SegmentFacts(last_seen={"order.placed": ago(10 * DAY)})

        assert self.lapsed.changes_at(facts, NOW) == NOW + 80 * DAY

    def test_it_stops_holding_when_a_signal_dated_in_the_future_comes_in(self) -> None:
        facts = orders(NOW + DAY)

        assert self.lapsed.holds(facts, NOW)
        assert self.lapsed.changes_at(facts, NOW) == NOW + DAY

    def test_with_where_only_matching_signals_count_and_last_seen_is_not_used(self) -> None:
        big = NoSignal(
            signal="order.placed",
            for_="90d",
            where=(PropertyFilter(property="total", op=Op.GTE, value=100),),
        )
        facts = SegmentFacts(
            signals={"order.placed": [SignalFact(ago(DAY), {"total": 20})]},
            last_seen={"order.placed": ago(DAY)},
        )

        assert big.holds(facts, NOW)
        assert big.changes_at(facts, NOW) is None

    def test_it_needs_signals_loaded_only_when_it_filters_them(self) -> None:
        assert self.lapsed.lookback == timedelta(0)
        assert self.lapsed.signal_types == {"order.placed"}
        filtered = NoSignal(
            signal="order.placed",
            for_="90d",
            where=(PropertyFilter(property="total", op=Op.EXISTS),),
        )
        assert filtered.lookback == timedelta(days=90)

    def test_for_is_its_name_in_the_document(self) -> None:
        assert condition_document(self.lapsed) == {
            "type": "no_signal",
            "signal": "order.placed",
            "for": "90d",
        }


class TestCombinations:
    gold = attribute("tier", "eq", "gold")
    french = attribute("country", "eq", "FR")
    facts = SegmentFacts(attributes={"tier": "gold", "country": "DE"})

    def test_all_holds_when_every_condition_holds(self) -> None:
        assert not AllOf(conditions=(self.gold, self.french)).holds(self.facts, NOW)
        assert AllOf(conditions=(self.gold,)).holds(self.facts, NOW)

    def test_any_holds_when_one_condition_holds(self) -> None:
        assert AnyOf(conditions=(self.gold, self.french)).holds(self.facts, NOW)
        assert not AnyOf(conditions=(self.french,)).holds(self.facts, NOW)

    def test_not_holds_when_its_condition_does_not(self) -> None:
        assert Not(condition=self.french).holds(self.facts, NOW)

    def test_the_combination_changes_no_later_than_its_first_child(self) -> None:
        facts = orders(ago(DAY), ago(20 * DAY))
        condition = AllOf(
            conditions=(
                placed("gte", 1, within="7d"),
                Not(condition=placed("gte", 2, within="30d")),
                self.gold,
            )
        )

        assert condition.changes_at(facts, NOW) == NOW + 6 * DAY

    def test_it_asks_for_every_signal_type_over_the_longest_window(self) -> None:
        condition = AnyOf(
            conditions=(
                placed("gte", 1, within="7d"),
                Not(condition=NoSignal(signal="app.opened", for_="365d")),
                SignalSum(signal="refund", property="amount", within="60d", op=Op.GT, value=0),
            )
        )

        assert condition.signal_types == {"order.placed", "app.opened", "refund"}
        assert condition.lookback == timedelta(days=60)

    def test_a_tree_without_signals_needs_no_lookback(self) -> None:
        assert AllOf(conditions=(self.gold,)).lookback == timedelta(0)
        assert AllOf(conditions=(self.gold,)).signal_types == frozenset()


LAPSED_VIP: dict[str, Any] = {
    "type": "all",
    "conditions": [
        {"type": "attribute", "name": "tier", "op": "in", "value": ["gold", "platinum"]},
        {"type": "identity", "identity_type": "email"},
        {"type": "consent", "channel": "email", "purpose": "marketing", "state": "granted"},
        {
            "type": "not",
            "condition": {
                "type": "signal_count",
                "signal": "order.placed",
                "within": "90d",
                "where": [{"property": "total", "op": "gte", "value": 50}],
                "op": "gte",
                "value": 1,
            },
        },
        {
            "type": "signal_sum",
            "signal": "order.placed",
            "property": "total",
            "within": "365d",
            "op": "gt",
            "value": 500.0,
        },
        {"type": "no_signal", "signal": "support.ticket", "for": "30d"},
    ],
}


def with_first(condition: dict[str, Any]) -> dict[str, Any]:
    return {"type": "all", "conditions": [condition]}


def refusal(document: Any) -> tuple[str, str]:
    with pytest.raises(ConditionInvalid) as caught:
        decode_condition(document if isinstance(document, str) else json.dumps(document))
    return caught.value.path, caught.value.reason


class TestDocuments:
    def test_a_document_reads_as_the_conditions_it_describes(self) -> None:
        condition = decode_condition(json.dumps(LAPSED_VIP))

        assert isinstance(condition, AllOf)
        assert condition.conditions[0] == AttributeIs(
            name="tier", op=Op.IN, value=("gold", "platinum")
        )
        assert condition.conditions[5] == NoSignal(signal="support.ticket", for_="30d")

    def test_a_document_reads_back_as_it_was_written(self) -> None:
        condition = decode_condition(LAPSED_VIP)

        assert condition_document(condition) == LAPSED_VIP
        assert decode_condition(json.dumps(condition_document(condition)).encode()) == condition

    def test_msgspec_reads_the_union_on_its_own(self) -> None:
        condition: Condition = msgspec.convert(LAPSED_VIP, Condition)

        assert condition == decode_condition(LAPSED_VIP)

    @pytest.mark.parametrize(
        ("document", "path"),
        [
            (
                {"type": "signal_count", "signal": "x", "within": "1d", "op": "gte"},
                "$.value",
            ),
            (with_first({"type": "classified", "within": "7d"}), "$.conditions[0].value"),
            (
                {"type": "not", "condition": {"type": "classified", "within": "7d"}},
                "$.condition.value",
            ),
        ],
    )
    def test_a_count_past_what_postgresql_and_json_hold_is_refused_by_its_path(
        self, document: dict[str, Any], path: str
    ) -> None:
        leaf = document.get("condition") or (document.get("conditions") or [document])[0]
        leaf["value"] = 99999999999999999999  # past 64 bits
        assert refusal(document) == (path, "at most 2,147,483,647")
        leaf["value"] = 2**31 - 1
        decode_condition(document)

    def test_an_unknown_type_is_refused_with_the_types_there_are(self) -> None:
        path, reason = refusal(with_first({"type": "segment"}))

        assert path == "$.conditions[0].type"
        assert reason.startswith("'segment' is not a condition type: use all, any, not,")

    def test_an_unknown_op_is_refused_with_the_ops_there_are(self) -> None:
        path, reason = refusal({"type": "attribute", "name": "tier", "op": "like", "value": "g"})

        assert path == "$.op"
        assert reason == (
            "'like' is not one of eq, ne, gt, gte, lt, lte, in, not_in, contains, "
            "starts_with, exists, not_exists"
        )

    def test_a_count_cannot_be_compared_with_a_text_op(self) -> None:
        path, reason = refusal(
            {
                "type": "signal_count",
                "signal": "order.placed",
                "within": "7d",
                "op": "contains",
                "value": 1,
            }
        )

        assert (path, reason) == (
            "$.op",
            "'contains' cannot compare numbers: use eq, ne, gt, gte, lt, lte",
        )

    def test_a_bad_duration_is_refused_where_it_is(self) -> None:
        path, reason = refusal(
            with_first(
                {
                    "type": "signal_count",
                    "signal": "order.placed",
                    "within": "a month",
                    "op": "gte",
                    "value": 1,
                }
            )
        )

        assert path == "$.conditions[0].within"
        assert "e.g. 30s, 15m, 2h, 7d or 1h30m" in reason

    @pytest.mark.parametrize(
        ("window", "reason"),
        [
            ("0d", "'0d' is no time at all: a window must be longer than zero"),
            ("600w", "'600w' is longer than 3650d"),
        ],
    )
    def test_a_window_must_be_some_time_and_not_forever(self, window: str, reason: str) -> None:
        assert refusal({"type": "no_signal", "signal": "order.placed", "for": window}) == (
            "$.for",
            reason,
        )

    def test_a_missing_value_is_refused(self) -> None:
        path, reason = refusal(with_first({"type": "attribute", "name": "tier", "op": "eq"}))

        assert (path, reason) == ("$.conditions[0].value", "eq needs a value to compare with")

    def test_a_missing_field_is_named_in_the_path(self) -> None:
        assert refusal({"type": "consent", "channel": "email", "purpose": "marketing"}) == (
            "$.state",
            "required field is missing",
        )

    def test_an_unknown_field_is_named_in_the_path(self) -> None:
        assert refusal({"type": "identity", "identity_type": "email", "verified": True}) == (
            "$.verified",
            "unknown field",
        )

    def test_a_value_of_the_wrong_type_says_what_was_expected(self) -> None:
        document = {
            "type": "any",
            "conditions": [
                {"type": "identity", "identity_type": "email"},
                {"type": "signal_count", "signal": "o", "within": "1d", "op": "gt", "value": "2"},
            ],
        }

        assert refusal(document) == ("$.conditions[1].value", "Expected `int`, got `str`")

    @pytest.mark.parametrize(
        ("op", "value", "reason"),
        [
            ("exists", 1, "exists takes no value"),
            ("in", "gold", "in needs a list of values"),
            ("in", [], "in needs at least one value in the list"),
            ("not_in", ["a", 1], "a list must hold values of one type: text, numbers or booleans"),
            ("eq", ["a"], "a list is only for in and not_in, not for eq"),
            ("gt", True, "true and false compare only with eq and ne, not gt"),
            ("starts_with", 4, "starts_with needs text"),
        ],
    )
    def test_the_value_must_suit_the_op(self, op: str, value: Any, reason: str) -> None:
        filter_ = {"property": "tier", "op": op, "value": value}
        document = {"type": "no_signal", "signal": "o", "for": "1d", "where": [filter_]}

        assert refusal(document) == ("$.where[0].value", reason)

    def test_null_is_not_a_value(self) -> None:
        path, _ = refusal({"type": "attribute", "name": "tier", "op": "eq", "value": None})

        assert path == "$.value"

    def test_all_and_any_need_at_least_one_condition(self) -> None:
        assert refusal({"type": "any", "conditions": []})[0] == "$.conditions"
        with pytest.raises(ValueError, match="conditions: needs at least one condition"):
            AnyOf(conditions=())

    def test_conditions_nest_at_most_eight_levels_deep(self) -> None:
        leaf = {"type": "identity", "identity_type": "email"}
        eight = leaf
        for _ in range(7):
            eight = {"type": "not", "condition": eight}
        nine = {"type": "not", "condition": eight}

        assert decode_condition(eight)
        assert refusal(nine) == ("$", "conditions nest 9 levels deep, but at most 8 may")

    def test_at_most_a_hundred_conditions_combine(self) -> None:
        leaf = {"type": "identity", "identity_type": "email"}
        hundred = {"type": "any", "conditions": [with_first(leaf)] * 50 + [leaf] * 50}

        assert count_conditions(decode_condition(hundred)) == 100
        hundred["conditions"].append(leaf)
        assert refusal(hundred) == ("$", "101 conditions, but at most 100 may be combined")

    def test_text_that_is_not_json_is_refused_at_the_top(self) -> None:
        path, reason = refusal("{'type': 'all'}")

        assert path == "$"
        assert reason.startswith("not valid JSON")

    def test_the_same_checks_apply_to_conditions_built_in_code(self) -> None:
        with pytest.raises(ValueError, match="within: '3 days' is not a duration"):
            placed("gte", 1, within="3 days")

    def test_an_error_says_where_and_why(self) -> None:
        error = ConditionInvalid("$.conditions[0].op", "unknown op")

        assert str(error) == "$.conditions[0].op: unknown op"
        assert isinstance(error, ValueError)
