"""Attribution isolates a signal its customer refuses; an outage fails the page instead."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

import msgspec
import pytest

from application.customer.signals import AttributeSignals
from domain.customer.identities import IdentityNormalizer
from domain.shared.errors import DomainError
from domain.signals.aggregate import SignalReport
from domain.signals.document import SignalReader
from domain.signals.intake import intake_id_for

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from uuid import UUID

    from application.customer.signals import IngestSignals

AT = datetime(2026, 11, 28, 9, tzinfo=UTC)


@dataclass(frozen=True)
class Logged:
    stream_id: UUID
    payload: bytes
    topic: str = "domain.signals.intake:Signal.Received"
    recorded_at: datetime = AT
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Ingest:
    """Records batches; refuses any holding a signal in `poison`, or fails with `outage`."""

    poison: set[str] = field(default_factory=set)
    outage: Exception | None = None
    recorded: list[str] = field(default_factory=list)

    async def __call__(self, reports: Sequence[SignalReport]) -> list[object]:
        if self.outage is not None:
            raise self.outage
        if any(r.event_id in self.poison for r in reports):
            raise DomainError("a rule of the customer refused it")
        self.recorded.extend(r.event_id for r in reports)
        return []


@dataclass
class Intake:
    refusals: list[tuple[UUID, str]] = field(default_factory=list)

    async def refuse(self, intake_id: UUID, reason: str, at: datetime) -> None:
        self.refusals.append((intake_id, reason))

    async def refused(self, intake_ids: Sequence[UUID]) -> set[UUID]:
        return {i for i, _ in self.refusals if i in intake_ids}


class Clock:
    def now(self) -> datetime:
        return AT


def attribution(ingest: Ingest, intake: Intake) -> AttributeSignals:
    reader = SignalReader(IdentityNormalizer())
    return AttributeSignals(cast("IngestSignals", ingest), reader, cast("Any", intake), Clock())


def page(*ids: str) -> list[Logged]:
    return [Logged(intake_id_for(i), received(i)) for i in ids]


def received(event_id: str) -> bytes:
    return msgspec.json.encode(
        {
            "id": event_id,
            "type": "page.viewed",
            "occurred_at": AT,
            "identities": [{"type": "email", "value": "ana@example.org"}],
        }
    )


class TestAttributeSignals:
    async def test_refused_signals_are_set_aside_and_the_others_recorded_in_log_order(
        self,
    ) -> None:
        ingest, intake = Ingest(poison={"c", "f"}), Intake()
        await attribution(ingest, intake).apply(None, page(*"abcdefg"))
        assert ingest.recorded == list("abdeg")
        assert [i for i, _ in intake.refusals] == [intake_id_for("c"), intake_id_for("f")]
        assert intake.refusals[0][1] == "DomainError: a rule of the customer refused it"

    async def test_a_page_applied_again_keeps_its_refusals_and_records_nothing_twice(
        self,
    ) -> None:
        ingest, intake = Ingest(poison={"b"}), Intake()
        await attribution(ingest, intake).apply(None, page(*"abc"))
        ingest.poison.clear()  # the customer would take it now
        await attribution(ingest, intake).apply(None, page(*"abc"))
        assert ingest.recorded == ["a", "c", "a", "c"]  # IngestSignals skips these as recorded
        assert len(intake.refusals) == 1

    async def test_an_outage_fails_the_page_and_refuses_nothing(self) -> None:
        ingest, intake = Ingest(outage=ConnectionError("PostgreSQL is gone")), Intake()
        with pytest.raises(ConnectionError):
            await attribution(ingest, intake).apply(None, page(*"abc"))
        assert intake.refusals == []


class TestAttributionInParts:
    async def test_a_page_is_recorded_part_after_part_in_log_order(self) -> None:
        ingest, intake = Ingest(), Intake()
        batches: list[list[str]] = []
        recording = ingest.__call__

        async def record(reports: Sequence[SignalReport]) -> list[object]:
            batches.append([r.event_id for r in reports])
            return await recording(reports)

        attributing = attribution(cast("Ingest", record), intake)
        attributing.part_size = 3
        await attributing.apply(None, page(*"abcdefgh"))
        assert batches == [list("abc"), list("def"), list("gh")]
        assert ingest.recorded == list("abcdefgh")

    async def test_a_refusal_in_one_part_holds_up_none_of_the_others(self) -> None:
        ingest, intake = Ingest(poison={"b", "g"}), Intake()
        attributing = attribution(ingest, intake)
        attributing.part_size = 3
        await attributing.apply(None, page(*"abcdefgh"))
        assert ingest.recorded == list("acdefh")
        assert [i for i, _ in intake.refusals] == [intake_id_for("b"), intake_id_for("g")]

    async def test_a_part_that_fails_fails_the_page_and_the_parts_after_it_are_not_recorded(
        self,
    ) -> None:
        ingest, intake = Ingest(), Intake()
        calls = 0
        recording = ingest.__call__

        async def record(reports: Sequence[SignalReport]) -> list[object]:
            nonlocal calls
            calls += 1
            if calls == 2:
                raise ConnectionError("PostgreSQL is gone")
            return await recording(reports)

        attributing = attribution(cast("Ingest", record), intake)
        attributing.part_size = 3
        with pytest.raises(ConnectionError):
            await attributing.apply(None, page(*"abcdefgh"))
        assert ingest.recorded == list("abc")
        assert intake.refusals == []
