"""Defining, redefining and deleting triggers; their firings as the read model lists them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from adapters.inmemory.storage import InMemoryStorage
from adapters.inmemory.triggers import InMemoryTriggers
from adapters.inmemory.unit_of_work import InMemoryUnitsOfWork
from adapters.system.clock import ManualClock
from application.triggers.define_trigger import (
    DefineTrigger,
    DeleteTrigger,
    TriggerDraft,
    TriggerExists,
)
from domain.shared.errors import NotFound
from domain.triggers.aggregate import Firing, trigger_id
from domain.triggers.definition import OnSegmentEntered, OnSignal, SourceEvent, SourceKind
from ports.triggers import InvalidFiringCursor

T0 = datetime(2026, 12, 5, 9, tzinfo=UTC)
ORDERS = TriggerDraft("Orders", "every order", OnSignal(signal="order.placed"))
VIPS = TriggerDraft("New VIPs", "", OnSegmentEntered(segment="vip"))
ANA = UUID(int=1)


class Triggers:
    def __init__(self) -> None:
        self.clock = ManualClock(T0)
        self.storage = InMemoryStorage()
        self.read_model = InMemoryTriggers(self.storage)
        uows = InMemoryUnitsOfWork(self.storage)
        self.define = DefineTrigger(uows, self.clock)
        self.delete = DeleteTrigger(uows, self.clock)

    def fire(self, key: str, version: int, source_version: int) -> None:
        source = SourceEvent(
            SourceKind.SIGNAL, "order.placed", ANA, UUID(int=99), source_version, T0, T0
        )
        fired = Firing.fired(trigger_id(key), key, version, source, self.clock.now())
        self.storage.events.append([(fired, ANA)])


class TestDefineTrigger:
    async def test_a_new_key_is_defined_at_version_one(self) -> None:
        triggers = Triggers()
        defined = await triggers.define("orders", ORDERS, "ana")
        assert (defined.created, defined.changed, defined.trigger.number) == (True, True, 1)
        (summary,) = await triggers.read_model.summaries()
        assert (summary.key, summary.version, summary.on) == (
            "orders",
            1,
            {"type": "signal", "signal": "order.placed"},
        )

    async def test_the_same_draft_again_records_nothing(self) -> None:
        triggers = Triggers()
        await triggers.define("orders", ORDERS, "ana")
        again = await triggers.define("orders", ORDERS, "ana")
        assert (again.created, again.changed) == (False, False)
        assert triggers.storage.events.version_of(trigger_id("orders")) == 1

    async def test_a_new_definition_is_the_next_version(self) -> None:
        triggers = Triggers()
        await triggers.define("orders", ORDERS, "ana")
        redefined = await triggers.define("orders", VIPS, "bea")
        assert (redefined.changed, redefined.trigger.number) == (True, 2)

    async def test_posting_another_definition_under_a_taken_key_is_refused(self) -> None:
        triggers = Triggers()
        await triggers.define("orders", ORDERS, "ana")
        with pytest.raises(TriggerExists):
            await triggers.define("orders", VIPS, "bea", replace=False)


class TestDeleteTrigger:
    async def test_a_deleted_trigger_is_listed_no_more_but_still_found_as_deleted(
        self,
    ) -> None:
        triggers = Triggers()
        await triggers.define("orders", ORDERS, "ana")
        await triggers.delete("orders", "bea")
        assert await triggers.read_model.summaries() == []
        summary = await triggers.read_model.summary("orders")
        assert summary is not None
        assert summary.deleted

    async def test_deleting_what_is_not_there_is_not_found(self) -> None:
        triggers = Triggers()
        with pytest.raises(NotFound):
            await triggers.delete("orders", "bea")


class TestFirings:
    async def test_firings_are_listed_newest_first_page_by_page(self) -> None:
        triggers = Triggers()
        await triggers.define("orders", ORDERS, "ana")
        for version in (1, 2, 3):
            triggers.clock.advance(timedelta(minutes=1))
            triggers.fire("orders", 1, version)
        first = await triggers.read_model.firings(trigger_id("orders"), after=None, limit=2)
        assert [f.source_version for f in first.firings] == [3, 2]
        rest = await triggers.read_model.firings(
            trigger_id("orders"), after=first.next_cursor, limit=2
        )
        assert [f.source_version for f in rest.firings] == [1]
        assert rest.next_cursor is None
        assert rest.firings[0].fired_at == T0 + timedelta(minutes=1)

    async def test_a_cursor_not_handed_out_is_refused(self) -> None:
        with pytest.raises(InvalidFiringCursor):
            await Triggers().read_model.firings(trigger_id("orders"), after="x!", limit=2)
