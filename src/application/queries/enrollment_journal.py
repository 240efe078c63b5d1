"""One enrollment's journal, read from its own stream: every step it took, of which kind, when,
why (the branch case that held, the arm drawn, the wait that ended), what became of each send
(its message and decision), and what it waits for now.

It reads the Enrollment events themselves, not the enrollments projection: an auditor sees what
was recorded, and an entry shows as soon as it is committed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime  # the journal's types, resolved when it is served
from typing import TYPE_CHECKING, Any
from uuid import UUID

from application.queries.campaign_history import versions_of
from application.queries.campaigns import CampaignQueries
from domain.shared.errors import NotFound
from ports.enrollments import EnrollmentStatus

if TYPE_CHECKING:
    from collections.abc import Sequence

    from domain.campaign.journey import Journey
    from ports.campaigns import CampaignReadModel, CampaignSummary
    from ports.history import History
    from ports.sent_requests import SentRequests

__all__ = ["EnrollmentJournal", "EnrollmentJournals", "JournalEntry", "Waiting"]

# The Enrollment's events by their names (domain/campaign/enrollment.py), as the journal calls them.
_EVENTS = {
    "Entered": "entered",
    "StepTaken": "step_taken",
    "Waiting": "waiting",
    "SendRequested": "send_requested",
    "Responded": "responded",
    "UpdateRequested": "update_requested",
    "Converted": "converted",
    "Migrated": "migrated",
    "Exited": "exited",
}


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One event of the enrollment. `step` and its `kind` (send, wait, branch...) in the journey
    of `version`; `outcome`: the arm a split drew, what a wait waits for (`time`, `signal`,
    `delivery`), what became of a send (`delivered`, `suppressed`...); `message_id` and
    `decision_id` of a send, once the rules decided it."""

    event: str
    at: datetime
    version: int
    step: str | None
    kind: str | None
    came_from: str | None = None
    outcome: str | None = None
    reason: str | None = None
    until: datetime | None = None
    signal: str | None = None
    message_id: UUID | None = None
    decision_id: UUID | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Waiting:
    """The timer an active enrollment waits on: at which step, for what, until when."""

    step: str
    kind: str  # time, signal, delivery
    until: datetime
    signal: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class EnrollmentJournal:
    campaign: CampaignSummary
    enrollment_id: UUID
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
    steps: list[JournalEntry]
    waiting: Waiting | None


def _kind(versions: dict[int, Journey], version: int, step: str | None) -> str | None:
    journey = versions.get(version)
    found = None if journey is None or step is None else journey.steps.get(step)
    return None if found is None else str(type(found).__struct_config__.tag)


