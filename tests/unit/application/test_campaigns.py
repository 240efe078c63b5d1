"""Campaign definitions through the use cases: created, edited in versions, taken through their
life, and read back as listed, against the in-memory adapters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters.inmemory.campaigns import InMemoryCampaigns, InMemoryJourneyReferences
from adapters.inmemory.storage import InMemoryStorage
from adapters.inmemory.unit_of_work import InMemoryUnitsOfWork
from adapters.system.clock import ManualClock
from application.campaigns.change_status import ChangeCampaignStatus, StatusChange
from application.campaigns.define_campaign import (
    CampaignDraft,
    CampaignExists,
    CreateCampaign,
    EditCampaign,
)
from application.queries.campaigns import CampaignQueries
from domain.campaign.aggregate import (
    CampaignStatus,
    CannotChange,
    Migration,
    StepMove,
    campaign_id,
)
from domain.campaign.journey_reader import JourneyInvalid
from domain.policy.vocabulary import Channel
from domain.segments.aggregate import Segment, segment_id
from domain.segments.conditions import decode_condition
from domain.shared.errors import InvalidValue, NotFound
from domain.templates.aggregate import Template, Variant
from ports.campaigns import CampaignVersion, InvalidCursor
from tests.unit.domain.campaign.journeys import SEGMENTS, TEMPLATES, example, journey, send

T0 = datetime(2026, 12, 5, 9, tzinfo=UTC)
KEY = "order-follow-up"


def follow_up() -> CampaignDraft:
    return CampaignDraft("Order follow-up", example())


def longer_wait() -> CampaignDraft:
    document = example()
    document["steps"]["a-day-later"]["for"] = "2d"
    return CampaignDraft("Order follow-up", document)


class Campaigns:
    """The use cases on one in-memory store holding the example's templates and segments."""

    def __init__(self) -> None:
        self.clock = ManualClock(T0)
        self.storage = InMemoryStorage()
        for key in TEMPLATES:
            template = Template.create(key, T0)
            template.publish((Variant(Channel.SMS, "en", body="Hi"),), "en", "", "ana", T0)
            self.storage.events.save(template)
        vip = decode_condition({"type": "attribute", "name": "tier", "op": "eq", "value": "vip"})
        for key in SEGMENTS:
            self.storage.events.save(Segment.define(key, key, "", vip, "ana", T0))
        uows = InMemoryUnitsOfWork(self.storage)
        references = InMemoryJourneyReferences(self.storage)
        self.create = CreateCampaign(uows, self.clock, references)
        self.edit = EditCampaign(uows, self.clock, references)
        status = ChangeCampaignStatus(uows, self.clock)
        self.activate = lambda ref, by: status(ref, StatusChange.ACTIVATE, by)
        self.pause = lambda ref, by, reason=None: status(ref, StatusChange.PAUSE, by, reason)
        self.resume = lambda ref, by: status(ref, StatusChange.RESUME, by)
        self.archive = lambda ref, by, reason: status(ref, StatusChange.ARCHIVE, by, reason)
        self.queries = CampaignQueries(InMemoryCampaigns(self.storage))

    def later(self) -> datetime:
        self.clock.advance(timedelta(hours=1))
        return self.clock.now()

    def recorded(self, key: str = KEY) -> list[str]:
        return [e.type for e in self.storage.events.stream(campaign_id(key))]

    async def live(self, key: str = KEY) -> None:
        await self.create(key, follow_up(), "ana")
        await self.activate(key, "ana")


def refused(error: JourneyInvalid) -> list[tuple[str, str]]:
    return [(fault.path, fault.reason) for fault in error.faults]


