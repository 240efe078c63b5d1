"""Messages held for an operator's approval: kept in a unit of work, listed for operators.

A held message waits as a deferral whose due time is its hold's expiry (`Deferrals.defer`
with an `approval_id`): an operator's verdict withdraws it, the scheduler claims it when it
expires. This port keeps what operators list and read: the hold, its rule and its verdict.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime  # views are rendered by their run-time type hints
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol
from uuid import UUID

from ports.directory import InvalidCursor

if TYPE_CHECKING:
    from collections.abc import Collection

__all__ = [
    "ApprovalFilter",
    "ApprovalPage",
    "ApprovalRecord",
    "ApprovalStatus",
    "Approvals",
    "ApprovalsRead",
    "InvalidApprovalCursor",
    "approval_after",
    "approval_cursor",
]


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    EDITED = "edited"  # approved with changes, then decided again
    REJECTED = "rejected"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"  # its sender no longer wanted it (a journey moved on), or its
    # customer was erased


@dataclass(frozen=True, slots=True)
class ApprovalRecord:
    """A held message: the hold's decision (whose id is the approval's), and its verdict."""

    approval_id: UUID
    message_id: UUID
    customer_id: UUID
    rule_id: str
    reason: str
    team: str
    purpose: str
    channel: str | None
    origin: str
    held_at: datetime
    expires_at: datetime
    status: ApprovalStatus = ApprovalStatus.PENDING
    settled_at: datetime | None = None
    settled_by: str | None = None
    note: str | None = None
    decision_id: UUID | None = None  # the decision the verdict led to


@dataclass(frozen=True, slots=True)
class ApprovalFilter:
    """Which approvals to list; None matches every value. Newest held first."""

    status: ApprovalStatus | None = None
    rule_id: str | None = None
    team: str | None = None
    teams: Collection[str] | None = None  # the asking key's teams, None: every team
    customer_id: UUID | None = None


@dataclass(frozen=True, slots=True)
class ApprovalPage:
    approvals: list[ApprovalRecord]
    next: str | None  # the cursor of the next page, None at the end


class Approvals(Protocol):
    """The approvals, as a unit of work reads and changes them."""

    def hold(self, record: ApprovalRecord) -> None:
        """Records a new hold, in this commit."""
        ...

    async def get(self, approval_id: UUID) -> ApprovalRecord | None: ...

    async def settle(
        self,
        approval_id: UUID,
        status: ApprovalStatus,
        by: str,
        note: str | None,
        at: datetime,
        decision_id: UUID,
    ) -> None:
        """Records the verdict on a pending hold, in this commit."""
        ...


class ApprovalsRead(Protocol):
    """Approvals as last committed, for operators."""

    async def get(self, approval_id: UUID) -> ApprovalRecord | None: ...

    async def of_message(self, message_id: UUID) -> list[ApprovalRecord]:
        """The holds of one message, oldest first (an edit may be held again)."""
        ...

    async def page(self, where: ApprovalFilter, limit: int, after: str | None) -> ApprovalPage:
        """Newest held first; `after` is a page's `next`."""
        ...


class InvalidApprovalCursor(InvalidCursor):
    """An `after` that is no cursor of a page of approvals."""


def approval_cursor(record: ApprovalRecord) -> str:
    """The cursor of a page that ends at `record`."""
    text = f"{record.held_at.isoformat()}|{record.approval_id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def approval_after(cursor: str | None) -> tuple[datetime, UUID] | None:
    """Where a cursor of `approval_cursor` stands; InvalidApprovalCursor if it is none."""
    if not cursor:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        held_at, approval_id = text.split("|")
        return datetime.fromisoformat(held_at), UUID(approval_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidApprovalCursor(f"{cursor!r} is not a cursor from a previous page") from None