class _Reading:
    """The enrollment's events folded into its journal, oldest first."""

    def __init__(self, versions: dict[int, Journey], entered: Any) -> None:
        self.versions = versions
        self.version: int = entered.campaign_version
        self.step: str | None = None
        self.waiting: Waiting | None = None
        self.converted_at: datetime | None = None
        self.exited_at: datetime | None = None
        self.exit_reason: str | None = None
        self.entries: list[JournalEntry] = []

    def entry(self, event: Any, step: str | None, **fields: Any) -> None:
        name = _EVENTS[type(event).__name__]
        kind = _kind(self.versions, self.version, step)
        self.entries.append(JournalEntry(name, event.timestamp, self.version, step, kind, **fields))

    def read(self, event: Any) -> None:
        name = type(event).__name__
        if name == "Entered":
            self.entry(event, None, reason=f"entered from {event.source}")
        elif name == "StepTaken":
            self.step, self.waiting = event.step, None
            self.entry(
                event, event.step, came_from=event.came_from, outcome=event.arm, reason=event.reason
            )
        elif name == "Waiting":
            self.waiting = Waiting(event.step, event.kind, event.until, event.signal, event.reason)
            self.entry(
                event,
                event.step,
                outcome=event.kind,
                reason=event.reason,
                until=event.until,
                signal=event.signal,
            )
        elif name == "SendRequested":
            details = {
                "dedup_key": event.dedup_key,
                "template": event.template,
                "channels": [str(channel) for channel in event.channels],
                "purpose": str(event.purpose),
                "team": event.team,
                "priority": event.priority,
            }
            self.entry(event, event.step, details=details)
        elif name == "Responded":
            self.entry(
                event,
                event.step,
                outcome=event.response,
                reason=event.reason,
                message_id=event.message_id,
            )
        elif name == "UpdateRequested":
            details = {"profile": event.profile, "attributes": event.attributes}
            self.entry(event, event.step, details=details)
        elif name == "Converted":
            self.converted_at = event.converted_at
            reason = f"goal reached: {event.signal}"
            details = {"signal_event_id": event.signal_event_id}
            self.entry(event, self.step, reason=reason, signal=event.signal, details=details)
        elif name == "Migrated":
            reason = f"moved from version {event.from_version} ({event.from_step}) by {event.by}"
            self.version, self.step, self.waiting = event.to_version, event.to_step, None
            details = {"from_version": event.from_version, "from_step": event.from_step}
            self.entry(event, event.to_step, reason=reason, details=details)
        elif name == "Exited":
            self.exited_at, self.exit_reason, self.waiting = event.timestamp, event.reason, None
            outcome = event.arm if event.split is not None else None
            details = {} if event.split is None else {"split": event.split}
            self.entry(event, self.step, outcome=outcome, reason=event.reason, details=details)


class EnrollmentJournals:
    """Reads an enrollment's stream, and its campaign's for the journeys of its versions."""

    def __init__(self, campaigns: CampaignReadModel, history: History, sends: SentRequests):
        self.campaigns = CampaignQueries(campaigns)
        self.history = history
        self.sends = sends

    async def get(self, ref: str, enrollment_id: UUID) -> EnrollmentJournal:
        """The enrollment of the campaign `ref` (key or id); NotFound if either is not."""
        campaign = (await self.campaigns.get(ref)).summary
        events: Sequence[Any] = await self.history.stream(enrollment_id)
        entered = events[0] if events else None
        if entered is None or type(entered).__name__ != "Entered":
            raise NotFound(f"no enrollment {enrollment_id} in campaign {campaign.key!r}")
        if entered.campaign_id != campaign.campaign_id:
            raise NotFound(f"no enrollment {enrollment_id} in campaign {campaign.key!r}")
        reading = _Reading(versions_of(await self.history.stream(campaign.campaign_id)), entered)
        for event in events:
            if type(event).__name__ in _EVENTS:
                reading.read(event)
        steps = await self._with_decisions(reading.entries)
        status = (
            EnrollmentStatus.CONVERTED
            if reading.converted_at is not None
            else EnrollmentStatus.EXITED
            if reading.exited_at is not None
            else EnrollmentStatus.ACTIVE
        )
        return EnrollmentJournal(
            campaign,
            enrollment_id,
            reading.version,
            entered.customer_id,
            entered.entry,
            entered.source,
            status,
            reading.step,
            entered.timestamp,
            reading.converted_at,
            reading.exited_at,
            reading.exit_reason,
            steps,
            reading.waiting,
        )

    async def _with_decisions(self, entries: list[JournalEntry]) -> list[JournalEntry]:
        """Each send with the message and decision its request made: its dedup key is the
        request's idempotency key."""
        keys = [e.details["dedup_key"] for e in entries if e.event == "send_requested"]
        made = await self.sends.by_keys(keys)
        found = []
        for entry in entries:
            sent = made.get(entry.details.get("dedup_key", "")) if entry.details else None
            if entry.event == "send_requested" and sent is not None:
                entry = dataclasses.replace(
                    entry, message_id=sent.message_id, decision_id=sent.decision_id
                )
            found.append(entry)
        return found