class TestCreateCampaign:
    async def test_a_new_campaign_is_a_draft_at_version_one_written_by_its_author(self) -> None:
        campaigns = Campaigns()
        written = await campaigns.create(KEY, follow_up(), "ana")
        assert (written.campaign_id, written.created, written.changed) == (
            campaign_id(KEY),
            True,
            True,
        )
        found = await campaigns.queries.get(KEY)
        assert (found.summary.status, found.summary.version) == (CampaignStatus.DRAFT, 1)
        assert found.journey == example()
        assert found.versions == (CampaignVersion(1, T0, "ana"),)

    async def test_the_same_draft_again_records_nothing(self) -> None:
        campaigns = Campaigns()
        await campaigns.create(KEY, follow_up(), "ana")
        again = await campaigns.create(KEY, follow_up(), "bea")
        assert (again.created, again.changed) == (False, False)
        assert campaigns.recorded() == ["Created"]

    async def test_another_draft_under_a_taken_key_is_refused(self) -> None:
        campaigns = Campaigns()
        await campaigns.create(KEY, follow_up(), "ana")
        with pytest.raises(CampaignExists):
            await campaigns.create(KEY, longer_wait(), "bea")
        assert campaigns.recorded() == ["Created"]

    async def test_an_unknown_template_is_refused_naming_its_path_and_nothing_is_stored(
        self,
    ) -> None:
        campaigns = Campaigns()
        document = journey({"hello": send("no-such-template")})
        with pytest.raises(JourneyInvalid) as refusal:
            await campaigns.create(KEY, CampaignDraft("Hello", document), "ana")
        ((path, reason),) = refused(refusal.value)
        assert path == "$.journey.steps.hello.template"
        assert "no-such-template" in reason
        assert campaigns.recorded() == []

    async def test_every_fault_of_a_journey_is_named_at_once(self) -> None:
        campaigns = Campaigns()
        document = journey(
            {
                "hello": send("no-such-template"),
                "lost": {"type": "exit"},
                "vips": {
                    "type": "branch",
                    "cases": [{"in_segment": "no-such-segment", "next": "hello"}],
                    "else": "hello",
                },
            }
        )
        with pytest.raises(JourneyInvalid) as refusal:
            await campaigns.create(KEY, CampaignDraft("Hello", document), "ana")
        paths = {path for path, _ in refused(refusal.value)}
        assert {
            "$.journey.steps.hello.template",
            "$.journey.steps.vips.cases[0].in_segment",
            "$.journey.steps.lost",
        } <= paths

    async def test_a_deleted_segment_cannot_be_named(self) -> None:
        campaigns = Campaigns()
        stream = segment_id("vip")
        segment = campaigns.storage.events.load([stream])[stream]
        assert isinstance(segment, Segment)
        segment.delete("ana", T0)
        campaigns.storage.events.save(segment)
        document = journey(
            {
                "vips": {
                    "type": "branch",
                    "cases": [{"in_segment": "vip", "next": "hello"}],
                    "else": "hello",
                },
                "hello": send(),
            }
        )
        with pytest.raises(JourneyInvalid) as refusal:
            await campaigns.create(KEY, CampaignDraft("VIPs", document), "ana")
        assert [p for p, _ in refused(refusal.value)] == [
            "$.journey.steps.vips.cases[0].in_segment"
        ]

    async def test_a_key_that_is_no_key_is_refused(self) -> None:
        with pytest.raises(InvalidValue):
            await Campaigns().create("Order Follow-up", follow_up(), "ana")


