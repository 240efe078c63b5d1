"""Admin-only tools for tests and demos; the clock path exists only with CHORUS_CLOCK=manual."""

from __future__ import annotations

from datetime import timedelta
from typing import cast

from dishka.integrations.litestar import FromDishka, inject
from litestar import Controller, post

from domain.shared.errors import InvalidValue
from entrypoints.http.auth import allow
from entrypoints.http.schemas import ClockIn, ClockOut
from ports.clock import Clock, ClockStore, SettableClock

__all__ = ["ClockController"]


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
            settable.set(data.set)
        if data.advance_seconds:
            settable.advance(timedelta(seconds=data.advance_seconds))
        await store.save(clock.now())  # a restart resumes here, not at wall time
        return ClockOut(clock.now())
