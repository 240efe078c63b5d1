"""The Campaign aggregate: its life from draft to archived, and its versions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import msgspec.structs
import pytest

from adapters.postgres.codec import EventCodec
from domain.campaign.aggregate import (
    Campaign,
    CampaignStatus,
    CannotChange,
    Migration,
    StepMove,
    campaign_id,
)
from domain.campaign.journey import Journey
from domain.campaign.journey_reader import JourneyInvalid
from domain.shared.errors import InvalidValue

from .journeys import example, journey, read, send

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)


def first() -> Journey:
    return read(example())


def second() -> Journey:
    document = example()
    document["steps"]["a-day-later"]["for"] = "2d"
    document["steps"]["nudge"] = send(next="reply")
    document["steps"]["a-day-later"]["next"] = "nudge"
    document["steps"]["nudge"]["next"] = "whatsapp"
    return read(document)


def draft() -> Campaign:
    return Campaign.create("order-follow-up", "Order follow-up", first(), "key-marketer", T0)


def active() -> Campaign:
    campaign = draft()
    campaign.activate("key-marketer", T0)
    return campaign


def events(campaign: Campaign) -> list[str]:
    return [type(e).__name__ for e in campaign.collect_events()]


class TestCreating:
    def test_a_new_campaign_is_a_draft_of_version_1_under_its_keys_id(self) -> None:
        campaign = draft()
        assert campaign.status is CampaignStatus.DRAFT
        assert campaign.number == 1
        assert campaign.id == campaign_id("order-follow-up")
        assert campaign.journey == first()
        assert not campaign.takes_entries

    def test_a_bad_key_is_refused(self) -> None:
        with pytest.raises(InvalidValue):
            Campaign.create("Order Follow-Up", "x", first(), "key-marketer", T0)


class TestEditing:
    def test_editing_a_draft_changes_its_journey_in_place(self) -> None:
        campaign = draft()
        assert campaign.edit("Order follow-up", second(), "key-marketer", T1)
        assert campaign.number == 1
        assert campaign.journey == second()
        assert events(campaign) == ["Created", "DraftEdited"]

    def test_editing_to_the_same_changes_nothing(self) -> None:
        campaign = draft()
        assert not campaign.edit("Order follow-up", first(), "key-marketer", T1)

    def test_editing_an_active_campaign_publishes_a_new_version_keeping_the_old(self) -> None:
        campaign = active()
        assert campaign.edit("Order follow-up", second(), "key-lead", T1)
        assert campaign.number == 2
        assert campaign.journey == second()
        assert campaign.journey_of(1) == first()
        assert campaign.status is CampaignStatus.ACTIVE
        published = campaign.collect_events()[-1]
        assert type(published).__name__ == "VersionPublished"
        assert published.by == "key-lead"  # type: ignore[attr-defined]

    def test_a_new_version_carries_its_migration(self) -> None:
        campaign = active()
        migration = Migration(moves=(StepMove(from_="sms", to="nudge"),))
        campaign.edit("Order follow-up", second(), "key-lead", T1, migration)
        assert campaign.migrations[2].target(1, "sms") == "nudge"
        assert campaign.migrations[2].target(1, "whatsapp") is None

    def test_a_migration_to_a_step_the_new_version_lacks_is_refused_naming_its_path(self) -> None:
        campaign = active()
        migration = Migration(moves=(StepMove(from_="sms", to="nowhere"),))
        with pytest.raises(JourneyInvalid) as caught:
            campaign.edit("Order follow-up", second(), "key-lead", T1, migration)
        assert caught.value.path == "$.migration.moves[0].to"

    def test_a_migration_from_a_step_no_version_had_is_refused(self) -> None:
        campaign = active()
        migration = Migration(moves=(StepMove(from_="nowhere", to="nudge"),))
        with pytest.raises(JourneyInvalid) as caught:
            campaign.edit("Order follow-up", second(), "key-lead", T1, migration)
        assert caught.value.path == "$.migration.moves[0].from"

    def test_a_draft_has_nobody_to_migrate(self) -> None:
        migration = Migration(moves=(StepMove(from_="sms", to="nudge"),))
        with pytest.raises(InvalidValue):
            draft().edit("x", second(), "key-lead", T1, migration)

    def test_an_archived_campaign_cannot_be_edited(self) -> None:
        campaign = active()
        campaign.archive("key-lead", "season over", T1)
        with pytest.raises(CannotChange):
            campaign.edit("x", second(), "key-lead", T1)

    def test_a_version_that_never_was_is_refused(self) -> None:
        with pytest.raises(InvalidValue):
            draft().journey_of(7)


class TestTheLifecycle:
    def test_draft_active_paused_active_archived(self) -> None:
        campaign = draft()
        assert campaign.activate("k", T0)
        assert campaign.takes_entries
        assert campaign.pause("k", T1)
        assert campaign.status is CampaignStatus.PAUSED
        assert not campaign.takes_entries
        assert campaign.resume("k", T1)
        assert campaign.status is CampaignStatus.ACTIVE
        assert campaign.archive("k", "season over", T1)
        assert campaign.status is CampaignStatus.ARCHIVED
        assert events(campaign) == ["Created", "Activated", "Paused", "Resumed", "Archived"]

    def test_every_change_carries_the_acting_key(self) -> None:
        campaign = draft()
        campaign.activate("key-a", T0)
        campaign.pause("key-b", T1)
        assert [e.by for e in campaign.collect_events()] == [  # type: ignore[attr-defined]
            "key-marketer",
            "key-a",
            "key-b",
        ]

    def test_repeating_a_change_changes_nothing(self) -> None:
        campaign = active()
        assert not campaign.activate("k", T1)
        campaign.pause("k", T1)
        assert not campaign.pause("k", T1)
        campaign.archive("k", "done", T1)
        assert not campaign.archive("k", "done", T1)

    def test_an_archived_campaign_cannot_be_activated(self) -> None:
        campaign = draft()
        campaign.archive("k", "never mind", T1)
        with pytest.raises(CannotChange, match="archived: it cannot be activated"):
            campaign.activate("k", T1)

    def test_a_paused_campaign_is_resumed_not_activated(self) -> None:
        campaign = active()
        campaign.pause("k", T1)
        with pytest.raises(CannotChange, match="resume it"):
            campaign.activate("k", T1)

    def test_a_draft_cannot_be_paused_or_resumed(self) -> None:
        with pytest.raises(CannotChange):
            draft().pause("k", T1)
        with pytest.raises(CannotChange):
            draft().resume("k", T1)

    def test_a_paused_campaign_edited_publishes_a_version_and_stays_paused(self) -> None:
        campaign = active()
        campaign.pause("k", T1)
        campaign.edit("Order follow-up", second(), "k", T1)
        assert (campaign.number, campaign.status) == (2, CampaignStatus.PAUSED)


class TestStoring:
    def test_every_event_survives_the_event_codec_journeys_and_all(self) -> None:
        campaign = active()
        campaign.edit(
            "Order follow-up",
            second(),
            "k",
            T1,
            Migration(moves=(StepMove(from_="sms", to="nudge"),)),
        )
        campaign.pause("k", T1, "a typo")
        campaign.archive("k", "done", T1)
        codec = EventCodec()
        for event in campaign.collect_events():
            stored = codec.encode(event)
            read_back = codec.decode(
                stored.stream_id,
                stored.version,
                stored.topic,
                stored.class_version,
                stored.occurred_at,
                stored.payload,
            )
            assert read_back == event

    def test_a_pause_stored_before_pauses_said_why_reads_back_with_no_reason(self) -> None:
        campaign = active()
        campaign.pause("k", T1, "a typo in the offer")
        (paused,) = campaign.collect_events()[-1:]
        codec = EventCodec()
        stored = codec.encode(paused)
        assert stored.class_version == 2
        before = msgspec.json.encode({"by": "k"})  # Paused, version 1
        read_back = codec.decode(
            stored.stream_id, stored.version, stored.topic, 1, stored.occurred_at, before
        )
        assert (read_back.by, read_back.reason) == ("k", None)  # type: ignore[attr-defined]
        assert codec.decode(*msgspec.structs.astuple(stored)) == paused

    def test_a_campaign_is_rebuilt_from_its_events(self) -> None:
        campaign = active()
        campaign.edit("Renamed", second(), "k", T1)
        rebuilt = None
        for event in campaign.collect_events():
            rebuilt = event.mutate(rebuilt)
        assert isinstance(rebuilt, Campaign)
        assert (rebuilt.name, rebuilt.number, rebuilt.versions) == ("Renamed", 2, campaign.versions)


def test_a_journey_document_for_the_tests_is_valid() -> None:
    assert read(journey({"bye": {"type": "exit"}})).start == "bye"