class TestEditCampaign:
    async def test_a_draft_changes_in_place_and_keeps_version_one(self) -> None:
        campaigns = Campaigns()
        await campaigns.create(KEY, follow_up(), "ana")
        edited_at = campaigns.later()
        written = await campaigns.edit(KEY, longer_wait(), "bea")
        assert written.changed
        found = await campaigns.queries.get(KEY)
        assert found.summary.version == 1
        assert found.journey["steps"]["a-day-later"]["for"] == "2d"
        assert found.versions == (CampaignVersion(1, edited_at, "bea"),)

    async def test_a_live_campaign_publishes_a_new_version_with_its_migration(self) -> None:
        campaigns = Campaigns()
        await campaigns.live()
        published_at = campaigns.later()
        move = Migration(moves=(StepMove(from_="reply", to="sms"),))
        await campaigns.edit(KEY, longer_wait(), "bea", move)
        found = await campaigns.queries.get(KEY)
        assert (found.summary.version, found.summary.status) == (2, CampaignStatus.ACTIVE)
        assert found.versions == (
            CampaignVersion(1, T0, "ana"),
            CampaignVersion(2, published_at, "bea"),
        )
        assert campaigns.recorded() == ["Created", "Activated", "VersionPublished"]

    async def test_the_same_edit_again_records_nothing_even_with_its_migration(self) -> None:
        campaigns = Campaigns()
        await campaigns.live()
        move = Migration(moves=(StepMove(from_="reply", to="sms"),))
        await campaigns.edit(KEY, longer_wait(), "bea", move)
        again = await campaigns.edit(KEY, longer_wait(), "bea", move)
        assert not again.changed
        unmoved = await campaigns.edit(KEY, longer_wait(), "bea", Migration())
        assert not unmoved.changed
        assert (await campaigns.queries.get(KEY)).summary.version == 2

    async def test_a_move_to_a_step_the_new_version_lacks_is_refused_naming_its_path(
        self,
    ) -> None:
        campaigns = Campaigns()
        await campaigns.live()
        move = Migration(moves=(StepMove(from_="reply", to="nowhere"),))
        with pytest.raises(JourneyInvalid) as refusal:
            await campaigns.edit(KEY, longer_wait(), "bea", move)
        assert refusal.value.path == "$.migration.moves[0].to"
        assert (await campaigns.queries.get(KEY)).summary.version == 1

    async def test_a_step_only_the_migration_moves_customers_to_is_reachable(self) -> None:
        campaigns = Campaigns()
        await campaigns.live()
        document = example()
        document["steps"]["catch-up"] = send("welcome", next="done")
        draft = CampaignDraft("Order follow-up", document)
        with pytest.raises(JourneyInvalid) as unmoved:
            await campaigns.edit(KEY, draft, "bea")
        assert refused(unmoved.value)[0][0] == "$.journey.steps.catch-up"
        move = {"moves": [{"from": "reply", "to": "catch-up"}]}
        written = await campaigns.edit(KEY, draft, "bea", move)
        assert written.changed
        assert "catch-up" in (await campaigns.queries.get(KEY)).journey["steps"]

    async def test_every_fault_of_every_move_is_named_at_once(self) -> None:
        campaigns = Campaigns()
        await campaigns.live()
        move = Migration(
            moves=(
                StepMove(from_="nothing", to="nowhere"),
                StepMove(from_="reply", to="sms"),
                StepMove(from_="never", to="sms", from_version=1),
            )
        )
        with pytest.raises(JourneyInvalid) as refusal:
            await campaigns.edit(KEY, longer_wait(), "bea", move)
        assert [path for path, _ in refused(refusal.value)] == [
            "$.migration.moves[0].to",
            "$.migration.moves[0].from",
            "$.migration.moves[2].from",
        ]

    async def test_a_migration_document_is_read_naming_every_fault(self) -> None:
        campaigns = Campaigns()
        await campaigns.live()
        document = {
            "moves": [
                {"from": "reply", "to": 3, "colour": "red"},
                {"from": "reply", "to": "sms", "from_version": 0},
            ]
        }
        with pytest.raises(JourneyInvalid) as refusal:
            await campaigns.edit(KEY, longer_wait(), "bea", document)
        assert [path for path, _ in refused(refusal.value)] == [
            "$.migration.moves[0].colour",
            "$.migration.moves[0].to",
            "$.migration.moves[1].from_version",
        ]
        assert (await campaigns.queries.get(KEY)).summary.version == 1

    async def test_a_move_with_a_faulty_field_still_has_its_other_fields_checked(self) -> None:
        campaigns = Campaigns()
        await campaigns.live()
        document = {
            "moves": [
                {"from": "nope", "to": "nada", "from_version": 7},
                {"from": "w", "to": "e", "from_version": 0},
                {"from": "nope", "to": "sms"},
            ]
        }
        with pytest.raises(JourneyInvalid) as refusal:
            await campaigns.edit(KEY, longer_wait(), "bea", document)
        assert refused(refusal.value) == [
            ("$.migration.moves[1].from_version", "Expected `int` >= 1"),
            ("$.migration.moves[0].to", "'nada' is not a step of the new version"),
            ("$.migration.moves[0].from_version", "version 7 does not exist (versions: 1)"),
            ("$.migration.moves[1].to", "'e' is not a step of the new version"),
            ("$.migration.moves[2].from", "'nope' is not a step of any version"),
        ]
        assert (await campaigns.queries.get(KEY)).summary.version == 1

    async def test_the_faults_of_the_journey_and_of_its_migration_come_together(self) -> None:
        campaigns = Campaigns()
        await campaigns.live()
        document = example()
        document["steps"]["sms"]["template"] = "no-such-template"
        draft = CampaignDraft("Order follow-up", document)
        bad_document = {"moves": [{"from": "reply"}]}
        with pytest.raises(JourneyInvalid) as refusal:
            await campaigns.edit(KEY, draft, "bea", bad_document)
        assert [path for path, _ in refused(refusal.value)] == [
            "$.journey.steps.sms.template",
            "$.migration.moves[0].to",
        ]
        misdirected = Migration(moves=(StepMove(from_="nothing", to="sms"),))
        with pytest.raises(JourneyInvalid) as refusal:
            await campaigns.edit(KEY, draft, "bea", misdirected)
        assert [path for path, _ in refused(refusal.value)] == [
            "$.journey.steps.sms.template",
            "$.migration.moves[0].from",
        ]

    async def test_a_campaign_is_named_by_its_id_as_well_as_its_key(self) -> None:
        campaigns = Campaigns()
        await campaigns.create(KEY, follow_up(), "ana")
        written = await campaigns.edit(str(campaign_id(KEY)), longer_wait(), "bea")
        assert (written.key, written.changed) == (KEY, True)
        assert (await campaigns.queries.get(str(campaign_id(KEY)))).summary.key == KEY

    async def test_an_unknown_campaign_is_not_found(self) -> None:
        campaigns = Campaigns()
        for ref in ("no-such-campaign", str(campaign_id("no-such-campaign")), "Not A Key"):
            with pytest.raises(NotFound):
                await campaigns.edit(ref, follow_up(), "ana")

    async def test_an_archived_campaign_cannot_be_edited(self) -> None:
        campaigns = Campaigns()
        await campaigns.live()
        await campaigns.archive(KEY, "ana", "season over")
        with pytest.raises(CannotChange):
            await campaigns.edit(KEY, longer_wait(), "bea")


