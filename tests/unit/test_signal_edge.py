from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from domain.customer.identities import IdentityNormalizer
from domain.policy.rule_document import RuleSetInvalid
from domain.shared.documents import json_fault
from domain.signals.document import MAX_SIGNAL_BYTES, InvalidSignal, SignalIn, SignalReader
from entrypoints.rules_schema import parse_rule_set
from entrypoints.text_checks import wire_fault


def _signal(**changes: Any) -> dict[str, Any]:
    signal: dict[str, Any] = {
        "id": "evt-1",
        "type": "order.placed",
        "occurred_at": "2026-11-28T09:00:00Z",
        "identities": [{"type": "email", "value": "ana@example.org"}],
    }
    signal.update(changes)
    return signal


def _check(raw: bytes) -> SignalIn | InvalidSignal:
    return SignalReader(IdentityNormalizer("GB"), refuse=wire_fault).check(3, raw)


def _refused(raw: bytes) -> InvalidSignal:
    checked = _check(raw)
    assert isinstance(checked, InvalidSignal), checked
    assert checked.index == 3
    return checked


class TestUnstorableText:
    @pytest.mark.parametrize(
        ("signal", "field"),
        [
            (_signal(identities=[{"type": "email", "value": "a\u0000b"}]), "identities[0].value"),
            (_signal(identities=[{"type": "custom\n", "value": "x"}]), "identities[0].type"),
            (_signal(properties={"note": "a\u0000b"}), "properties.note"),
            (_signal(properties={"a": [{"b": "\x1b[31m"}]}), "properties.a[0].b"),
            (_signal(properties={"k\u0000": 1}), "properties['k\\x00']"),
            (_signal(attributes={"tier": "\u0007"}), "attributes.tier"),
            (_signal(profile={"first_name": "An\na"}), "profile.first_name"),
            (_signal(id="evt\u0085"), "id"),
            (_signal(source="crm\u0000"), "source"),
        ],
    )
    def test_a_signal_with_a_control_character_is_refused_naming_its_field(
        self, signal: dict[str, Any], field: str
    ) -> None:
        refused = _refused(json.dumps(signal).encode())
        assert refused.field == f"$.{field}"
        assert "control character" in refused.reason
        assert refused.signal_id == signal["id"]

    def test_free_text_in_properties_and_attributes_keeps_tabs_and_line_breaks(self) -> None:
        signal = _signal(properties={"note": "a\tb\r\nc"}, attributes={"bio": "x\ny"})
        checked = _check(json.dumps(signal).encode())
        assert isinstance(checked, SignalIn)
        assert checked.properties == {"note": "a\tb\r\nc"}

    def test_non_ascii_written_as_escapes_passes(self) -> None:
        checked = _check(json.dumps(_signal(properties={"city": "Zürich 東京 😀"})).encode())
        assert isinstance(checked, SignalIn)
        assert checked.properties["city"] == "Zürich 東京 😀"

    def test_invalid_utf8_is_refused(self) -> None:
        raw = json.dumps(_signal(properties={"x": "PLACEHOLDER"})).encode()
        refused = _refused(raw.replace(b"PLACEHOLDER", b"\xff\xfe"))
        assert refused.field == "$"
        assert "UTF-8" in refused.reason

    def test_a_lone_surrogate_is_refused(self) -> None:
        raw = json.dumps(_signal(properties={"x": "PLACEHOLDER"})).encode()
        refused = _refused(raw.replace(b"PLACEHOLDER", b"\\ud800"))
        assert refused.field == "$"


class TestLimits:
    def test_properties_nested_deeper_than_32_are_refused(self) -> None:
        deep: Any = "leaf"
        for _ in range(40):
            deep = {"a": deep}
        refused = _refused(json.dumps(_signal(properties=deep)).encode())
        assert "nested deeper than 32" in refused.reason
        assert refused.field.startswith("$.properties.a.a")

    def test_properties_nested_a_thousand_deep_are_refused_not_a_crash(self) -> None:
        raw = json.dumps(_signal(properties={"x": "P"})).encode()
        refused = _refused(raw.replace(b'"P"', b"[" * 5000 + b"]" * 5000))
        assert "nested deeper than 32" in refused.reason
        assert refused.field == "$.properties.x" + "[0]" * 30

    @pytest.mark.parametrize("depth", [33, 1000, 100_000])
    def test_a_document_too_deep_to_read_is_no_crash_of_the_json_check(self, depth: int) -> None:
        assert json_fault(b"[" * depth + b"]" * depth) == (
            None if depth == 33 else "it nests arrays and objects too deep to be read"
        )

    def test_a_signal_over_64_kib_is_refused_with_its_id(self) -> None:
        raw = json.dumps(_signal(properties={"blob": "x" * MAX_SIGNAL_BYTES})).encode()
        refused = _refused(raw)
        assert refused.field == "$"
        assert "65,536" in refused.reason
        assert refused.signal_id == "evt-1"

    def test_a_signal_just_under_64_kib_passes(self) -> None:
        raw = json.dumps(_signal(properties={"blob": ""})).encode()
        raw = raw.replace(b'"blob": ""', b'"blob": "' + b"x" * (MAX_SIGNAL_BYTES - len(raw)) + b'"')
        assert len(raw) == MAX_SIGNAL_BYTES
        assert isinstance(_check(raw), SignalIn)

    @pytest.mark.parametrize(
        "occurred_at", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"]
    )
    def test_a_time_at_the_ends_of_the_calendar_is_refused(self, occurred_at: str) -> None:
        refused = _refused(json.dumps(_signal(occurred_at=occurred_at)).encode())
        assert refused.field == "$.occurred_at"


class TestRoutingDocuments:
    def test_a_routing_document_too_deep_to_read_is_refused_not_a_crash(self) -> None:
        from domain.conversation.routing_reader import RoutingInvalid, decode_routing

        deep = b'{"a":' * 1000 + b"1" + b"}" * 1000
        document = b'{"default_team": "t", "rules": [{"when": ' + deep + b"}]}"
        with pytest.raises(RoutingInvalid) as refused:
            decode_routing(document, teams={"t"}, segments=set())
        assert refused.value.faults[0].path == "$"


class TestRuleDocuments:
    def test_a_rule_document_with_a_nul_is_refused_naming_its_field(self) -> None:
        document = msgspec.json.encode({"default_time_zone": "UTC\u0000"})
        with pytest.raises(RuleSetInvalid) as refused:
            parse_rule_set(document, version=0)
        assert refused.value.errors[0].path == "$.default_time_zone"

    def test_a_rule_document_nested_a_thousand_deep_is_refused(self) -> None:
        document = b'{"caps": ' + b"[" * 1000 + b"]" * 1000 + b"}"
        with pytest.raises(RuleSetInvalid) as refused:
            parse_rule_set(document, version=0)
        assert "nested deeper than 32" in refused.value.errors[0].reason
