"""Enrollments as the read side lists them: one row an entry of a customer into a campaign, where
it is in the journey and why, folded from the Enrollment events (`EnrollmentView.folding`)."""

from __future__ import annotations

import base64
import binascii
import dataclasses
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID

from domain.campaign.enrollment import Enrollment
from domain.catalog import topic_of

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "ENROLLMENT_ENTERED",
    "ENROLLMENT_TOPICS",
    "EnrollmentPage",
    "EnrollmentReadModel",
    "EnrollmentStatus",
    "EnrollmentView",
    "InvalidEnrollmentCursor",
    "cursor_at",
    "position_of",
]

_ENROLLMENT = topic_of(Enrollment) + "."
ENROLLMENT_ENTERED = _ENROLLMENT + "Entered"
"""The event that starts an enrollment's row."""
ENROLLMENT_TOPICS = frozenset(
    _ENROLLMENT + name
    for name in ("Entered", "StepTaken", "Waiting", "Migrated", "Converted", "Exited")
)
"""The events that change an enrollment's row."""


class InvalidEnrollmentCursor(ValueError):
    """An enrollments cursor this service did not hand out."""


class EnrollmentStatus(StrEnum):
    """Active until it exits; converted once its goal is reached (it exits then, or had)."""

    ACTIVE = "active"
    EXITED = "exited"
    CONVERTED = "converted"


@dataclass(frozen=True, slots=True)
class EnrollmentView:
    """One entry of a customer into a campaign: the step it is at and why it went there, what it
    waits for, and how it ended. `position` is its Entered event's place in the log."""

    enrollment_id: UUID
    campaign_id: UUID
    campaign_version: int
    customer_id: UUID
    entry: int
    source: str
    status: EnrollmentStatus
    step: str | None
    reason: str | None
    waiting_for: str | None
    waiting_until: datetime | None
    entered_at: datetime
    updated_at: datetime
    converted_at: datetime | None
    exited_at: datetime | None
    exit_reason: str | None
    position: int

    @classmethod
    def entered(
        cls, enrollment_id: UUID, data: Mapping[str, Any], at: datetime, position: int
    ) -> EnrollmentView:
        """The row an Entered event starts."""
        return cls(
            enrollment_id=enrollment_id,
            campaign_id=UUID(str(data["campaign_id"])),
            campaign_version=int(data["campaign_version"]),
            customer_id=UUID(str(data["customer_id"])),
            entry=int(data["entry"]),
            source=str(data["source"]),
            status=EnrollmentStatus.ACTIVE,
            step=None,
            reason=None,
            waiting_for=None,
            waiting_until=None,
            entered_at=at,
            updated_at=at,
            converted_at=None,
            exited_at=None,
            exit_reason=None,
            position=position,
        )

    def folding(self, topic: str, data: Mapping[str, Any], at: datetime) -> EnrollmentView:
        """The row after one more of its events (of `ENROLLMENT_TOPICS`, but Entered)."""
        name = topic.removeprefix(_ENROLLMENT)
        change: dict[str, Any] = {"updated_at": at}
        if name == "StepTaken":
            change |= {"step": data["step"], "reason": data["reason"]}
            change |= {"waiting_for": None, "waiting_until": None}
        elif name == "Waiting":
            waiting_for = data["signal"] if data.get("signal") else data["kind"]
            change |= {"waiting_for": waiting_for, "waiting_until": _time(data["until"])}
        elif name == "Migrated":
            reason = f"moved from version {data['from_version']} by {data['by']}"
            change |= {"campaign_version": int(data["to_version"]), "step": data["to_step"]}
            change |= {"reason": reason, "waiting_for": None, "waiting_until": None}
        elif name == "Converted":
            change |= {"status": EnrollmentStatus.CONVERTED}
            change |= {"converted_at": _time(data["converted_at"])}
        elif name == "Exited":
            if self.status is EnrollmentStatus.ACTIVE:
                change |= {"status": EnrollmentStatus.EXITED}
            change |= {"exited_at": at, "exit_reason": data["reason"]}
            change |= {"waiting_for": None, "waiting_until": None}
        return dataclasses.replace(self, **change)


def _time(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def cursor_at(position: int) -> str:
    """The cursor of a page that ends at the enrollment entered at `position`."""
    return base64.urlsafe_b64encode(position.to_bytes(8, "big")).decode().rstrip("=")


def position_of(cursor: str | None) -> int | None:
    """The position a cursor of `cursor_at` stands for; InvalidEnrollmentCursor if none."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (ValueError, binascii.Error):
        raw = b""
    position = int.from_bytes(raw, "big", signed=True)
    if len(raw) != 8 or position < 0:  # a PostgreSQL bigint: eight bytes, the first bit the sign
        raise InvalidEnrollmentCursor(f"{cursor!r} is not a cursor from a previous page")
    return position


@dataclass(frozen=True, slots=True)
class EnrollmentPage:
    items: list[EnrollmentView]
    next_cursor: str | None


class EnrollmentReadModel(Protocol):
    """Enrollments by campaign, newest entry first, and by customer."""

    async def page(
        self,
        campaign_id: UUID,
        *,
        status: EnrollmentStatus | None = None,
        step: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> EnrollmentPage:
        """A campaign's enrollments of one status and at one step where asked, newest first;
        `after` is the previous page's `next_cursor` (InvalidEnrollmentCursor if it is not one)."""
        ...

    async def of_customer(self, customer_id: UUID) -> list[EnrollmentView]:
        """Every entry of the customer into any campaign, newest first."""
        ...
