"""Defining, redefining and deleting segments, against the in-memory event store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from adapters.inmemory.segments import InMemorySegments
from adapters.inmemory.storage import InMemoryStorage
from adapters.inmemory.unit_of_work import InMemoryUnitsOfWork
from adapters.system.clock import ManualClock
from application.segments.define_segment import (
    DefineSegment,
    DeleteSegment,
    SegmentDraft,
    SegmentExists,
)
from domain.segments.aggregate import segment_id
from domain.segments.conditions import AttributeIs, HasIdentity, Op
from domain.shared.errors import InvalidValue, NotFound

T0 = datetime(2026, 12, 5, 9, tzinfo=UTC)
VIP = SegmentDraft("VIPs", "big spenders", AttributeIs(name="tier", op=Op.EQ, value="vip"))
REACHABLE = SegmentDraft("Reachable", "has an email", HasIdentity(identity_type="email"))


class Segments:
    """The use cases of one test, on one storage and one clock."""

    def __init__(self) -> None:
        self.clock = ManualClock(T0)
        self.storage = InMemoryStorage()
        self.read_model = InMemorySegments(self.storage)
        uows = InMemoryUnitsOfWork(self.storage)
        self.define = DefineSegment(uows, self.clock)
        self.delete = DeleteSegment(uows, self.clock)

    def versions(self, key: str) -> int:
        return self.storage.events.version_of(segment_id(key))


class TestDefineSegment:
    async def test_a_new_key_is_defined_at_version_one_and_listed(self) -> None:
        segments = Segments()
        defined = await segments.define("vip", VIP, "ana")
        assert (defined.created, defined.changed, defined.segment.number) == (True, True, 1)
        (summary,) = await segments.read_model.summaries()
        assert (summary.key, summary.name, summary.version, summary.members) == (
            "vip",
            "VIPs",
            1,
            0,
        )
        assert summary.condition == {
            "type": "attribute",
            "name": "tier",
            "op": "eq",
            "value": "vip",
        }

    async def test_the_same_draft_again_records_nothing(self) -> None:
        segments = Segments()
        await segments.define("vip", VIP, "ana")
        again = await segments.define("vip", VIP, "bea")
        assert (again.created, again.changed, again.segment.number) == (False, False, 1)
        assert segments.versions("vip") == 1

    async def test_a_new_definition_under_a_key_is_its_next_version(self) -> None:
        segments = Segments()
        await segments.define("vip", VIP, "ana")
        segments.clock.advance(timedelta(hours=1))
        redefined = await segments.define("vip", REACHABLE, "bea")
        assert (redefined.created, redefined.changed, redefined.segment.number) == (False, True, 2)
        summary = await segments.read_model.summary("vip")
        assert summary is not None
        assert (summary.name, summary.version, summary.updated_at) == (
            "Reachable",
            2,
            T0 + timedelta(hours=1),
        )

    async def test_posting_another_definition_under_a_taken_key_is_refused(self) -> None:
        segments = Segments()
        await segments.define("vip", VIP, "ana")
        with pytest.raises(SegmentExists):
            await segments.define("vip", REACHABLE, "bea", replace=False)
        assert segments.versions("vip") == 1

    async def test_posting_the_definition_in_force_again_is_harmless(self) -> None:
        segments = Segments()
        await segments.define("vip", VIP, "ana")
        again = await segments.define("vip", VIP, "ana", replace=False)
        assert (again.created, again.changed) == (False, False)

    async def test_a_key_that_is_no_key_is_refused_before_anything_is_written(self) -> None:
        segments = Segments()
        with pytest.raises(InvalidValue):
            await segments.define("V.I.P!", VIP, "ana")
        assert segments.storage.events.log == []


class TestDeleteSegment:
    async def test_a_deleted_segment_is_no_longer_listed_but_keeps_its_history(self) -> None:
        segments = Segments()
        await segments.define("vip", VIP, "ana")
        await segments.delete("vip", "bea")
        assert await segments.read_model.summaries() == []
        assert await segments.read_model.summary("vip") is None
        assert segments.versions("vip") == 2

    async def test_deleting_a_segment_twice_or_one_never_defined_is_not_found(self) -> None:
        segments = Segments()
        await segments.define("vip", VIP, "ana")
        await segments.delete("vip", "bea")
        with pytest.raises(NotFound):
            await segments.delete("vip", "bea")
        with pytest.raises(NotFound):
            await segments.delete("lapsed", "bea")

    async def test_a_deleted_key_defined_again_is_created_anew_as_its_next_version(self) -> None:
        segments = Segments()
        await segments.define("vip", VIP, "ana")
        await segments.delete("vip", "bea")
        again = await segments.define("vip", REACHABLE, "ana", replace=False)
        assert (again.created, again.changed, again.segment.number) == (True, True, 2)
        assert [s.key for s in await segments.read_model.summaries()] == ["vip"]
