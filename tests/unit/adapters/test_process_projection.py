"""A process runs as a projection: it reads its classes' topics, typed, upcast, on its ports."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
import pytest

from adapters.postgres.codec import EventCodec
from adapters.postgres.event_store import RecordedEvent
from adapters.postgres.processes import DecodedPage, ProcessProjection
from domain.shared.topics import TopicRegistry
from tests.unit.adapters.test_event_codec import ParcelNow, stored_then

if TYPE_CHECKING:
    from collections.abc import Sequence

CODEC = EventCodec(TopicRegistry([ParcelNow]))


class Registrations:
    """A process that keeps what it is handed, and the ports it is handed them with."""

    name = "registrations"
    handles: tuple[type[Any], ...] = (ParcelNow.Registered,)
    follows = ("parcels",)
    page_size: int | None = 20

    def __init__(self) -> None:
        self.handled: list[tuple[Any, object]] = []

    async def handle(self, events: Sequence[Any], ports: object) -> None:
        self.handled.extend((event, ports) for event in events)


def as_logged() -> list[RecordedEvent]:
    return [
        RecordedEvent(
            n,
            e.stream_id,
            e.version,
            e.topic,
            e.occurred_at,
            payload=e.payload,
            class_version=e.class_version,
        )
        for n, e in enumerate(stored_then())
    ]


class TestProcessProjection:
    def test_it_reads_the_stored_names_of_the_classes_it_handles_under_the_process_name(
        self,
    ) -> None:
        projection = ProcessProjection(Registrations(), lambda conn: conn, CODEC)
        assert projection.name == "registrations"
        assert projection.topics == {"shipping.parcels:Parcel.Registered"}
        assert (projection.follows, projection.page_size) == (("parcels",), 20)

    def test_it_owns_no_tables_so_it_is_never_rebuilt(self) -> None:
        assert ProcessProjection(Registrations(), lambda conn: conn, CODEC).tables == ()

    async def test_an_event_stored_at_an_old_class_version_reaches_the_process_upcast(
        self,
    ) -> None:
        process = Registrations()
        registered, _ = as_logged()
        await ProcessProjection(process, lambda conn: ("ports on", conn), CODEC).apply(
            "conn", [registered]
        )
        ((event, ports),) = process.handled
        assert isinstance(event, ParcelNow.Registered)
        assert (event.grams, event.carrier) == (300, "unknown")
        assert (event.originator_id, event.originator_version) == (registered.stream_id, 1)
        assert ports == ("ports on", "conn")


class TestDecodedPage:
    def page(self) -> DecodedPage:
        registered, sent = as_logged()
        unreadable = RecordedEvent(
            sent.position,
            sent.stream_id,
            sent.version,
            sent.topic,
            sent.recorded_at,
            payload=b"not json",
            class_version=sent.class_version,
        )
        return DecodedPage([registered, unreadable], CODEC)

    def test_a_process_that_reads_some_classes_decodes_only_those(self) -> None:
        (registered,) = self.page().of(ParcelNow.Registered)
        assert isinstance(registered, ParcelNow.Registered)

    def test_every_event_is_decoded_when_it_is_read(self) -> None:
        page = self.page()
        assert len(page) == 2
        assert isinstance(page[0], ParcelNow.Registered)
        with pytest.raises(msgspec.DecodeError):
            page[1]
