"""Triggers: what each definition fires on, how it changes, and how a bad one is refused."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import pytest

from domain.shared.errors import InvalidValue
from domain.triggers.aggregate import Firing, Trigger, firing_id, trigger_id
from domain.triggers.definition import (
    MAX_FILTERS,
    OnSegmentEntered,
    OnSegmentExited,
    OnSignal,
    SourceEvent,
    SourceKind,
    TriggerInvalid,
    decode_on,
    on_document,
)

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
ANA = uuid4()
BIG_ORDERS: dict[str, Any] = {
    "type": "signal",
    "signal": "order.placed",
    "where": [
        {"property": "total", "op": "gte", "value": 100},
        {"property": "shipping.country", "op": "in", "value": ["PT", "ES"]},
    ],
}


def signal(kind: str = "order.placed", **properties: Any) -> SourceEvent:
    return SourceEvent(
        SourceKind.SIGNAL, kind, ANA, uuid4(), 1, T0, T0, properties, signal_event_id="e1"
    )


def membership(kind: SourceKind, segment: str, version: int = 1) -> SourceEvent:
    return SourceEvent(kind, segment, ANA, uuid4(), version, T0, T0)


def big_orders() -> Trigger:
    return Trigger.define("big-orders", "Big orders", "", decode_on(BIG_ORDERS), "test", T0)


class TestSignalTriggers:
    def test_a_signal_of_the_type_passing_every_filter_fires(self) -> None:
        on = decode_on(BIG_ORDERS)
        assert on.matches(signal(total=120, shipping={"country": "PT"}))

    def test_a_signal_failing_one_filter_does_not(self) -> None:
        on = decode_on(BIG_ORDERS)
        assert not on.matches(signal(total=99, shipping={"country": "PT"}))
        assert not on.matches(signal(total=120, shipping={"country": "FR"}))
        assert not on.matches(signal(total="120", shipping={"country": "PT"}))
        assert not on.matches(signal(shipping={"country": "PT"}))

    def test_another_signal_type_does_not_even_with_the_same_properties(self) -> None:
        on = decode_on(BIG_ORDERS)
        assert not on.matches(signal("order.refunded", total=120, shipping={"country": "PT"}))

    def test_without_filters_every_signal_of_the_type_fires(self) -> None:
        on = OnSignal(signal="login")
        assert on.matches(signal("login"))
        assert on.route == (SourceKind.SIGNAL, "login")

    def test_a_segment_entry_never_fires_a_signal_trigger(self) -> None:
        on = OnSignal(signal="vip")
        assert not on.matches(membership(SourceKind.SEGMENT_ENTERED, "vip"))


class TestSegmentTriggers:
    def test_an_entry_into_the_segment_fires_an_entered_trigger_only(self) -> None:
        entered = OnSegmentEntered(segment="lapsed")
        exited = OnSegmentExited(segment="lapsed")
        event = membership(SourceKind.SEGMENT_ENTERED, "lapsed")
        assert entered.matches(event)
        assert not exited.matches(event)

    def test_an_exit_fires_an_exited_trigger_only(self) -> None:
        event = membership(SourceKind.SEGMENT_EXITED, "lapsed", version=2)
        assert OnSegmentExited(segment="lapsed").matches(event)
        assert not OnSegmentEntered(segment="lapsed").matches(event)

    def test_another_segment_does_not_fire_it(self) -> None:
        event = membership(SourceKind.SEGMENT_ENTERED, "buyers")
        assert not OnSegmentEntered(segment="lapsed").matches(event)


class TestVersions:
    def test_the_same_draft_twice_records_nothing(self) -> None:
        trigger = big_orders()
        trigger.collect_events()
        assert not trigger.redefine("Big orders", "", decode_on(BIG_ORDERS), "test", T0)
        assert trigger.collect_events() == []
        assert trigger.number == 1

    def test_a_new_definition_is_the_next_version(self) -> None:
        trigger = big_orders()
        assert trigger.redefine("Big orders", "", OnSignal(signal="order.placed"), "test", T0)
        assert trigger.number == 2
        assert trigger.matches(signal(total=1))

    def test_a_deleted_trigger_matches_nothing_until_it_is_defined_again(self) -> None:
        trigger = big_orders()
        big = signal(total=500, shipping={"country": "ES"})
        assert trigger.matches(big)
        assert trigger.delete("test", T0)
        assert not trigger.delete("test", T0)
        assert not trigger.matches(big)
        assert trigger.redefine("Big orders", "", decode_on(BIG_ORDERS), "test", T0)
        assert trigger.matches(big)
        kinds = [type(e).__name__ for e in trigger.collect_events()]
        assert kinds == ["Defined", "Deleted", "Restored", "Redefined"]

    def test_the_id_follows_from_the_key(self) -> None:
        assert big_orders().id == trigger_id("big-orders")
        with pytest.raises(InvalidValue):
            trigger_id("Big Orders")


class TestFirings:
    def test_a_source_event_names_one_firing_of_each_trigger(self) -> None:
        source, a, b = uuid4(), uuid4(), uuid4()
        assert firing_id(a, source, 1) == firing_id(a, source, 1)
        assert len({firing_id(a, source, 1), firing_id(b, source, 1), firing_id(a, source, 2)}) == 3

    def test_a_firing_names_the_trigger_version_and_its_source(self) -> None:
        trigger = big_orders()
        source = signal(total=500, shipping={"country": "ES"})
        fired = Firing.fired(trigger.id, trigger.key, trigger.number, source, T0)
        assert fired.originator_id == firing_id(trigger.id, source.stream_id, 1)
        assert fired.originator_version == 1
        assert (fired.trigger_key, fired.trigger_version) == ("big-orders", 1)
        assert (fired.source_kind, fired.signal_type, fired.segment_key) == (
            "signal",
            "order.placed",
            None,
        )
        assert fired.signal_event_id == "e1"
        assert fired.customer_id == ANA

    def test_an_exit_firing_says_why_the_customer_left(self) -> None:
        source = SourceEvent(
            SourceKind.SEGMENT_EXITED, "vip", ANA, uuid4(), 3, T0, T0, exit_reason="condition"
        )
        fired = Firing.fired(UUID(int=1), "vip-left", 2, source, T0)
        assert (fired.segment_key, fired.exit_reason, fired.signal_type) == (
            "vip",
            "condition",
            None,
        )


class TestDocuments:
    @pytest.mark.parametrize(
        "document",
        [
            BIG_ORDERS,
            {"type": "signal", "signal": "login"},
            {"type": "segment_entered", "segment": "lapsed"},
            {"type": "segment_exited", "segment": "vip.gold"},
        ],
    )
    def test_a_definition_reads_back_as_written(self, document: dict[str, Any]) -> None:
        assert on_document(decode_on(document)) == document

    @pytest.mark.parametrize(
        ("document", "path", "reason"),
        [
            (
                {"type": "signal", "signal": "x", "where": [{"property": "a", "op": "like"}]},
                "$.where[0].op",
                "'like' is not one of eq",
            ),
            (
                {
                    "type": "signal",
                    "signal": "x",
                    "where": [{"property": "a", "op": "exists", "value": 1}],
                },
                "$.where[0].value",
                "takes no value",
            ),
            (
                {"type": "signal", "signal": "x", "where": [{"property": "a", "op": "gt"}]},
                "$.where[0].value",
                "needs a value",
            ),
            ({"type": "page_view"}, "$.type", "not a trigger type"),
            ({"signal": "x"}, "$.type", "required field is missing"),
            ({"type": "signal"}, "$.signal", "required field is missing"),
            ({"type": "signal", "signal": "x", "colour": 1}, "$.colour", "unknown field"),
            ({"type": "segment_entered", "segment": "Not A Key"}, "$.segment", "regex"),
            (
                {
                    "type": "signal",
                    "signal": "x",
                    "where": [{"property": "a", "op": "exists"}] * (MAX_FILTERS + 1),
                },
                "$.where",
                f"length <= {MAX_FILTERS}",
            ),
        ],
    )
    def test_a_bad_definition_is_refused_naming_the_field(
        self, document: dict[str, Any], path: str, reason: str
    ) -> None:
        with pytest.raises(TriggerInvalid) as refused:
            decode_on(document)
        assert refused.value.path == path
        assert reason in refused.value.reason

    def test_json_text_is_read_too(self) -> None:
        assert decode_on('{"type": "segment_exited", "segment": "vip"}') == OnSegmentExited(
            segment="vip"
        )
        with pytest.raises(TriggerInvalid) as refused:
            decode_on("{")
        assert refused.value.path == "$"
