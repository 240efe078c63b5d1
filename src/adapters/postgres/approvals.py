"""Approvals on PostgreSQL (`0036_approvals.sql`): holds written with the events that make
them, verdicts in the transaction that decides again, pages for operators."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from adapters.postgres.event_store import SideTable
from ports.approvals import (
    ApprovalPage,
    ApprovalRecord,
    ApprovalStatus,
    approval_after,
    approval_cursor,
)

if TYPE_CHECKING:
    from datetime import datetime
    from uuid import UUID

    import asyncpg

    from adapters.postgres.unit_of_work import PostgresUnitOfWork
    from ports.approvals import ApprovalFilter

__all__ = ["HELD", "PostgresApprovals", "PostgresApprovalsRead"]

HELD = SideTable(
    "INSERT INTO approvals (approval_id, message_id, customer_id, rule_id, reason, team,"
    " purpose, channel, origin, held_at, expires_at)",
    (
        "uuid",
        "uuid",
        "uuid",
        "text",
        "text",
        "text",
        "text",
        "text",
        "text",
        "timestamptz",
        "timestamptz",
    ),
)
_COLUMNS = (
    "approval_id, message_id, customer_id, rule_id, reason, team, purpose, channel, origin,"
    " held_at, expires_at, status, settled_at, settled_by, note, decision_id"
)
_GET = f"SELECT {_COLUMNS} FROM approvals WHERE approval_id = $1"
_OF_MESSAGE = f"SELECT {_COLUMNS} FROM approvals WHERE message_id = $1 ORDER BY held_at"
_SETTLE = """
UPDATE approvals SET status = $2, settled_by = $3, note = $4, settled_at = $5, decision_id = $6
WHERE approval_id = $1
"""
_PAGE = f"""
SELECT {_COLUMNS} FROM approvals
WHERE ($1::text IS NULL OR status = $1)
  AND ($2::text IS NULL OR rule_id = $2)
  AND ($3::text IS NULL OR team = $3)
  AND ($4::text[] IS NULL OR team = ANY($4))
  AND ($5::uuid IS NULL OR customer_id = $5)
  AND ($6::timestamptz IS NULL OR (held_at, approval_id) < ($6, $7::uuid))
ORDER BY held_at DESC, approval_id DESC
LIMIT $8
"""


def _record(row: asyncpg.Record) -> ApprovalRecord:
    return ApprovalRecord(
        approval_id=row["approval_id"],
        message_id=row["message_id"],
        customer_id=row["customer_id"],
        rule_id=row["rule_id"],
        reason=row["reason"],
        team=row["team"],
        purpose=row["purpose"],
        channel=row["channel"],
        origin=row["origin"],
        held_at=row["held_at"],
        expires_at=row["expires_at"],
        status=ApprovalStatus(row["status"]),
        settled_at=row["settled_at"],
        settled_by=row["settled_by"],
        note=row["note"],
        decision_id=row["decision_id"],
    )


class PostgresApprovals:
    """The `approvals` table in a unit of work: a hold joins the events' statement."""

    def __init__(self, uow: PostgresUnitOfWork) -> None:
        self.uow = uow

    def hold(self, record: ApprovalRecord) -> None:
        self.uow.rows_for(HELD).append(
            (
                record.approval_id,
                record.message_id,
                record.customer_id,
                record.rule_id,
                record.reason,
                record.team,
                record.purpose,
                record.channel,
                record.origin,
                record.held_at,
                record.expires_at,
            )
        )

    async def get(self, approval_id: UUID) -> ApprovalRecord | None:
        row = await (await self.uow.begun()).fetchrow(_GET, approval_id)
        return None if row is None else _record(row)

    async def settle(
        self,
        approval_id: UUID,
        status: ApprovalStatus,
        by: str,
        note: str | None,
        at: datetime,
        decision_id: UUID,
    ) -> None:
        conn = await self.uow.begun()
        await conn.execute(_SETTLE, approval_id, status.value, by, note, at, decision_id)


class PostgresApprovalsRead:
    """Approvals as last committed."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def get(self, approval_id: UUID) -> ApprovalRecord | None:
        row = await self.pool.fetchrow(_GET, approval_id)
        return None if row is None else _record(row)

    async def of_message(self, message_id: UUID) -> list[ApprovalRecord]:
        return [_record(row) for row in await self.pool.fetch(_OF_MESSAGE, message_id)]

    async def page(self, where: ApprovalFilter, limit: int, after: str | None) -> ApprovalPage:
        since = approval_after(after)
        args: list[Any] = [
            None if where.status is None else where.status.value,
            where.rule_id,
            where.team,
            None if where.teams is None else list(where.teams),
            where.customer_id,
            None if since is None else since[0],
            None if since is None else since[1],
            limit + 1,
        ]
        rows = [_record(row) for row in await self.pool.fetch(_PAGE, *args)]
        more = len(rows) > limit
        rows = rows[:limit]
        return ApprovalPage(rows, approval_cursor(rows[-1]) if more and rows else None)
