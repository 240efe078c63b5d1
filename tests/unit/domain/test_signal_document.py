"""The signal document: what a signal is made of, how it is read, and how a fault is said."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from domain.customer.identities import Identity, IdentityNormalizer
from domain.signals.aggregate import SignalReport
from domain.signals.document import InvalidSignal, SignalReader


def _signal(**changes: Any) -> dict[str, Any]:
    signal: dict[str, Any] = {
        "id": "evt-1",
        "type": "order.placed",
        "occurred_at": "2026-11-28T09:00:00Z",
        "identities": [{"type": "email", "value": "Ana@Example.org"}],
    }
    signal.update(changes)
    return signal


def _read(signal: dict[str, Any]) -> SignalReport | InvalidSignal:
    return SignalReader(IdentityNormalizer("GB")).read(2, msgspec.json.encode(signal))


def _refused(signal: dict[str, Any]) -> InvalidSignal:
    read = _read(signal)
    assert isinstance(read, InvalidSignal), read
    assert read.index == 2
    return read


class TestAValidSignalIsReadAsAReport:
    def test_its_identities_are_normalised(self) -> None:
        report = _read(_signal())
        assert isinstance(report, SignalReport)
        assert report.event_id == "evt-1"
        assert [claim.identity for claim in report.identities] == [
            Identity("email", "ana@example.org")
        ]

    def test_its_profile_holds_only_the_fields_given(self) -> None:
        report = _read(_signal(profile={"first_name": "Ana"}, attributes={"tier": "gold"}))
        assert isinstance(report, SignalReport)
        assert report.profile == {"first_name": "Ana"}
        assert report.attributes == {"tier": "gold"}


class TestAFaultIsSaidWhereAndWhy:
    def test_a_field_of_the_wrong_type_names_its_path(self) -> None:
        refused = _refused(_signal(type=3))
        assert (refused.field, refused.reason) == ("$.type", "Expected `str`, got `int`")
        assert refused.signal_id == "evt-1"

    def test_a_missing_field_is_named(self) -> None:
        signal = _signal()
        del signal["identities"]
        refused = _refused(signal)
        assert refused.field == "$.identities"

    def test_an_identity_that_does_not_normalise_is_refused_at_its_value(self) -> None:
        identities = [
            {"type": "email", "value": "ana@example.org"},
            {"type": "phone", "value": "not a phone"},
        ]
        assert _refused(_signal(identities=identities)).field == "$.identities[1].value"

    def test_a_profile_field_the_profile_refuses_names_the_field(self) -> None:
        refused = _refused(_signal(profile={"time_zone": "Mars/Olympus"}))
        assert refused.field == "$.profile.time_zone"
        assert refused.reason == "'Mars/Olympus' is not an IANA time zone"

    def test_a_time_without_an_offset_is_refused(self) -> None:
        refused = _refused(_signal(occurred_at="2026-11-28T09:00:00"))
        assert (refused.field, refused.reason) == (
            "$.occurred_at",
            "needs a time zone offset, e.g. Z",
        )

    @pytest.mark.parametrize(("field", "value"), [("id", "evt\u0000"), ("source", " crm")])
    def test_a_name_with_a_control_character_or_spaces_around_is_refused_without_the_edge(
        self, field: str, value: str
    ) -> None:
        refused = _refused(_signal(**{field: value}))
        assert refused.field == f"$.{field}"
        assert (
            refused.reason == "must not start or end with whitespace, nor hold control characters"
        )

    def test_text_that_is_not_json_is_refused_at_the_root(self) -> None:
        read = SignalReader(IdentityNormalizer("GB")).read(0, b'{"id": ')
        assert read == InvalidSignal(0, "$", "Input data was truncated")


class TestAttributionReadsAReceivedSignal:
    def test_a_valid_signal_is_its_report(self) -> None:
        parsed = SignalReader(IdentityNormalizer("GB")).parse(msgspec.json.encode(_signal()))
        assert isinstance(parsed, SignalReport)
        assert parsed.event_id == "evt-1"

    def test_a_refused_signal_is_its_path_and_reason(self) -> None:
        payload = msgspec.json.encode(_signal(type="order placed"))
        parsed = SignalReader(IdentityNormalizer("GB")).parse(payload)
        assert parsed == "$.type: may hold only letters, digits and _ . : -"


class TestWhatReachesItsCustomerBeforeTheAnswer:
    @staticmethod
    def _at_once(signal: dict[str, Any]) -> bool:
        reader = SignalReader(IdentityNormalizer("GB"))
        checked = reader.check(0, msgspec.json.encode(signal))
        assert not isinstance(checked, InvalidSignal), checked
        return reader.received(0, checked, b"{}").at_once is not None

    @pytest.mark.parametrize(
        ("kind", "properties", "at_once"),
        [
            ("message.received", {"channel": "sms", "text": "STOP"}, True),
            ("message.received", {"channel": "whatsapp", "text": " start! "}, True),
            ("message.received", {"channel": "sms", "text": "please don't stop"}, False),
            ("message.received", {"channel": "email", "text": "Where is my order?"}, False),
            ("consent.withdrawn", {"channel": "email", "purpose": "marketing"}, True),
            ("consent.granted", {"channel": "sms"}, True),
            ("order.placed", {"channel": "sms"}, False),
        ],
    )
    def test_only_a_change_of_consent(
        self, kind: str, properties: dict[str, Any], at_once: bool
    ) -> None:
        # Each message from an identity that writes on its channel (the edge refuses others).
        identities = [
            {"type": "email", "value": "ana@example.org"},
            {"type": "phone", "value": "+447700900123"},
        ]
        signal = _signal(type=kind, properties=properties, identities=identities)
        assert self._at_once(signal) is at_once
