"""Admin-only tools for tests and demos; the clock path exists only with CHORUS_CLOCK=manual."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import cast

from dishka.integrations.litestar import FromDishka, inject
from litestar import Controller, post

from domain.shared.errors import InvalidValue
from entrypoints.http.auth import allow
from entrypoints.http.schemas import ClockIn, ClockOut
from ports.clock import Clock, ClockStore, SettableClock

__all__ = ["ClockController"]

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
_WITHIN = f"the clock stays from {EARLIEST:%Y} to {LATEST:%Y}: windows and deadlines count from it"


class ClockController(Controller):
    path = "/v1/admin/clock"
    tags = ["admin"]
    guards = [allow()]

    @post(
        operation_id="setClock",
        name="admin:clock",
        status_code=200,
        summary="Set or advance the manual clock; it keeps its time across restarts",
    )
    @inject
    async def set_clock(
        self, data: ClockIn, clock: FromDishka[Clock], store: FromDishka[ClockStore]
    ) -> ClockOut:
        settable = cast(
            "SettableClock", clock
        )  # this controller is mounted only for a manual clock
        if data.set is not None:
            if data.set.tzinfo is None:
                raise InvalidValue("set", "needs a time zone offset, e.g. Z")
            if not EARLIEST <= data.set < LATEST:
                raise InvalidValue("set", _WITHIN)
        start = data.set or clock.now()
        advance = data.advance_seconds or 0
        if advance >= (LATEST - start).total_seconds():
            raise InvalidValue("advance_seconds", _WITHIN)
        if data.set is not None or advance:
            settable.set(start + timedelta(seconds=advance))
        await store.save(clock.now())  # a restart resumes here, not at wall time
        return ClockOut(clock.now())
