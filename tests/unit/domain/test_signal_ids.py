from __future__ import annotations

from uuid import UUID, uuid5

import pytest

from domain.signals.aggregate import signal_id_for

SIGNALS = UUID("6f1c8d52-4a4e-4bb8-9b8e-3f0a4f6f2c11")


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
