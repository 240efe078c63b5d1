"""The raw event log for auditors: bounded pages, each read in chunks as it is sent."""

from __future__ import annotations

from typing import TYPE_CHECKING

from application.audit.refusals import AuditQueryRefused

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from ports.audit import AuditedEvent, AuditLog, LogCursor, LogFilter, LogPlan

__all__ = ["MAX_PAGE", "ReadAuditLog", "check_period"]

MAX_PAGE = 10_000
_CHUNK = 500


def check_period(where: LogFilter) -> None:
    """A period must not end before it starts."""
    if where.since is not None and where.until is not None and where.until < where.since:
        raise AuditQueryRefused("until", "is before since")


class ReadAuditLog:
    """Pages of the log as stored, in the order events became visible; a page is planned
    first (its places and the next cursor, to be told before its events), then read a chunk
    at a time, so neither a page nor the log is ever held whole."""

    def __init__(self, log: AuditLog, chunk: int = _CHUNK) -> None:
        self.log = log
        self.chunk = chunk

    @staticmethod
    def check(where: LogFilter, limit: int) -> None:
        """Refuses what `plan` would refuse, before anything is read (or written)."""
        check_period(where)
        if not 1 <= limit <= MAX_PAGE:
            raise AuditQueryRefused("limit", f"must be from 1 to {MAX_PAGE}")

    async def plan(self, where: LogFilter, after: LogCursor, limit: int) -> LogPlan:
        self.check(where, limit)
        return await self.log.plan(where, after, limit)

    async def events(self, where: LogFilter, plan: LogPlan) -> AsyncIterator[AuditedEvent]:
        places = plan.places
        for start in range(0, len(places), self.chunk):
            for event in await self.log.read(where, places[start : start + self.chunk]):
                yield event

    async def end(self) -> LogCursor:
        return await self.log.end()
