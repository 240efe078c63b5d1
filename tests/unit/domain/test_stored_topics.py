"""Stored events are named by what their aggregates declare, not by where the classes live."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from eventsourcing.domain import Aggregate, event

from domain.catalog import AGGREGATES, TOPICS
from domain.customer.aggregate import Customer
from domain.shared.topics import StoredAs, TopicRegistry, UnknownTopic, events_of
from domain.signals.intake import RECEIVED_TOPIC

STORED_TOPICS = Path(__file__).parents[1] / "stored_topics.txt"


class Parcel(Aggregate):
    """Once in `shipping.parcels`, where its events were stored; its `Dispatched` is now `Sent`."""

    stored_as = StoredAs("shipping.parcels:Parcel", renamed={"Dispatched": "Sent"})

    @event("Registered")
    def __init__(self, grams: int) -> None:
        self.grams = grams

    @event("Sent")
    def send(self, carrier: str) -> None:
        self.carrier = carrier


class Crate(Aggregate):
    """Built only by its events, like a segment membership: no `Created` of its own."""

    stored_as = StoredAs("shipping.crates:Crate")

    class Loaded(Aggregate.Event):
        parcels: int


def committed_topics() -> set[str]:
    lines = STORED_TOPICS.read_text().splitlines()
    return {line for line in lines if line and not line.startswith("#")}


class TestTheCatalog:
    def test_every_event_of_every_aggregate_has_a_name_of_its_own(self) -> None:
        names = [TOPICS.topic_of(e) for a in AGGREGATES for e in events_of(a).values()]
        assert len(names) == len(set(names))

    def test_the_names_it_reads_are_the_committed_list(self) -> None:
        assert TOPICS.readable() == committed_topics()

    def test_names_are_the_module_paths_they_were_stored_under(self) -> None:
        assert TOPICS.topic_of(Customer) == "domain.customer.aggregate:Customer"
        assert (
            TOPICS.class_of("domain.customer.aggregate:Customer.MergedInto") is Customer.MergedInto
        )

    def test_an_aggregate_without_a_declared_name_is_refused(self) -> None:
        class Nameless(Aggregate):
            pass

        with pytest.raises(TypeError, match="Nameless declares no `stored_as"):
            TopicRegistry([Nameless])


class TestNamingEvents:
    def test_an_event_is_named_after_its_aggregate_s_declared_name(self) -> None:
        topics = TopicRegistry([Parcel])
        assert topics.topic_of(Parcel.Sent) == "shipping.parcels:Parcel.Sent"
        assert topics.topic_of(Parcel) == "shipping.parcels:Parcel"

    def test_the_bases_eventsourcing_gives_every_aggregate_are_not_events_of_it(self) -> None:
        assert set(events_of(Parcel)) == {"Registered", "Sent"}
        assert set(events_of(Crate)) == {"Loaded"}

    def test_two_aggregates_under_one_name_are_refused(self) -> None:
        class Impostor(Aggregate):
            stored_as = StoredAs("shipping.parcels:Parcel")

            @event("Registered")
            def __init__(self) -> None:
                pass

        with pytest.raises(ValueError, match=re.escape("'shipping.parcels:Parcel' names both")):
            TopicRegistry([Parcel, Impostor])

    def test_an_old_name_an_event_still_has_is_refused(self) -> None:
        class Confused(Aggregate):
            stored_as = StoredAs("shipping.confused:Confused", renamed={"Sent": "Registered"})

            @event("Registered")
            def __init__(self) -> None:
                pass

            @event("Sent")
            def send(self) -> None:
                pass

        name = "'shipping.confused:Confused.Sent' names both"
        with pytest.raises(ValueError, match=re.escape(name)):
            TopicRegistry([Confused])

    def test_a_rename_to_an_event_that_does_not_exist_is_refused(self) -> None:
        class Typo(Aggregate):
            stored_as = StoredAs("shipping.typos:Typo", renamed={"Old": "Nwe"})

            @event("New")
            def __init__(self) -> None:
                pass

        with pytest.raises(ValueError, match="renames 'Old' to 'Nwe': no such event"):
            TopicRegistry([Typo])


class TestReadingNames:
    def test_an_unknown_name_fails_clearly(self) -> None:
        with pytest.raises(UnknownTopic, match=re.escape("'shipping.boxes:Box.Packed'")) as raised:
            TOPICS.class_of("shipping.boxes:Box.Packed")
        assert "declare its aggregate in the catalog" in str(raised.value)

    def test_a_document_has_no_event_class(self) -> None:
        with pytest.raises(UnknownTopic, match="stored as a document"):
            TOPICS.class_of(RECEIVED_TOPIC)
        assert RECEIVED_TOPIC in TOPICS.readable()

    def test_an_old_name_reads_as_the_renamed_class(self) -> None:
        topics = TopicRegistry([Parcel])
        assert topics.class_of("shipping.parcels:Parcel.Dispatched") is Parcel.Sent
        assert topics.topic_of(Parcel.Sent) == "shipping.parcels:Parcel.Sent"
        assert "shipping.parcels:Parcel.Dispatched" in topics.readable()

    def test_a_class_s_module_is_no_part_of_its_name(self) -> None:
        topics = TopicRegistry([Parcel])
        assert Parcel.__module__ == __name__
        assert topics.class_of("shipping.parcels:Parcel.Registered") is Parcel.Registered
