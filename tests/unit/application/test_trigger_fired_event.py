"""A trigger's firing goes out on `<prefix>.out.triggers.fired` with what a campaign needs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from uuid import uuid4

import msgspec
import msgspec.structs

from adapters.postgres.codec import EventCodec
from application.outbound.payloads import CloudEvent, TriggerFiredV1
from application.processes.outbound_events import OutboundEvents
from domain.triggers.aggregate import Firing, trigger_id
from domain.triggers.definition import SourceEvent, SourceKind
from tests.unit.application.test_outbound_events import RecordingPublisher

if TYPE_CHECKING:
    from uuid import UUID

    from eventsourcing.domain import CanMutateAggregate

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
CODEC = EventCodec()


def logged(event: Firing.Fired) -> CanMutateAggregate[UUID]:
    """The event as it is read back from the log."""
    return CODEC.decode(*msgspec.structs.astuple(CODEC.encode(event)))


class TestTriggerFired:
    async def test_a_signal_firing_names_trigger_customer_source_and_times(self) -> None:
        customer, signal_stream = uuid4(), uuid4()
        source = SourceEvent(
            SourceKind.SIGNAL,
            "order.placed",
            customer,
            signal_stream,
            1,
            T0 - timedelta(seconds=2),
            T0,
            {"total": 120},
            signal_event_id="orders-1234",
        )
        fired = Firing.fired(
            trigger_id("big-orders"), "big-orders", 3, source, T0 + timedelta(milliseconds=12)
        )
        publisher = RecordingPublisher()
        await OutboundEvents(publisher, prefix="acme").handle([logged(fired)], None)
        (message,) = publisher.messages
        assert message.subject == "acme.out.triggers.fired"
        assert message.message_id == f"{fired.originator_id}:1"
        envelope = msgspec.json.decode(message.payload, type=CloudEvent[TriggerFiredV1])
        assert (envelope.type, envelope.subject, envelope.version) == (
            "chorus.trigger.fired",
            str(customer),
            1,
        )
        assert envelope.time == T0 + timedelta(milliseconds=12)
        assert envelope.data == TriggerFiredV1(
            firing_id=fired.originator_id,
            trigger="big-orders",
            trigger_id=trigger_id("big-orders"),
            trigger_version=3,
            customer_id=customer,
            source_kind="signal",
            source_event_id=f"{signal_stream}:1",
            occurred_at=T0 - timedelta(seconds=2),
            recorded_at=T0,
            signal_type="order.placed",
            signal_event_id="orders-1234",
            segment=None,
            exit_reason=None,
        )

    async def test_a_segment_exit_firing_names_the_segment_and_the_reason(self) -> None:
        source = SourceEvent(
            SourceKind.SEGMENT_EXITED, "vip", uuid4(), uuid4(), 4, T0, T0, exit_reason="merged"
        )
        fired = Firing.fired(trigger_id("vip-left"), "vip-left", 1, source, T0)
        publisher = RecordingPublisher()
        await OutboundEvents(publisher).handle([logged(fired)], None)
        envelope = msgspec.json.decode(
            publisher.messages[0].payload, type=CloudEvent[TriggerFiredV1]
        )
        assert (envelope.data.source_kind, envelope.data.segment) == ("segment_exited", "vip")
        assert (envelope.data.exit_reason, envelope.data.signal_type) == ("merged", None)
        assert envelope.data.source_event_id == f"{source.stream_id}:4"
