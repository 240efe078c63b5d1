"""The routing document in force, and publishing a new version."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dishka.integrations.litestar import FromDishka, inject
from litestar import Controller, Request, Response, get, put

from application.conversations.routing_document import (
    PublishedRouting,
    PublishRouting,
    RoutingQueries,
)
from domain.conversation.routing_reader import RoutingInvalid, routing_document
from entrypoints.http.auth import READERS, allow, author
from entrypoints.http.problems import problem
from entrypoints.text_checks import raw_fault

if TYPE_CHECKING:
    from domain.conversation.routing import RoutingPolicy

__all__ = ["RoutingController"]


def _out(published: PublishedRouting) -> dict[str, Any]:
    return {
        "version": published.policy.version,
        "published_at": published.published_at.isoformat(),
        "author": published.author,
        "routing": routing_document(published.policy.document),
    }


def _version_out(policy: RoutingPolicy) -> dict[str, Any]:
    return {"version": policy.version, "routing": routing_document(policy.document)}


def _invalid(request: Request[Any, Any, Any], exc: RoutingInvalid) -> Response[Any]:
    return problem(
        422,
        "invalid-routing",
        "The routing document is not valid",
        f"{len(exc.faults)} problem(s); nothing was published",
        errors=[{"field": fault.path, "reason": fault.reason} for fault in exc.faults],
    )


class RoutingController(Controller):
    path = "/v1/routing"
    tags = ["routing"]
    exception_handlers = {RoutingInvalid: _invalid}

    @get(
        operation_id="getRouting",
        name="routing:get",
        guards=[allow(*READERS)],
        summary="The routing document in force, its version, who published it and when",
        description="404 until a routing document is published.",
    )
    @inject
    async def get_routing(self, routing: FromDishka[RoutingQueries]) -> dict[str, Any]:
        return _out(await routing.current())

    @get(
        "/versions/{version:int}",
        operation_id="getRoutingVersion",
        name="routing:version",
        guards=[allow(*READERS)],
        summary="A published routing version, as the decisions that cite it were routed by",
    )
    @inject
    async def get_routing_version(
        self, version: int, routing: FromDishka[RoutingQueries]
    ) -> dict[str, Any]:
        return _version_out(await routing.version(version))

    @put(
        operation_id="publishRouting",
        name="routing:publish",
        guards=[allow()],
        status_code=200,
        summary="Publish a routing document as the next version (docs/conversations.md)",
        description=(
            "The body is the routing document. It is checked whole against the teams and "
            "segments that exist: a fault is a 422 naming each JSON path (`$.rules[0].team`) "
            "and nothing is stored. The document in force, sent again, publishes nothing "
            "(`Chorus-Changed: false`)."
        ),
    )
    @inject
    async def publish_routing(
        self, request: Request[Any, Any, Any], publish: FromDishka[PublishRouting]
    ) -> Response[Any]:
        body = await request.body()
        # Read as it comes, as the rules are: what the edge refuses first, by its JSON path.
        fault = raw_fault(body)
        if fault is not None:
            raise RoutingInvalid(fault.path, fault.reason)
        published = await publish(body, author(request))
        return Response(
            _out(published),
            status_code=200,
            headers={"Chorus-Changed": str(published.changed).lower()},
        )
