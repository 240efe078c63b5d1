"""An event whose personal values are fields of its own, or the values of one, is sealed from
its fields as they are: stored exactly as when it is walked as builtins, and read back alike."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import msgspec
import pytest

from adapters.crypto.envelope import MasterKey
from adapters.postgres.codec import EventCodec
from adapters.postgres.customer_keys import CustomerKeys, sealed_by
from domain.shared.personal import ERASED
from domain.signals.aggregate import Signal, SignalReport

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def keys_holding(*customer_ids: Any) -> CustomerKeys:
    keys = CustomerKeys(MasterKey("a master key"))
    for customer_id in customer_ids:
        wrapped = keys.master.new_wrapped(customer_id)
        keys._kept[customer_id] = (keys.master.unwrap(customer_id, wrapped), 0.0)
    return keys


def recorded(properties: Any, customer_id: Any = None) -> Signal.Recorded:
    report = SignalReport("e-1", "page.viewed", T0, (), properties)
    return Signal.recorded(report, customer_id or uuid4(), T0)


PROPERTIES = [
    {"page": "/products/7", "session": "s1", "value": 12},
    {"page": None, "nested": {"a": [1, "x"]}, "when": T0, "n": 1.5},
    {},
    {"only": None},
    None,
]


class TestSealingFieldsAsTheyAre:
    @pytest.mark.parametrize("properties", PROPERTIES)
    def test_the_payload_is_what_walking_builtins_stores(self, properties: Any) -> None:
        ana = uuid4()
        keys = keys_holding(ana)
        codec = EventCodec(keys=keys)
        event = recorded(properties, ana)
        payload = codec.encode(event, ana).payload
        walking = EventCodec(keys=keys)
        walking._type_of_class(Signal.Recorded).personal_fields = None  # builtins, walked
        walked = walking.encode(event, ana).payload
        key = keys.key_of(ana)
        assert key is not None
        stored, expected = msgspec.json.decode(payload), msgspec.json.decode(walked)
        assert list(stored) == list(expected)  # the same fields, in the same order
        assert key.open(stored.pop("$v")) == key.open(expected.pop("$v"))
        assert stored == expected
        assert len(payload) == len(walked)
        assert sealed_by(payload) == ana
        assert payload.startswith(b'{"$k":"' + str(ana).encode() + b'","$v":"')

    @pytest.mark.parametrize("properties", PROPERTIES[:-1])
    def test_it_reads_back_as_recorded_and_erased_without_its_key(self, properties: Any) -> None:
        ana = uuid4()
        codec = EventCodec(keys=keys_holding(ana))
        event = recorded(properties, ana)
        row = codec.encode(event, ana)
        args = (row.stream_id, row.version, row.topic, row.class_version, row.occurred_at)
        assert codec.decode(*args, row.payload).properties == msgspec.to_builtins(properties)
        erased = codec.decode(*args, row.payload, key=None).properties
        assert erased == {k: None if v is None else ERASED for k, v in properties.items()}

    def test_the_event_itself_is_left_as_it_was(self) -> None:
        ana = uuid4()
        properties = {"page": "/products/7", "gone": None}
        event = recorded(properties, ana)
        EventCodec(keys=keys_holding(ana)).encode(event, ana)
        assert event.properties is properties
        assert properties == {"page": "/products/7", "gone": None}

    def test_nothing_personal_is_in_clear(self) -> None:
        ana = uuid4()
        codec = EventCodec(keys=keys_holding(ana))
        payload = codec.encode(recorded({"email": "ana@example.org", "n": 424242}, ana), ana)
        assert b"ana@example.org" not in payload.payload
        assert b"424242" not in payload.payload

    @pytest.mark.parametrize("properties", PROPERTIES)
    def test_opening_puts_each_value_back_as_walking_the_paths_does(self, properties: Any) -> None:
        ana = uuid4()
        keys = keys_holding(ana)
        codec, walking = EventCodec(keys=keys), EventCodec(keys=keys)
        row = codec.encode(recorded(properties, ana), ana)
        walking._places_by_topic[row.topic] = None  # the paths walked through closures
        opened = codec.opened(row.topic, row.payload)
        assert opened is not None
        assert opened == walking.opened(row.topic, row.payload)
        assert opened["properties"] == msgspec.to_builtins(properties)
