"""One enrollment's journal: every step the customer took in the campaign, and why."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from dishka.integrations.litestar import FromDishka, inject
from litestar import Controller, Request, get
from litestar.params import Parameter

from application.campaigns.teams import SendsAsOtherTeams
from application.queries.campaign_teams import CampaignTeams
from application.queries.enrollment_journal import (
    EnrollmentJournal,
    EnrollmentJournals,
    JournalEntry,
    Waiting,
)
from entrypoints.http.auth import READERS, allow
from entrypoints.http.campaign_teams import sends_as_other_teams, teams_of_key
from ports.enrollments import EnrollmentStatus

__all__ = ["EnrollmentJournalController"]


class JournalEntryOut(msgspec.Struct):
    """One event of the enrollment; `links` lead to a send's message and decision."""

    event: str
    at: datetime
    version: int
    step: str | None
    kind: str | None
    came_from: str | None
    outcome: str | None
    reason: str | None
    until: datetime | None
    signal: str | None
    message_id: UUID | None
    decision_id: UUID | None
    details: dict[str, Any]
    links: dict[str, str]


class EnrollmentJournalOut(msgspec.Struct):
    id: UUID
    campaign: str
    campaign_id: UUID
    campaign_version: int
    customer_id: UUID
    entry: int
    source: str
    status: EnrollmentStatus
    step: str | None
    entered_at: datetime
    converted_at: datetime | None
    exited_at: datetime | None
    exit_reason: str | None
    waiting: Waiting | None
    steps: list[JournalEntryOut]
    links: dict[str, str]


def _entry_out(entry: JournalEntry) -> JournalEntryOut:
    links = {}
    if entry.message_id is not None:
        links["message"] = f"/v1/messages/{entry.message_id}"
    if entry.decision_id is not None:
        links["decision"] = f"/v1/decisions/{entry.decision_id}"
    return JournalEntryOut(
        entry.event,
        entry.at,
        entry.version,
        entry.step,
        entry.kind,
        entry.came_from,
        entry.outcome,
        entry.reason,
        entry.until,
        entry.signal,
        entry.message_id,
        entry.decision_id,
        entry.details,
        links,
    )


def _out(journal: EnrollmentJournal) -> EnrollmentJournalOut:
    key = journal.campaign.key
    return EnrollmentJournalOut(
        journal.enrollment_id,
        key,
        journal.campaign.campaign_id,
        journal.campaign_version,
        journal.customer_id,
        journal.entry,
        journal.source,
        journal.status,
        journal.step,
        journal.entered_at,
        journal.converted_at,
        journal.exited_at,
        journal.exit_reason,
        journal.waiting,
        [_entry_out(entry) for entry in journal.steps],
        {
            "self": f"/v1/campaigns/{key}/enrollments/{journal.enrollment_id}",
            "enrollments": f"/v1/campaigns/{key}/enrollments",
            "customer": f"/v1/customers/{journal.customer_id}/campaigns",
        },
    )


class EnrollmentJournalController(Controller):
    path = "/v1/campaigns"
    tags = ["campaigns"]
    exception_handlers = {SendsAsOtherTeams: sends_as_other_teams}

    @get(
        "/{campaign:str}/enrollments/{enrollment_id:uuid}",
        operation_id="getCampaignEnrollment",
        name="campaigns:enrollment",
        guards=[allow(*READERS)],
        summary="One enrollment with every step it took: when, of which kind, and why",
        description=(
            "Read from the enrollment's own events, oldest first: `entered`, `step_taken` "
            "(`came_from`, the arm drawn as `outcome`, the branch case that held or the wait "
            "that ended as `reason`), `waiting` (for `time`, a `signal` or a `delivery`, "
            "`until`), `send_requested` (with the `message_id` and `decision_id` the rules "
            "made, linked), `responded` (what became of the send), `update_requested`, "
            "`converted`, `migrated`, `exited`. `waiting` is the timer it waits on now. An "
            "enrollment of another campaign, or none: 404. A key limited to teams, of a "
            "campaign with a send step of another team in any version: 403."
        ),
    )
    @inject
    async def campaign_enrollment(
        self,
        campaign: Annotated[str, Parameter(description="The campaign's key, or its id")],
        enrollment_id: UUID,
        request: Request[Any, Any, Any],
        journals: FromDishka[EnrollmentJournals],
        campaigns: FromDishka[CampaignTeams],
    ) -> EnrollmentJournalOut:
        await campaigns.check(campaign, teams_of_key(request))
        return _out(await journals.get(campaign, enrollment_id))
