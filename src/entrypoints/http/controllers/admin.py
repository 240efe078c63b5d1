"""Admin-only tools for tests and demos; the clock path exists only with CHORUS_CLOCK=manual."""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import cast

from dishka.integrations.litestar import FromDishka, inject
from litestar import Controller, post

from domain.shared.errors import InvalidValue
from entrypoints.http.auth import allow
from entrypoints.http.schemas import ClockIn, ClockOut
from ports.clock import Clock, SettableClock

__all__ = ["ClockController"]


class ClockController(Controller):
    path = "/v1/admin/clock"
    tags = ["admin"]
    guards = [allow()]

    @post(
        operation_id="setClock",
        name="admin:clock",
        status_code=200,
        summary="Set or advance the manual clock",
    )
    @inject
    async def set_clock(self, data: ClockIn, clock: FromDishka[Clock]) -> ClockOut:
        settable = cast(
            "SettableClock", clock
        )  # this controller is mounted only for a manual clock
        if data.set is not None and data.set.tzinfo is None:
            raise InvalidValue("set", "needs a time zone offset, e.g. Z")
        try:
            start = clock.now() if data.set is None else data.set.astimezone(UTC)
        except OverflowError:
            raise InvalidValue("set", "is outside the years 1 to 9999 in UTC") from None
        try:
            end = start + timedelta(seconds=data.advance_seconds or 0)
        except OverflowError:
            raise InvalidValue("advance_seconds", "moves the clock past the year 9999") from None
        if data.set is not None or data.advance_seconds:
            settable.set(end)
        return ClockOut(clock.now())
