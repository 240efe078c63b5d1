"""Triggers: define what starts a campaign (a signal, a segment entry or exit); read firings."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from dishka.integrations.litestar import FromDishka, inject
from litestar import Controller, Request, Response, delete, get, post, put
from litestar.params import Parameter

from application.queries.triggers import TriggerQueries
from application.triggers.define_trigger import (
    DefinedTrigger,
    DefineTrigger,
    DeleteTrigger,
    TriggerDraft,
    TriggerExists,
)
from domain.triggers.aggregate import check_trigger_key
from domain.triggers.definition import TriggerInvalid, decode_on, on_document
from entrypoints.http.auth import READERS, allow, author, every_team
from entrypoints.http.keys import Description, Key, Name, path_key
from entrypoints.http.problems import bad_cursor, invalid_document, problem
from ports.api_keys import Role
from ports.triggers import FiringRecord, InvalidFiringCursor, TriggerSummary

__all__ = ["TriggersController"]


class TriggerIn(msgspec.Struct, forbid_unknown_fields=True):
    """A definition; `on` is in the language of docs/triggers.md."""

    name: Name
    on: dict[str, Any]
    description: Description = ""


class NewTriggerIn(TriggerIn, forbid_unknown_fields=True, kw_only=True):
    key: Key


class TriggerOut(msgspec.Struct):
    key: str
    id: UUID
    name: str
    description: str
    version: int
    on: dict[str, Any]
    updated_at: datetime
    links: dict[str, str]


class TriggersOut(msgspec.Struct):
    items: list[TriggerOut]
    next_cursor: str | None


class FiringOut(msgspec.Struct):
    id: UUID
    trigger_version: int
    customer_id: UUID
    source_kind: str
    source_event_id: str
    occurred_at: datetime
    recorded_at: datetime
    fired_at: datetime
    signal_type: str | None
    signal_event_id: str | None
    segment: str | None
    exit_reason: str | None


class FiringsOut(msgspec.Struct):
    trigger: str
    items: list[FiringOut]
    next_cursor: str | None


def _links(key: str) -> dict[str, str]:
    return {"self": f"/v1/triggers/{key}", "firings": f"/v1/triggers/{key}/firings"}


def _out(summary: TriggerSummary) -> TriggerOut:
    return TriggerOut(
        summary.key,
        summary.trigger_id,
        summary.name,
        summary.description,
        summary.version,
        summary.on,
        summary.updated_at,
        _links(summary.key),
    )


def _defined_out(defined: DefinedTrigger) -> TriggerOut:
    trigger = defined.trigger
    return TriggerOut(
        trigger.key,
        trigger.id,
        trigger.name,
        trigger.description,
        trigger.number,
        on_document(trigger.on),
        trigger.changed_at,
        _links(trigger.key),
    )


def _firing_out(firing: FiringRecord) -> FiringOut:
    return FiringOut(
        firing.firing_id,
        firing.trigger_version,
        firing.customer_id,
        firing.source_kind,
        f"{firing.source_stream_id}:{firing.source_version}",
        firing.source_occurred_at,
        firing.source_recorded_at,
        firing.fired_at,
        firing.signal_type,
        firing.signal_event_id,
        firing.segment_key,
        firing.exit_reason,
    )


def _draft(data: TriggerIn) -> TriggerDraft:
    try:
        on = decode_on(data.on)
    except TriggerInvalid as error:
        raise error.under("on") from None
    return TriggerDraft(data.name, data.description, on)


def _key(key: str) -> str:
    return path_key(key, check_trigger_key, "trigger")


def _exists(request: Request[Any, Any, Any], exc: TriggerExists) -> Response[Any]:
    return problem(409, "trigger-exists", "A trigger with that key exists", str(exc))


class TriggersController(Controller):
    path = "/v1/triggers"
    tags = ["triggers"]
    exception_handlers = {
        TriggerInvalid: invalid_document(
            "invalid-trigger", "The trigger's definition is not valid"
        ),
        TriggerExists: _exists,
        InvalidFiringCursor: bad_cursor,
    }

    @post(
        operation_id="createTrigger",
        name="triggers:create",
        guards=[allow(Role.MARKETER), every_team("a trigger")],
        status_code=201,
        summary="Define a trigger; it fires on source events recorded from now on",
        description=(
            "Body: `{key, name, description, on}` (docs/triggers.md). 201 when created; 200 "
            "when the key holds this very definition already (a retry); 409 when it holds "
            "another (PUT /v1/triggers/{key} changes it). A trigger carries no team (any "
            "team's campaigns may start on its firings), so a key limited to teams may not "
            "define, change or delete one: 403."
        ),
    )
    @inject
    async def create_trigger(
        self,
        data: NewTriggerIn,
        request: Request[Any, Any, Any],
        define: FromDishka[DefineTrigger],
    ) -> Response[TriggerOut]:
        defined = await define(data.key, _draft(data), author(request), replace=False)
        return self._answer(defined)

    @put(
        "/{key:str}",
        operation_id="putTrigger",
        name="triggers:put",
        guards=[allow(Role.MARKETER), every_team("a trigger")],
        status_code=200,
        summary="Create or change a trigger (a new version, unless the definition is the same)",
        description=(
            "Body: `{name, description, on}`. 201 when created, else 200. A key limited to "
            "teams may not: 403 (a trigger is every team's)."
        ),
    )
    @inject
    async def put_trigger(
        self,
        key: str,
        data: TriggerIn,
        request: Request[Any, Any, Any],
        define: FromDishka[DefineTrigger],
    ) -> Response[TriggerOut]:
        defined = await define(_key(key), _draft(data), author(request))
        return self._answer(defined)

    def _answer(self, defined: DefinedTrigger) -> Response[TriggerOut]:
        return Response(
            _defined_out(defined),
            status_code=201 if defined.created else 200,
            headers={"Location": f"/v1/triggers/{defined.trigger.key}"},
        )

    @get(
        operation_id="listTriggers",
        name="triggers:list",
        guards=[allow(*READERS)],
        summary="Every trigger by key, with its definition in force",
    )
    @inject
    async def list_triggers(self, triggers: FromDishka[TriggerQueries]) -> TriggersOut:
        return TriggersOut([_out(t) for t in await triggers.list()], next_cursor=None)

    @get(
        "/{key:str}",
        operation_id="getTrigger",
        name="triggers:get",
        guards=[allow(*READERS)],
        summary="A trigger's definition in force",
    )
    @inject
    async def get_trigger(self, key: str, triggers: FromDishka[TriggerQueries]) -> TriggerOut:
        return _out(await triggers.get(key))

    @delete(
        "/{key:str}",
        operation_id="deleteTrigger",
        name="triggers:delete",
        guards=[allow(Role.MARKETER), every_team("a trigger")],
        summary="Delete a trigger: it fires no more; its firings are kept for a PUT of the key",
        description="A key limited to teams may not: 403 (a trigger is every team's).",
    )
    @inject
    async def delete_trigger(
        self, key: str, request: Request[Any, Any, Any], remove: FromDishka[DeleteTrigger]
    ) -> None:
        await remove(_key(key), author(request))

    @get(
        "/{key:str}/firings",
        operation_id="listTriggerFirings",
        name="triggers:firings",
        guards=[allow(*READERS)],
        summary="What the trigger fired on, newest first, a page at a time",
        description=(
            "`?limit=` (1-1000, default 100) and `?after=` the previous `next_cursor`. "
            "404 for an unknown or deleted trigger, as its definition."
        ),
    )
    @inject
    async def list_firings(
        self,
        key: str,
        triggers: FromDishka[TriggerQueries],
        limit: Annotated[int, Parameter(ge=1, le=1000)] = 100,
        after: Annotated[str | None, Parameter(max_length=64)] = None,
    ) -> FiringsOut:
        page = await triggers.firings(key, after=after, limit=limit)
        return FiringsOut(key, [_firing_out(f) for f in page.firings], page.next_cursor)
