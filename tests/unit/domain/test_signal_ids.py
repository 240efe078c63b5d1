from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from uuid import UUID, uuid4, uuid5

import pytest
from eventsourcing.utils import get_topic

from domain.customer.identities import Identity, IdentityClaim, Verification
from domain.signals.aggregate import Signal, SignalReport, signal_id_for

SIGNALS = UUID("6f1c8d52-4a4e-4bb8-9b8e-3f0a4f6f2c11")
AT = datetime(2026, 11, 27, 9, tzinfo=UTC)
claim = IdentityClaim(Identity("email", "ana@example.org"), Verification.UNVERIFIED)


class TestSignalIds:
    @pytest.mark.parametrize("event_id", ["e-1", "dc023cbb-10000", "", "é" * 300, "a\u0000b"])
    def test_a_signal_id_is_the_uuid5_of_the_producer_event_id(self, event_id: str) -> None:
        expected = uuid5(SIGNALS, event_id)
        found = signal_id_for(event_id)
        assert found == expected
        assert (str(found), hash(found), found.version, found.variant) == (
            str(expected),
            hash(expected),
            5,
            expected.variant,
        )
        assert found.is_safe == expected.is_safe

    def test_the_same_event_id_always_names_the_same_signal(self) -> None:
        assert signal_id_for("e-1") == signal_id_for("e-1") != signal_id_for("e-2")


class TestRecordedSignal:
    def test_a_recorded_signal_is_the_event_its_class_makes(self) -> None:
        report = SignalReport(
            event_id="e-1",
            type="page.viewed",
            occurred_at=AT,
            identities=(claim,),
            properties={"page": "/"},
            source="web",
        )
        customer_id = uuid4()
        recorded = Signal.recorded(report, customer_id, AT)
        expected = Signal.Recorded(  # type: ignore[call-arg]
            originator_id=report.signal_id,
            originator_version=1,
            timestamp=AT,
            originator_topic=get_topic(Signal),
            customer_id=customer_id,
            event_id="e-1",
            signal_type="page.viewed",
            occurred_at=AT,
            properties={"page": "/"},
            source="web",
        )
        assert type(recorded) is Signal.Recorded
        assert recorded == expected
        assert recorded.subject_id == customer_id
        assert recorded.mutate(None).customer_id == customer_id
        with pytest.raises(dataclasses.FrozenInstanceError):
            recorded.event_id = "e-2"  # type: ignore[misc]
