"""Enrollments folded from their events in memory (EnrollmentReadModel), for unit tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

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
    from collections.abc import Iterable
    from uuid import UUID

    from ports.projections import LoggedEvent

__all__ = ["InMemoryEnrollments"]


class InMemoryEnrollments:
    """The rows `EnrollmentListing` would write, folded from the events given, in order."""

    def __init__(self) -> None:
        self.views: dict[UUID, EnrollmentView] = {}
        self.logged = 0

    def apply(self, events: Iterable[LoggedEvent]) -> None:
        for event in events:
            self.logged += 1
            if event.topic == ENROLLMENT_ENTERED:
                self.views[event.stream_id] = EnrollmentView.entered(
                    event.stream_id, event.data, event.recorded_at, self.logged
                )
            elif event.topic in ENROLLMENT_TOPICS and event.stream_id in self.views:
                view = self.views[event.stream_id]
                self.views[event.stream_id] = view.folding(
                    event.topic, event.data, event.recorded_at
                )

    def _newest_first(self) -> list[EnrollmentView]:
        return sorted(self.views.values(), key=lambda view: view.position, reverse=True)

    async def page(
        self,
        campaign_id: UUID,
        *,
        status: EnrollmentStatus | None = None,
        step: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> EnrollmentPage:
        before = position_of(after)
        found = [
            view
            for view in self._newest_first()
            if view.campaign_id == campaign_id
            and (status is None or view.status is status)
            and (step is None or view.step == step)
            and (before is None or view.position < before)
        ]
        items = found[:limit]
        more = len(found) > limit
        return EnrollmentPage(items, cursor_at(items[-1].position) if more else None)

    async def of_customer(self, customer_id: UUID) -> list[EnrollmentView]:
        return [view for view in self._newest_first() if view.customer_id == customer_id]