class TestCampaignStatus:
    async def test_a_campaign_goes_live_pauses_resumes_and_is_archived_by_its_authors(
        self,
    ) -> None:
        campaigns = Campaigns()
        await campaigns.create(KEY, follow_up(), "ana")
        statuses = []
        for change, by in (
            (campaigns.activate, "ana"),
            (campaigns.pause, "bea"),
            (campaigns.resume, "cy"),
        ):
            assert (await change(KEY, by)).changed
            statuses.append((await campaigns.queries.get(KEY)).summary.status)
        assert (await campaigns.archive(KEY, "dee", "season over")).changed
        assert statuses == [CampaignStatus.ACTIVE, CampaignStatus.PAUSED, CampaignStatus.ACTIVE]
        assert (await campaigns.queries.get(KEY)).summary.status is CampaignStatus.ARCHIVED
        stream = campaigns.storage.events.stream(campaign_id(KEY))
        events: list[Any] = [recorded.event for recorded in stream]
        assert [e.by for e in events] == ["ana", "ana", "bea", "cy", "dee"]
        assert events[-1].reason == "season over"

    async def test_each_change_again_records_nothing(self) -> None:
        campaigns = Campaigns()
        await campaigns.live()
        assert not (await campaigns.activate(KEY, "ana")).changed
        await campaigns.pause(KEY, "ana")
        assert not (await campaigns.pause(KEY, "ana")).changed
        await campaigns.archive(KEY, "ana", "done")
        assert not (await campaigns.archive(KEY, "ana", "done")).changed
        assert campaigns.recorded() == ["Created", "Activated", "Paused", "Archived"]

    async def test_a_paused_campaign_is_resumed_not_activated(self) -> None:
        campaigns = Campaigns()
        await campaigns.live()
        await campaigns.pause(KEY, "ana")
        with pytest.raises(CannotChange) as refusal:
            await campaigns.activate(KEY, "ana")
        assert refusal.value.status is CampaignStatus.PAUSED

    async def test_a_draft_cannot_be_paused(self) -> None:
        campaigns = Campaigns()
        await campaigns.create(KEY, follow_up(), "ana")
        with pytest.raises(CannotChange):
            await campaigns.pause(KEY, "ana")


class TestCampaignQueries:
    async def test_campaigns_are_listed_by_key_a_page_at_a_time(self) -> None:
        campaigns = Campaigns()
        for key in ("c", "a", "b"):
            await campaigns.create(key, follow_up(), "ana")
        first = await campaigns.queries.list(limit=2)
        assert [s.key for s in first.items] == ["a", "b"]
        assert first.next_cursor is not None
        rest = await campaigns.queries.list(after=first.next_cursor, limit=2)
        assert ([s.key for s in rest.items], rest.next_cursor) == (["c"], None)

    async def test_campaigns_are_listed_by_status(self) -> None:
        campaigns = Campaigns()
        await campaigns.live("a")
        await campaigns.create("b", follow_up(), "ana")
        active = await campaigns.queries.list(status=CampaignStatus.ACTIVE)
        drafts = await campaigns.queries.list(status=CampaignStatus.DRAFT)
        assert ([s.key for s in active.items], [s.key for s in drafts.items]) == (["a"], ["b"])

    async def test_a_cursor_not_handed_out_is_refused(self) -> None:
        campaigns = Campaigns()
        for cursor in ("not base64!", "AA", "QUJD"):  # "\\x00", "ABC": no key
            with pytest.raises(InvalidCursor):
                await campaigns.queries.list(after=cursor)

    async def test_an_unknown_campaign_is_not_found(self) -> None:
        with pytest.raises(NotFound):
            await Campaigns().queries.get(KEY)
