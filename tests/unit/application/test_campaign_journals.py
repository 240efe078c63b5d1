"""A campaign's history and an enrollment's journal, read from their streams; writes answered
once per idempotency key."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from adapters.inmemory.campaigns import InMemoryCampaigns
from adapters.inmemory.history import InMemoryHistory
from adapters.inmemory.sent_requests import InMemorySentRequests
from adapters.inmemory.write_answers import InMemoryWriteAnswers
from application.idempotent_writes import IdempotentWrites
from application.messages.request_message import IdempotencyKeyReused
from application.queries.campaign_history import CampaignHistoryQueries
from application.queries.enrollment_journal import EnrollmentJournals
from domain.campaign.aggregate import Campaign
from domain.shared.errors import NotFound
from tests.unit.application.test_campaign_enrollments import ANA, DAY, WAIT_THEN_SEND, Journeys
from tests.unit.domain.campaign.journeys import journey, read, send

if TYPE_CHECKING:
    from uuid import UUID


class Journals:
    """Journeys in memory, with the journal and history queries over the same log."""

    def __init__(self) -> None:
        self.world = Journeys()
        storage = self.world.chorus.storage
        campaigns = InMemoryCampaigns(storage)
        history = InMemoryHistory(storage)
        self.journals = EnrollmentJournals(campaigns, history, InMemorySentRequests(storage))
        self.history = CampaignHistoryQueries(campaigns, history)

    async def enrolled(self) -> tuple[UUID, UUID]:
        await self.world.templates()
        ana = await self.world.subscriber(ANA)
        campaign = await self.world.campaign("api", journey(WAIT_THEN_SEND))
        enrollment = await self.world.enroll(campaign, ana)
        await self.world.settle()
        return campaign, enrollment


class TestEnrollmentJournal:
    async def test_each_step_has_its_kind_and_reason_and_the_send_its_decision(self) -> None:
        journals = Journals()
        _, enrollment = await journals.enrolled()
        waiting = await journals.journals.get("api", enrollment)
        assert waiting.waiting is not None
        assert (waiting.waiting.step, waiting.waiting.kind) == ("a-day-later", "time")
        await journals.world.later(DAY)

        read_back = await journals.journals.get("api", enrollment)
        events = [(e.event, e.step, e.kind) for e in read_back.steps]
        assert events[:5] == [
            ("entered", None, None),
            ("step_taken", "a-day-later", "wait"),
            ("waiting", "a-day-later", "wait"),
            ("step_taken", "welcome", "send"),
            ("send_requested", "welcome", "send"),
        ]
        taken = [e for e in read_back.steps if e.event == "step_taken"]
        assert all(e.reason for e in taken)
        assert taken[1].came_from == "a-day-later"
        (send,) = [e for e in read_back.steps if e.event == "send_requested"]
        assert send.decision_id is not None
        assert send.message_id is not None
        assert send.details["template"] == "welcome"
        assert read_back.waiting is None or read_back.waiting.kind == "delivery"

    async def test_an_enrollment_of_another_campaign_or_none_is_not_found(self) -> None:
        journals = Journals()
        campaign, enrollment = await journals.enrolled()
        other = await journals.world.campaign("other", journey(WAIT_THEN_SEND))
        with pytest.raises(NotFound):
            await journals.journals.get(str(other), enrollment)
        with pytest.raises(NotFound):
            await journals.journals.get("api", campaign)


class TestCampaignHistory:
    async def test_every_change_is_listed_with_who_made_it_the_status_after_and_why(
        self,
    ) -> None:
        journals = Journals()
        campaign = await journals.world.campaign("api", journey(WAIT_THEN_SEND))
        async with journals.world.chorus.uows() as uow:
            campaigns = uow.repository(Campaign)
            found = (await campaigns.get([campaign]))[campaign]
            now = journals.world.clock.now()
            found.pause("bea", now, "a typo in the offer")
            found.edit("Api", read(journey({"welcome": send()})), "cy", now)
            found.resume("dee", now)
            found.archive("eve", "season over", now)
            campaigns.add(found)

        history = await journals.history.get("api")
        assert [(c.change, c.by, c.status, c.version, c.reason) for c in history.changes] == [
            ("created", "test", "draft", 1, None),
            ("activated", "test", "active", 1, None),
            ("paused", "bea", "paused", 1, "a typo in the offer"),
            ("version_published", "cy", "paused", 2, None),
            ("resumed", "dee", "active", 2, None),
            ("archived", "eve", "archived", 2, "season over"),
        ]
        versions = await journals.history.versions(campaign)
        assert [versions[n].start for n in (1, 2)] == ["a-day-later", "welcome"]


class TestIdempotentWrites:
    async def test_a_retry_is_answered_as_first_without_writing_again(self) -> None:
        writes = IdempotentWrites(InMemoryWriteAnswers())
        calls = []

        async def write() -> tuple[int, bytes]:
            calls.append(1)
            return 201, b'{"n": %d}' % len(calls)

        first = await writes.answer("key-a", "k1", b"asked", write)
        again = await writes.answer("key-a", "k1", b"asked", write)
        assert (first.status_code, first.body, first.repeated) == (201, b'{"n": 1}', False)
        assert (again.status_code, again.body, again.repeated) == (201, b'{"n": 1}', True)
        assert len(calls) == 1

    async def test_the_same_key_with_another_request_is_refused(self) -> None:
        writes = IdempotentWrites(InMemoryWriteAnswers())

        async def write() -> tuple[int, bytes]:
            return 200, b"{}"

        await writes.answer("key-a", "k1", b"asked", write)
        with pytest.raises(IdempotencyKeyReused):
            await writes.answer("key-a", "k1", b"something else", write)

    async def test_keys_are_per_scope_and_a_write_without_a_key_always_runs(self) -> None:
        writes = IdempotentWrites(InMemoryWriteAnswers())
        calls = []

        async def write() -> tuple[int, bytes]:
            calls.append(1)
            return 200, b"{}"

        await writes.answer("key-a", "k1", b"asked", write)
        assert not (await writes.answer("key-b", "k1", b"other", write)).repeated
        await writes.answer("key-a", None, b"asked", write)
        await writes.answer("key-a", None, b"asked", write)
        assert len(calls) == 4

    async def test_a_failed_write_keeps_nothing_so_a_retry_writes(self) -> None:
        writes = IdempotentWrites(InMemoryWriteAnswers())

        async def failing() -> tuple[int, bytes]:
            raise NotFound("no campaign")

        async def write() -> tuple[int, bytes]:
            return 200, b"{}"

        with pytest.raises(NotFound):
            await writes.answer("key-a", "k1", b"asked", failing)
        assert not (await writes.answer("key-a", "k1", b"asked", write)).repeated
