"""The codec writes events under their stable names and reads old ones as the classes are now."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import msgspec
import pytest
from eventsourcing.domain import Aggregate, event
from eventsourcing.utils import get_topic

from adapters.postgres.codec import EncodedEvent, EventCodec
from domain.shared.topics import StoredAs, TopicRegistry, UnknownTopic

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


class ParcelThen(Aggregate):
    """A parcel as version 1 of its events knew it: a weight in grams, sent by anyone."""

    stored_as = StoredAs("shipping.parcels:Parcel")

    class Registered(Aggregate.Created):
        grams: int

    @event(Registered)
    def __init__(self, grams: int) -> None:
        self.grams = grams

    class Sent(Aggregate.Event):
        def apply(self, aggregate: Aggregate) -> None:
            pass


class ParcelNow(Aggregate):
    """The same stored parcel, later: registered with a carrier (version 2 of `Registered`),
    and `Sent` renamed `Dispatched`; moved to another module, its stored name would stay."""

    stored_as = StoredAs("shipping.parcels:Parcel", renamed={"Sent": "Dispatched"})

    class Registered(Aggregate.Created):
        class_version = 2
        grams: int
        carrier: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["carrier"] = "unknown"

    @event(Registered)
    def __init__(self, grams: int, carrier: str) -> None:
        self.grams = grams
        self.carrier = carrier
        self.dispatched = False

    class Dispatched(Aggregate.Event):
        def apply(self, aggregate: ParcelNow) -> None:
            aggregate.dispatched = True


def stored_then() -> list[EncodedEvent]:
    codec = EventCodec(TopicRegistry([ParcelThen]))
    parcel = ParcelThen(grams=300)
    parcel.trigger_event(ParcelThen.Sent)
    return [codec.encode(e) for e in parcel.collect_events()]


def read(codec: EventCodec, stored: list[EncodedEvent]) -> Any:
    aggregate = None
    for e in stored:
        decoded = codec.decode(
            e.stream_id, e.version, e.topic, e.class_version, e.occurred_at, e.payload
        )
        aggregate = decoded.mutate(aggregate)
    return aggregate


class TestWriting:
    def test_an_event_is_stored_under_its_stable_name_at_its_class_version(self) -> None:
        registered, sent = stored_then()
        assert (registered.topic, registered.class_version) == (
            "shipping.parcels:Parcel.Registered",
            1,
        )
        assert sent.topic == "shipping.parcels:Parcel.Sent"

    def test_a_created_event_names_its_aggregate_by_the_stable_name(self) -> None:
        registered, _ = stored_then()
        assert msgspec.json.decode(registered.payload) == {
            "originator_topic": "shipping.parcels:Parcel",
            "grams": 300,
        }


class TestReadingEventsOfToday:
    def test_an_event_read_back_equals_the_one_written(self) -> None:
        codec = EventCodec(TopicRegistry([ParcelNow]))
        parcel = ParcelNow(grams=50, carrier="post")
        parcel.trigger_event(ParcelNow.Dispatched)
        written = parcel.collect_events()
        read_back = [
            codec.decode(e.stream_id, e.version, e.topic, e.class_version, e.occurred_at, e.payload)
            for e in (codec.encode(event) for event in written)
        ]
        assert read_back == written


class TestReadingOldEvents:
    def test_an_event_of_class_version_1_is_upcast_to_version_2(self) -> None:
        parcel = read(EventCodec(TopicRegistry([ParcelNow])), stored_then())
        assert isinstance(parcel, ParcelNow)
        assert (parcel.grams, parcel.carrier) == (300, "unknown")

    def test_a_renamed_event_is_read_under_its_old_name(self) -> None:
        parcel = read(EventCodec(TopicRegistry([ParcelNow])), stored_then())
        assert parcel.dispatched
        assert parcel.version == 2

    def test_in_memory_a_created_event_names_its_aggregate_as_eventsourcing_does(self) -> None:
        registered, _ = stored_then()
        decoded = EventCodec(TopicRegistry([ParcelNow])).decode(
            registered.stream_id,
            registered.version,
            registered.topic,
            registered.class_version,
            registered.occurred_at,
            registered.payload,
        )
        assert decoded.originator_topic == get_topic(ParcelNow)  # type: ignore[attr-defined]

    def test_events_of_today_are_written_at_the_class_version_of_today(self) -> None:
        codec = EventCodec(TopicRegistry([ParcelNow]))
        parcel = ParcelNow(grams=50, carrier="post")
        parcel.trigger_event(ParcelNow.Dispatched)
        registered, dispatched = (codec.encode(e) for e in parcel.collect_events())
        assert registered.class_version == 2
        assert dispatched.topic == "shipping.parcels:Parcel.Dispatched"
        assert read(codec, [registered, dispatched]).carrier == "post"

    def test_an_event_no_class_is_stored_as_fails_clearly(self) -> None:
        codec = EventCodec(TopicRegistry([ParcelNow]))
        with pytest.raises(UnknownTopic, match="no event class is stored as"):
            codec.decode(uuid4(), 1, "shipping.parcels:Parcel.Lost", 1, T0, b"{}")
