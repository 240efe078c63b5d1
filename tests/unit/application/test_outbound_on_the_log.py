"""Outbound events follow the in-memory log onto a bus that keeps what it was sent."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from adapters.inmemory.publisher import RecordingPublisher
from application.processes.outbound_events import OutboundEvents
from ports.bus import PublishFailed
from tests.unit.in_memory_chorus import InMemoryChorus, claim

if TYPE_CHECKING:
    from uuid import UUID

    from eventsourcing.domain import CanMutateAggregate

ANA = claim("email", "ana@example.org")
ANA_PHONE = claim("phone", "+351912345678")


def logged(chorus: InMemoryChorus) -> list[CanMutateAggregate[UUID]]:
    return [r.event for r in chorus.storage.events.log if r.event is not None]


async def a_merge(chorus: InMemoryChorus) -> None:
    await chorus.upsert((ANA,), {"first_name": "Ana"}, {})
    chorus.clock.advance(timedelta(minutes=1))
    await chorus.upsert((ANA_PHONE,), {}, {})
    await chorus.upsert((ANA, ANA_PHONE), {}, {})


class TestOutboundEvents:
    async def test_customer_events_go_out_in_rounds_in_log_order_per_customer(self) -> None:
        chorus = InMemoryChorus()
        await a_merge(chorus)
        bus = RecordingPublisher()
        await OutboundEvents(bus).handle(logged(chorus), None)
        assert [m.subject for m in bus.published] == [
            "chorus.out.customers.registered",  # Ana
            "chorus.out.customers.registered",  # the phone's customer
            "chorus.out.customers.profile_updated",  # Ana, after her registration
            "chorus.out.customers.merged",  # about both, after both
        ]

    async def test_a_page_published_again_after_a_failure_is_stored_once(self) -> None:
        chorus = InMemoryChorus()
        await a_merge(chorus)
        bus = RecordingPublisher()
        bus.failing = 1
        outbound = OutboundEvents(bus)
        with pytest.raises(PublishFailed):
            await outbound.handle(logged(chorus), None)
        await outbound.handle(logged(chorus), None)
        ids = [m.message_id for m in bus.published]
        assert len(ids) == len(set(ids)) == 4
