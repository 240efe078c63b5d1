"""Messages the rules held for an operator: listed, read, approved, edited or rejected.

Who may give a verdict: admins on any; marketers on marketing messages (campaign sends,
broadcasts); agents on the others (replies, service and transactional messages). A key limited
to teams acts only on its teams' messages. Auditors read; service keys, being programs, do
neither: a hold exists so that a person decides.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

from dishka.integrations.litestar import FromDishka, inject
from litestar import Controller, Request, Response, get, post
from litestar.exceptions import PermissionDeniedException
from litestar.params import Parameter

from application.approvals.settle_approval import ApprovalAlreadySettled, SettleApproval
from application.idempotent_writes import IdempotentWrites
from application.queries.decisions import DecisionQueries
from domain.policy.decision import Outcome
from domain.policy.vocabulary import Purpose
from domain.shared.errors import NotFound
from entrypoints.http.approval_schemas import (
    ApprovalEditIn,
    ApprovalOut,
    ApprovalsOut,
    VerdictIn,
    approval_out,
)
from entrypoints.http.auth import allow, author, check_team, current_key
from entrypoints.http.idempotency import answer_once
from entrypoints.http.problems import problem
from ports.api_keys import Role
from ports.approvals import ApprovalFilter, ApprovalRecord, ApprovalsRead, ApprovalStatus

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from application.approvals.settle_approval import Settled

__all__ = ["ApprovalsController"]

_KEYED = (
    " With an `Idempotency-Key` header, a retry is answered as the first request was "
    "(`Chorus-Repeated: true`); the key with another request: 409 `idempotency-key-reused`. "
    "An approval no longer pending (settled, or expired): 409 `approval-settled`."
)
_DECIDERS = (Role.MARKETER, Role.AGENT)
_READERS = (Role.MARKETER, Role.AGENT, Role.AUDITOR)


def _settled(request: Request[Any, Any, Any], exc: ApprovalAlreadySettled) -> Response[Any]:
    return problem(
        409,
        "approval-settled",
        "The approval is no longer pending",
        str(exc),
        approval_status=exc.status.value,
    )


_SUPPRESSED = frozenset({ApprovalStatus.REJECTED, ApprovalStatus.EXPIRED})
"""Verdicts whose decision always suppresses the message (`suppress_held`)."""


async def outcome_of(record: ApprovalRecord, decisions: DecisionQueries) -> str | None:
    """The outcome of the decision a settled approval led to, as recorded; None while
    pending. An approved or edited message was decided again, so its outcome is read."""
    if record.decision_id is None:
        return None
    if record.status in _SUPPRESSED:
        return Outcome.SUPPRESS.value
    try:
        return (await decisions.by_id(record.decision_id)).outcome
    except NotFound:
        return None


async def _pending_for(
    request: Request[Any, Any, Any], approvals: ApprovalsRead, approval_id: UUID
) -> ApprovalRecord:
    """The approval, if this key may give a verdict on it: 404, then 403."""
    record = await approvals.get(approval_id)
    if record is None:
        raise NotFound(f"no approval {approval_id}")
    check_team(request, record.team)
    role = current_key(request).role
    marketing = record.purpose == Purpose.MARKETING.value
    if (role is Role.MARKETER and not marketing) or (role is Role.AGENT and marketing):
        raise PermissionDeniedException(
            f"a {role.value} key may not settle a {record.purpose} message's approval: "
            "marketers settle marketing messages, agents the others"
        )
    return record


async def _verdict(
    request: Request[Any, Any, Any],
    approvals: ApprovalsRead,
    writes: IdempotentWrites,
    approval_id: UUID,
    asked: Any,
    settle: Callable[[], Awaitable[Settled]],
) -> Response[ApprovalOut]:
    await _pending_for(request, approvals, approval_id)

    async def write() -> tuple[int, ApprovalOut]:
        settled = await settle()
        record = await approvals.get(approval_id)
        assert record is not None
        return 200, approval_out(record, settled.outcome.value)

    return await answer_once(request, writes, asked, ApprovalOut, write)


class ApprovalsController(Controller):
    path = "/v1/approvals"
    tags = ["approvals"]
    exception_handlers = {ApprovalAlreadySettled: _settled}

    @get(
        operation_id="listApprovals",
        name="approvals:list",
        guards=[allow(*_READERS)],
        summary="Messages held for an operator's approval, newest first, a page at a time",
        description=(
            "`?status=` (pending, approved, edited, rejected, expired, withdrawn), `?rule=` "
            "the approval rule's id, `?team=`, `?customer_id=`, `?limit=` (1-500, default 50) "
            "and `?after=` the previous `next_cursor`. A key limited to teams sees its teams' "
            "only."
        ),
    )
    @inject
    async def list_approvals(
        self,
        request: Request[Any, Any, Any],
        approvals: FromDishka[ApprovalsRead],
        decisions: FromDishka[DecisionQueries],
        status: ApprovalStatus | None = None,
        rule: Annotated[str | None, Parameter(max_length=64)] = None,
        team: Annotated[str | None, Parameter(max_length=64)] = None,
        customer_id: UUID | None = None,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 50,
        after: Annotated[str | None, Parameter(max_length=200)] = None,
    ) -> ApprovalsOut:
        teams = current_key(request).teams or None
        where = ApprovalFilter(status, rule, team, teams, customer_id)
        page = await approvals.page(where, limit, after)
        return ApprovalsOut(
            items=[
                approval_out(record, await outcome_of(record, decisions))
                for record in page.approvals
            ],
            next_cursor=page.next,
        )

    @get(
        "/{approval_id:uuid}",
        operation_id="getApproval",
        name="approvals:get",
        guards=[allow(*_READERS)],
        summary=(
            "One approval: the rule that held the message, why, and the verdict if given, with "
            "the outcome of the decision it led to"
        ),
    )
    @inject
    async def get_approval(
        self,
        approval_id: UUID,
        request: Request[Any, Any, Any],
        approvals: FromDishka[ApprovalsRead],
        decisions: FromDishka[DecisionQueries],
    ) -> ApprovalOut:
        record = await approvals.get(approval_id)
        if record is None:
            raise NotFound(f"no approval {approval_id}")
        check_team(request, record.team)
        return approval_out(record, await outcome_of(record, decisions))

    @post(
        "/{approval_id:uuid}/approve",
        operation_id="approveMessage",
        name="approvals:approve",
        guards=[allow(*_DECIDERS)],
        status_code=200,
        summary="Approve a held message: the rules decide it again, its hold lifted",
        description=(
            "Body: `{note?}`. The verdict is recorded with the acting key, then the message is "
            "decided again with the rule that held it approved: it is sent through the outbox "
            "unless another rule now defers, suppresses or holds it (`outcome`)." + _KEYED
        ),
    )
    @inject
    async def approve(
        self,
        approval_id: UUID,
        data: VerdictIn,
        request: Request[Any, Any, Any],
        approvals: FromDishka[ApprovalsRead],
        settle: FromDishka[SettleApproval],
        writes: FromDishka[IdempotentWrites],
    ) -> Response[ApprovalOut]:
        by = author(request)
        return await _verdict(
            request,
            approvals,
            writes,
            approval_id,
            data,
            lambda: settle.approve(approval_id, by, data.note),
        )

    @post(
        "/{approval_id:uuid}/edit",
        operation_id="editHeldMessage",
        name="approvals:edit",
        guards=[allow(*_DECIDERS)],
        status_code=200,
        summary="Change a held message's channel or content, and approve it as changed",
        description=(
            "Body: `{channel?, template?, template_version?, locale?, variables?, content?, "
            "note?}`: new content is rendered again (a missing variable: 422 `render-error`); "
            "a new channel without new content must be one it was written for. The changed "
            "message is decided again by the rules." + _KEYED
        ),
    )
    @inject
    async def edit(
        self,
        approval_id: UUID,
        data: ApprovalEditIn,
        request: Request[Any, Any, Any],
        approvals: FromDishka[ApprovalsRead],
        settle: FromDishka[SettleApproval],
        writes: FromDishka[IdempotentWrites],
    ) -> Response[ApprovalOut]:
        by = author(request)
        return await _verdict(
            request,
            approvals,
            writes,
            approval_id,
            data,
            lambda: settle.edit(approval_id, by, data.edit(), data.note),
        )

    @post(
        "/{approval_id:uuid}/reject",
        operation_id="rejectHeldMessage",
        name="approvals:reject",
        guards=[allow(*_DECIDERS)],
        status_code=200,
        summary="Reject a held message: it is suppressed, citing its rule and who rejected it",
        description="Body: `{note?}`." + _KEYED,
    )
    @inject
    async def reject(
        self,
        approval_id: UUID,
        data: VerdictIn,
        request: Request[Any, Any, Any],
        approvals: FromDishka[ApprovalsRead],
        settle: FromDishka[SettleApproval],
        writes: FromDishka[IdempotentWrites],
    ) -> Response[ApprovalOut]:
        by = author(request)
        return await _verdict(
            request,
            approvals,
            writes,
            approval_id,
            data,
            lambda: settle.reject(approval_id, by, data.note),
        )
