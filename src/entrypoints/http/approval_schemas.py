"""What operators send and read about messages held for approval."""

from __future__ import annotations

from datetime import datetime  # msgspec reads these hints at run time
from typing import Annotated, Any
from uuid import UUID

import msgspec

from application.approvals.settle_approval import ApprovalEdit
from application.messages.compose import MessageContent
from domain.policy.vocabulary import Channel
from entrypoints.http.schemas import ContentIn
from ports.approvals import ApprovalRecord

__all__ = ["ApprovalEditIn", "ApprovalOut", "ApprovalsOut", "VerdictIn", "approval_out"]

Note = Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]


class VerdictIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """An approval or a rejection, with why if the operator says."""

    note: Note | None = None


class ApprovalEditIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The message as the operator changed it: another channel, other content, or both."""

    note: Note | None = None
    channel: Channel | None = None
    template: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")] | None = None
    template_version: Annotated[int, msgspec.Meta(ge=1)] | None = None
    locale: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")] | None = (
        None
    )
    variables: dict[str, Any] = msgspec.field(default_factory=dict)
    content: ContentIn | None = None

    def __post_init__(self) -> None:
        if self.template is not None and self.content is not None:
            raise ValueError("give `template` or `content`, not both")
        if self.variables and self.template is None:
            raise ValueError("`variables` are a template's: give `template` too")

    def edit(self) -> ApprovalEdit:
        content = None
        if self.template is not None or self.content is not None:
            content = MessageContent(
                template=self.template,
                version=self.template_version,
                locale=self.locale,
                variables=self.variables,
                inline=None if self.content is None else self.content.content(),
            )
        return ApprovalEdit(self.channel, content)


class ApprovalOut(msgspec.Struct, kw_only=True):
    """A held message's approval: the rule that held it, and the verdict once given."""

    id: UUID
    message_id: UUID
    customer_id: UUID
    status: str
    rule_id: str
    reason: str
    team: str
    purpose: str
    channel: str | None
    origin: str
    held_at: datetime
    expires_at: datetime
    settled_at: datetime | None = None
    settled_by: str | None = None
    note: str | None = None
    decision_id: UUID | None = None  # the decision the verdict led to
    outcome: str | None = None  # the outcome of the decision it led to; None while pending
    links: dict[str, str] = msgspec.field(default_factory=dict)


class ApprovalsOut(msgspec.Struct, kw_only=True):
    items: list[ApprovalOut]
    next_cursor: str | None


def approval_out(record: ApprovalRecord, outcome: str | None = None) -> ApprovalOut:
    return ApprovalOut(
        id=record.approval_id,
        message_id=record.message_id,
        customer_id=record.customer_id,
        status=record.status.value,
        rule_id=record.rule_id,
        reason=record.reason,
        team=record.team,
        purpose=record.purpose,
        channel=record.channel,
        origin=record.origin,
        held_at=record.held_at,
        expires_at=record.expires_at,
        settled_at=record.settled_at,
        settled_by=record.settled_by,
        note=record.note,
        decision_id=record.decision_id,
        outcome=outcome,
        links={
            "self": f"/v1/approvals/{record.approval_id}",
            "message": f"/v1/messages/{record.message_id}",
        },
    )
