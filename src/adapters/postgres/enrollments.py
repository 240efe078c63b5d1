"""Enrollments as a projection of their events (`enrollments`), and read by campaign or customer."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, cast

from ports.enrollments import (
    ENROLLMENT_ENTERED,
    ENROLLMENT_TOPICS,
    EnrollmentPage,
    EnrollmentStatus,
    EnrollmentView,
    cursor_at,
    position_of,
)

if TYPE_CHECKING:
    from collections.abc import Sequence
    from uuid import UUID

    import asyncpg

    from adapters.postgres.event_store import RecordedEvent
    from ports.projections import LoggedEvent

__all__ = ["EnrollmentListing", "PostgresEnrollments"]

_FIELDS = tuple(field.name for field in dataclasses.fields(EnrollmentView))
_COLUMNS = ", ".join(_FIELDS)
_TYPES = (
    "uuid", "uuid", "int4", "uuid", "int4", "text", "text", "text", "text", "text",
    "timestamptz", "timestamptz", "timestamptz", "timestamptz", "timestamptz", "text", "int8",
)  # fmt: skip
_PAGE = f"""
SELECT {_COLUMNS} FROM enrollments
WHERE campaign_id = $1 AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR step = $3)
  AND ($4::bigint IS NULL OR position < $4)
ORDER BY position DESC LIMIT $5
"""
_OF_CUSTOMER = f"SELECT {_COLUMNS} FROM enrollments WHERE customer_id = $1 ORDER BY position DESC"


def _view(row: asyncpg.Record) -> EnrollmentView:
    values: dict[str, Any] = {name: row[name] for name in _FIELDS}
    values["status"] = EnrollmentStatus(values["status"])
    return EnrollmentView(**values)


class EnrollmentListing:
    """Every enrollment, where it is and why, from the Enrollment events; rebuildable."""

    name = "enrollments"
    topics = ENROLLMENT_TOPICS

    def __init__(self, suffix: str = "") -> None:
        self.table = "enrollments" + suffix
        self.tables = (self.table,)

    def writing_to(self, suffix: str) -> EnrollmentListing:
        return EnrollmentListing(suffix)

    async def apply(self, conn: asyncpg.Connection, events: Sequence[LoggedEvent]) -> None:
        # The runner hands out RecordedEvents; the Entered event's position orders the rows.
        recorded = cast("Sequence[RecordedEvent]", events)
        earlier = {e.stream_id for e in recorded} - {
            e.stream_id for e in recorded if e.topic == ENROLLMENT_ENTERED
        }
        views: dict[UUID, EnrollmentView] = {}
        if earlier:
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM {self.table} WHERE enrollment_id = ANY($1::uuid[])",
                list(earlier),
            )
            views = {row["enrollment_id"]: _view(row) for row in rows}
        for event in recorded:
            if event.topic == ENROLLMENT_ENTERED:
                views[event.stream_id] = EnrollmentView.entered(
                    event.stream_id, event.data, event.recorded_at, event.position
                )
            elif (view := views.get(event.stream_id)) is not None:
                views[event.stream_id] = view.folding(event.topic, event.data, event.recorded_at)
        if not views:
            return
        columns = zip(*(dataclasses.astuple(view) for view in views.values()), strict=True)
        arrays = ", ".join(f"${n}::{kind}[]" for n, kind in enumerate(_TYPES, 1))
        updates = ", ".join(f"{name} = EXCLUDED.{name}" for name in _FIELDS[1:])
        await conn.execute(
            f"INSERT INTO {self.table} ({_COLUMNS}) SELECT * FROM unnest({arrays})"
            f" ON CONFLICT (enrollment_id) DO UPDATE SET {updates}",
            *(list(column) for column in columns),
        )


class PostgresEnrollments:
    """The `enrollments` projection (EnrollmentReadModel)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def page(
        self,
        campaign_id: UUID,
        *,
        status: EnrollmentStatus | None = None,
        step: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> EnrollmentPage:
        status_text = None if status is None else str(status)
        rows = await self.pool.fetch(
            _PAGE, campaign_id, status_text, step, position_of(after), limit + 1
        )
        views = [_view(row) for row in rows[:limit]]
        more = len(rows) > limit
        return EnrollmentPage(views, cursor_at(views[-1].position) if more else None)

    async def of_customer(self, customer_id: UUID) -> list[EnrollmentView]:
        return [_view(row) for row in await self.pool.fetch(_OF_CUSTOMER, customer_id)]
