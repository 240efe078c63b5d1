"""Segments: define them by a condition, list them, read their members and their size."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from dishka.integrations.litestar import FromDishka, inject
from litestar import Controller, Request, Response, delete, get, post, put
from litestar.params import Parameter

from application.segments.define_segment import (
    DefinedSegment,
    DefineSegment,
    DeleteSegment,
    SegmentDraft,
    SegmentExists,
)
from domain.segments.aggregate import check_segment_key, segment_id
from domain.segments.conditions import ConditionInvalid, condition_document, decode_condition
from domain.shared.errors import NotFound
from entrypoints.http.auth import READERS, allow, author, every_team
from entrypoints.http.keys import Description, Key, Name, path_key
from entrypoints.http.problems import invalid_document, problem
from ports.api_keys import Role
from ports.segments import SegmentReadModel, SegmentSummary

__all__ = ["SegmentsController"]


class SegmentIn(msgspec.Struct, forbid_unknown_fields=True):
    """A definition; `condition` is in the language of docs/segments.md."""

    name: Name
    condition: dict[str, Any]
    description: Description = ""


class NewSegmentIn(SegmentIn, forbid_unknown_fields=True, kw_only=True):
    key: Key


class SegmentOut(msgspec.Struct):
    key: str
    id: UUID
    name: str
    description: str
    version: int
    condition: dict[str, Any]
    members: int
    updated_at: datetime
    links: dict[str, str]


class SegmentsOut(msgspec.Struct):
    items: list[SegmentOut]
    next_cursor: str | None


class MemberOut(msgspec.Struct):
    id: UUID
    entered_at: datetime


class MembersOut(msgspec.Struct):
    segment: str
    items: list[MemberOut]
    next_cursor: str | None


class CountOut(msgspec.Struct):
    segment: str
    members: int


def _links(key: str) -> dict[str, str]:
    return {"self": f"/v1/segments/{key}", "members": f"/v1/segments/{key}/members"}


def _out(summary: SegmentSummary) -> SegmentOut:
    return SegmentOut(
        summary.key,
        summary.segment_id,
        summary.name,
        summary.description,
        summary.version,
        summary.condition,
        summary.members,
        summary.updated_at,
        _links(summary.key),
    )


def _defined_out(defined: DefinedSegment, members: int) -> SegmentOut:
    segment = defined.segment
    return SegmentOut(
        segment.key,
        segment.id,
        segment.name,
        segment.description,
        segment.number,
        condition_document(segment.condition),
        members,
        segment.changed_at,
        _links(segment.key),
    )


def _draft(data: SegmentIn) -> SegmentDraft:
    try:
        condition = decode_condition(data.condition)
    except ConditionInvalid as error:
        raise error.under("condition") from None
    return SegmentDraft(data.name, data.description, condition)


def _key(key: str) -> str:
    return path_key(key, check_segment_key, "segment")


def _exists(request: Request[Any, Any, Any], exc: SegmentExists) -> Response[Any]:
    return problem(409, "segment-exists", "A segment with that key exists", str(exc))


class SegmentsController(Controller):
    path = "/v1/segments"
    tags = ["segments"]
    exception_handlers = {
        ConditionInvalid: invalid_document(
            "invalid-condition", "The segment's condition is not valid"
        ),
        SegmentExists: _exists,
    }

    @post(
        operation_id="createSegment",
        name="segments:create",
        guards=[allow(Role.MARKETER), every_team("a segment")],
        status_code=201,
        summary="Define a segment; its members are backfilled from history",
        description=(
            "Body: `{key, name, description, condition}` (docs/segments.md). 201 when created; "
            "200 when the key holds this very definition already (a retry); 409 when it holds "
            "another (PUT /v1/segments/{key} changes it). Members appear within moments, "
            "evaluated over every customer's recorded signals and profile. A segment carries "
            "no team (any team's campaigns and triggers may name it), so a key limited to "
            "teams may not define, change or delete one: 403."
        ),
    )
    @inject
    async def create_segment(
        self,
        data: NewSegmentIn,
        request: Request[Any, Any, Any],
        define: FromDishka[DefineSegment],
    ) -> Response[SegmentOut]:
        defined = await define(data.key, _draft(data), author(request), replace=False)
        return self._answer(defined)

    @put(
        "/{key:str}",
        operation_id="putSegment",
        name="segments:put",
        guards=[allow(Role.MARKETER), every_team("a segment")],
        status_code=200,
        summary="Create or change a segment (a new version); members are re-evaluated",
        description=(
            "Body: `{name, description, condition}`. 201 when created, else 200. A key limited "
            "to teams may not: 403 (a segment is every team's)."
        ),
    )
    @inject
    async def put_segment(
        self,
        key: str,
        data: SegmentIn,
        request: Request[Any, Any, Any],
        define: FromDishka[DefineSegment],
    ) -> Response[SegmentOut]:
        defined = await define(_key(key), _draft(data), author(request))
        return self._answer(defined)

    def _answer(self, defined: DefinedSegment) -> Response[SegmentOut]:
        key = defined.segment.key
        return Response(
            _defined_out(defined, 0),
            status_code=201 if defined.created else 200,
            headers={"Location": f"/v1/segments/{key}"},
        )

    @get(
        operation_id="listSegments",
        name="segments:list",
        guards=[allow(*READERS)],
        summary="Every segment by key, with its definition and size",
    )
    @inject
    async def list_segments(self, segments: FromDishka[SegmentReadModel]) -> SegmentsOut:
        return SegmentsOut([_out(s) for s in await segments.summaries()], next_cursor=None)

    @get(
        "/{key:str}",
        operation_id="getSegment",
        name="segments:get",
        guards=[allow(*READERS)],
        summary="A segment's definition in force and its size",
    )
    @inject
    async def get_segment(self, key: str, segments: FromDishka[SegmentReadModel]) -> SegmentOut:
        found = await segments.summary(_key(key))
        if found is None:
            raise NotFound(f"no segment {key!r}")
        return _out(found)

    @delete(
        "/{key:str}",
        operation_id="deleteSegment",
        name="segments:delete",
        guards=[allow(Role.MARKETER), every_team("a segment")],
        summary="Delete a segment: its members exit it; its history stays",
        description="A key limited to teams may not: 403 (a segment is every team's).",
    )
    @inject
    async def delete_segment(
        self, key: str, request: Request[Any, Any, Any], remove: FromDishka[DeleteSegment]
    ) -> None:
        await remove(_key(key), author(request))

    @get(
        "/{key:str}/members",
        operation_id="listSegmentMembers",
        name="segments:members",
        guards=[allow(*READERS)],
        summary="The segment's members, a page at a time (by customer id)",
        description="`?limit=` (1-1000, default 100) and `?after=` the previous `next_cursor`.",
    )
    @inject
    async def list_members(
        self,
        key: str,
        segments: FromDishka[SegmentReadModel],
        limit: Annotated[int, Parameter(ge=1, le=1000)] = 100,
        after: Annotated[str | None, Parameter(max_length=64)] = None,
    ) -> MembersOut:
        sid = await self._existing(key, segments)
        page = await segments.members(sid, after=after, limit=limit)
        return MembersOut(
            key, [MemberOut(m.customer_id, m.entered_at) for m in page.members], page.next_cursor
        )

    @get(
        "/{key:str}/count",
        operation_id="countSegmentMembers",
        name="segments:count",
        guards=[allow(*READERS)],
        summary="How many customers are in the segment now",
    )
    @inject
    async def count_members(self, key: str, segments: FromDishka[SegmentReadModel]) -> CountOut:
        sid = await self._existing(key, segments)
        return CountOut(key, await segments.count(sid))

    async def _existing(self, key: str, segments: SegmentReadModel) -> UUID:
        if await segments.summary(_key(key)) is None:
            raise NotFound(f"no segment {key!r}")
        return segment_id(key)
