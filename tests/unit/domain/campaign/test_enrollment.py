"""Enrollments: what a customer's way through a campaign records, and who may enter at all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from adapters.postgres.codec import EventCodec
from domain.campaign.enrollment import (
    Enrollment,
    EnrollmentEnded,
    PastEntry,
    enrollment_id,
    entry_refusal,
)
from domain.campaign.journey import Journey, Policies, ReEntry, Response
from domain.campaign.progress import (
    ArrivedSignal,
    Facts,
    HoldKind,
    Traveller,
    advance,
    begin,
    conversion,
)
from domain.shared.errors import DomainError

from .journeys import example, read

T0 = datetime(2026, 3, 2, 12, tzinfo=UTC)
CAMPAIGN = UUID("00000000-0000-4000-8000-00000000c0de")


def entered(customer: UUID | None = None) -> tuple[Journey, Enrollment, Traveller]:
    document = read(example())
    enrollment = Enrollment.enter(
        CAMPAIGN, 1, customer or uuid4(), 1, "signal order.placed e-1", T0
    )
    who = Traveller(CAMPAIGN, 1, enrollment.customer_id, enrollment.id)
    enrollment.record(begin(document, who, Facts(T0)), T0)
    return document, enrollment, who


def names(enrollment: Enrollment) -> list[str]:
    return [type(e).__name__ for e in enrollment.collect_events()]


class TestRecordingProgress:
    def test_entering_records_the_entry_the_first_step_and_the_wait(self) -> None:
        _, enrollment, _ = entered()
        assert names(enrollment) == ["Entered", "StepTaken", "Waiting"]
        assert enrollment.place.step == "a-day-later"
        assert enrollment.place.hold is not None
        assert enrollment.place.hold.kind is HoldKind.TIME

    def test_its_events_are_about_the_customer(self) -> None:
        customer = uuid4()
        _, enrollment, _ = entered(customer)
        assert enrollment.subject_id == customer
        assert enrollment.id == enrollment_id(CAMPAIGN, customer, 1)

    def test_a_send_is_recorded_with_its_dedup_key_and_counted(self) -> None:
        document, enrollment, who = entered()
        progress = advance(document, who, enrollment.place, Facts(T0 + timedelta(days=1)))
        enrollment.record(progress, T0 + timedelta(days=1))
        sent = [e for e in enrollment.collect_events() if type(e).__name__ == "SendRequested"]
        assert [e.dedup_key for e in sent] == [progress.dispatches[0].dedup_key]  # type: ignore[attr-defined]
        assert enrollment.sends == 1
        assert enrollment.place.hold is not None
        assert enrollment.place.hold.kind is HoldKind.DELIVERY

    def test_each_step_is_recorded_with_its_reason(self) -> None:
        document, enrollment, who = entered()
        day = T0 + timedelta(days=1)
        enrollment.record(advance(document, who, enrollment.place, Facts(day)), day)
        delivered = Facts(day, responses={"whatsapp": frozenset({Response.DELIVERED})})
        enrollment.record(advance(document, who, enrollment.place, delivered), day)
        reasons = [
            (e.step, e.reason)  # type: ignore[attr-defined]
            for e in enrollment.collect_events()
            if type(e).__name__ == "StepTaken"
        ]
        assert reasons == [
            ("a-day-later", "entered the journey"),
            ("whatsapp", "the wait is over"),
            ("reply", "delivered"),
        ]

    def test_the_goal_converts_and_exits(self) -> None:
        document, enrollment, who = entered()
        purchase = ArrivedSignal("purchase", {}, T0 + timedelta(hours=2), "e-9")
        progress = advance(
            document, who, enrollment.place, Facts(T0 + timedelta(hours=2), signal=purchase)
        )
        enrollment.record(progress, T0 + timedelta(hours=2))
        assert enrollment.converted_at == T0 + timedelta(hours=2)
        assert not enrollment.active
        assert enrollment.exit_reason == "goal reached: purchase"

    def test_a_conversion_after_leaving_still_counts_within_the_window_once(self) -> None:
        document, enrollment, _ = entered()
        enrollment.exit("campaign archived: season over", T0 + timedelta(hours=1))
        purchase = ArrivedSignal("purchase", {}, T0 + timedelta(days=3))
        found = conversion(
            document, enrollment.entered_at, Facts(T0 + timedelta(days=3), signal=purchase)
        )
        assert found is not None
        assert enrollment.convert(found, T0 + timedelta(days=3))
        assert not enrollment.convert(found, T0 + timedelta(days=3))

    def test_nothing_more_is_recorded_after_the_exit(self) -> None:
        document, enrollment, who = entered()
        assert enrollment.exit("customer erased", T0)
        assert not enrollment.exit("again", T0)
        with pytest.raises(EnrollmentEnded):
            enrollment.record(begin(document, who, Facts(T0)), T0)

    def test_a_control_group_exit_keeps_the_arm(self) -> None:
        document = read(
            {
                "entry": {"type": "api"},
                "start": "ab",
                "steps": {
                    "ab": {
                        "type": "split",
                        "arms": [{"name": "a", "weight": 0, "next": "bye"}],
                        "control": {"weight": 1},
                    },
                    "bye": {"type": "exit"},
                },
            }
        )
        enrollment = Enrollment.enter(CAMPAIGN, 1, uuid4(), 1, "api", T0)
        who = Traveller(CAMPAIGN, 1, enrollment.customer_id, enrollment.id)
        enrollment.record(begin(document, who, Facts(T0)), T0)
        assert enrollment.arms == {"ab": "control"}
        assert not enrollment.active


class TestMigrating:
    def test_a_migration_moves_it_to_a_step_of_the_new_version(self) -> None:
        _, enrollment, _ = entered()
        enrollment.migrate(2, "sms", "key-lead", T0)
        assert (enrollment.campaign_version, enrollment.place.step, enrollment.place.hold) == (
            2,
            "sms",
            None,
        )

    def test_the_step_it_moved_to_is_taken_on_the_next_advance(self) -> None:
        document, enrollment, _ = entered()
        enrollment.migrate(2, "sms", "key-lead", T0)
        moved = Traveller(CAMPAIGN, 2, enrollment.customer_id, enrollment.id)
        progress = advance(document, moved, enrollment.place, Facts(T0))
        assert [d.step for d in progress.dispatches] == ["sms"]
        assert progress.steps == ("reply",)

    def test_it_never_moves_back_a_version(self) -> None:
        _, enrollment, _ = entered()
        with pytest.raises(DomainError):
            enrollment.migrate(1, "sms", "key-lead", T0)


class TestStoring:
    def test_every_event_survives_the_event_codec(self) -> None:
        document, enrollment, who = entered()
        day = T0 + timedelta(days=1)
        enrollment.record(advance(document, who, enrollment.place, Facts(day)), day)
        enrollment.migrate(2, "sms", "key-lead", day)
        enrollment.exit("archived", day)
        codec = EventCodec()
        for event in enrollment.collect_events():
            stored = codec.encode(event)
            assert (
                codec.decode(
                    stored.stream_id,
                    stored.version,
                    stored.topic,
                    stored.class_version,
                    stored.occurred_at,
                    stored.payload,
                )
                == event
            )

    def test_replaying_its_events_rebuilds_the_same_enrollment(self) -> None:
        document, enrollment, who = entered()
        day = T0 + timedelta(days=1)
        enrollment.record(advance(document, who, enrollment.place, Facts(day)), day)
        enrollment.note_response("welcome", Response.DELIVERED, "delivered", uuid4(), day)
        enrollment.migrate(2, "sms", "key-lead", day)
        enrollment.exit("archived", day)
        rebuilt = None
        for event in enrollment.collect_events():
            rebuilt = event.mutate(rebuilt)
        assert rebuilt is not None
        assert vars(rebuilt) == vars(enrollment)

    def test_each_event_is_the_one_its_class_makes_of_the_same_fields(self) -> None:
        document, enrollment, who = entered()
        day = T0 + timedelta(days=1)
        enrollment.record(advance(document, who, enrollment.place, Facts(day)), day)
        enrollment.note_response("welcome", Response.SUPPRESSED, "not sent", None, day)
        enrollment.exit("archived", day)
        events = enrollment.collect_events()
        assert len(events) >= 6
        for version, event in enumerate(events, start=1):
            assert event.originator_version == version
            assert type(event)(**vars(event)) == event


class TestWhoMayEnter:
    def test_anyone_new_may_enter(self) -> None:
        assert entry_refusal(Policies(), (), 0, T0) is None

    def test_nobody_enters_twice_at_once(self) -> None:
        policies = Policies(re_entry=ReEntry.ALWAYS)
        assert entry_refusal(policies, (PastEntry(T0, None),), 1, T0) == "already in the journey"

    def test_once_means_once(self) -> None:
        past = (PastEntry(T0, T0 + timedelta(days=1)),)
        assert entry_refusal(Policies(), past, 1, T0 + timedelta(days=90)) is not None

    def test_after_a_cool_down_a_customer_may_come_back(self) -> None:
        policies = Policies(re_entry=ReEntry.AFTER_COOL_DOWN, cool_down="30d")
        past = (PastEntry(T0, T0 + timedelta(days=1)),)
        refused = entry_refusal(policies, past, 1, T0 + timedelta(days=30))
        assert refused is not None
        assert refused.startswith("cooling down until")
        assert entry_refusal(policies, past, 1, T0 + timedelta(days=31)) is None

    def test_always_lets_a_customer_back_at_once(self) -> None:
        past = (PastEntry(T0, T0 + timedelta(days=1)),)
        assert (
            entry_refusal(Policies(re_entry=ReEntry.ALWAYS), past, 1, T0 + timedelta(days=1))
            is None
        )

    def test_the_enrollment_cap_holds(self) -> None:
        policies = Policies(enrollment_cap=100)
        assert entry_refusal(policies, (), 99, T0) is None
        assert entry_refusal(policies, (), 100, T0) == "the enrollment cap of 100 is reached"
