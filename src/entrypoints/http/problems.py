"""Every error leaves as RFC 9457 problem details, mapped here in one place."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from litestar import MediaType, Response
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.openapi.spec import (
    Components,
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Parameter,
    Reference,
    Schema,
)
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from application.messages.request_message import IdempotencyKeyReused
from domain.customer.aggregate import CustomerWasErased
from domain.shared.documents import DocumentInvalid
from domain.shared.errors import InvalidValue, NotFound
from entrypoints.http.body_faults import body_fault
from entrypoints.http.edge import EMPTY_BODY, MAX_BODY_BYTES, MAX_QUERY_BYTES
from entrypoints.text_checks import InputRefused, TextFault
from ports.conversation_roster import AgentOverCapacity
from ports.directory import InvalidCursor
from ports.providers import InvalidSignature
from ports.templates import RenderError, TemplateNotFound

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

    from litestar import Request
    from litestar.openapi.spec import OpenAPI, Operation
    from litestar.types import ExceptionHandlersMap

__all__ = [
    "NOT_JSON",
    "PROBLEM_JSON",
    "URI_TOO_LONG",
    "bad_cursor",
    "document_responses",
    "exception_handlers",
    "invalid_document",
    "not_json",
    "not_json_reason",
    "problem",
    "problem_body",
    "render_field",
    "unrenderable",
]

PROBLEM_JSON = "application/problem+json"
_SHOWN = 200
"""How much of a refused path segment a problem repeats."""
_KINDS = {
    "UUID": "a UUID",
    "int": "an integer",
    "float": "a number",
    "Decimal": "a number",
    "date": "a date",
    "datetime": "a date and time",
    "time": "a time",
    "timedelta": "a duration",
}
"""What a typed path parameter must be, as a problem says it."""
_TYPE_BASE = "https://chorus.dev/problems/"


_MISSING = re.compile(r"^Object missing required field `([^`]+)`$")
# How Litestar's validation says that a route which needs a body (`data`) was sent none; a
# field of the body missing is always said with its path (`- at $.data`).
_NO_BODY = "Object missing required field `data`"


def problem_body(
    status: int, slug: str, title: str, detail: str | None = None, **extra: Any
) -> dict[str, Any]:
    """The RFC 9457 problem object, for an answer that is no Litestar response (the HTTP
    server's own refusals)."""
    body: dict[str, Any] = {"type": _TYPE_BASE + slug, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    return body


def problem(
    status: int, slug: str, title: str, detail: str | None = None, **extra: Any
) -> Response[dict[str, Any]]:
    body = problem_body(status, slug, title, detail, **extra)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _validation(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    if str(exc.__cause__) == _NO_BODY:
        return not_json(EMPTY_BODY)
    errors = []
    in_body = None
    for item in exc.extra or []:
        if isinstance(item, dict):
            message = str(item.get("message", ""))
            field = message.rpartition(" - at `")[2].rstrip("`") if " - at `" in message else None
            key = item.get("key")
            # Litestar names the whole body `data`, and a parameter's place by its enum.
            source = getattr(item.get("source"), "value", item.get("source"))
            if source == "body":
                # Said again from the body itself, its keys and value objects' fields named.
                in_body = in_body or body_fault(request)
                if in_body is not None:
                    errors.append({"field": in_body[0], "reason": in_body[1]})
                    continue
            if field is None and key:
                if source == "body":
                    field = "$" if key == "data" else f"$.{key}"
                else:
                    field = f"{source}.{key}"
            reason = message.partition(" - at `")[0]
            # msgspec places a missing field at the object that lacks it: name the field.
            missing = _MISSING.match(reason)
            if missing:
                field = f"{field or '$'}.{missing.group(1)}"
            errors.append({"field": field or "$", "reason": reason})
    return problem(400, "invalid-request", "The request is not valid", exc.detail, errors=errors)


def _unparsed_parameter(request: Request[Any, Any, Any]) -> TextFault | None:
    """The path parameter of a route the path would match but for its value (`not-a-uuid` for
    `{customer_id:uuid}`): the router answers such a path with a bare 404, naming nothing."""
    segments = [part for part in request.scope["path"].split("/") if part]
    for route in request.app.routes:
        components = route.path_components
        if len(components) != len(segments):
            continue
        unparsed = None
        for component, segment in zip(components, segments, strict=True):
            if isinstance(component, str):
                if component != segment:
                    break
                continue
            if unparsed is None and component.parser is not None:
                try:
                    component.parser(segment)
                except (ValueError, ArithmeticError):
                    kind = _KINDS.get(component.type.__name__, "a value of its type")
                    reason = f"{segment[:_SHOWN]!r} is not {kind}"
                    unparsed = TextFault(f"path.{component.name}", reason)
        else:
            if unparsed is not None:
                return unparsed
    return None


def _http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    if isinstance(exc, NotFoundException) and isinstance(exc.__cause__, ValueError):
        fault = _unparsed_parameter(request)
        if fault is not None:
            return _refused(request, InputRefused(fault))
    if isinstance(exc, NotAuthorizedException):
        return problem(401, "unauthorized", "An API key is needed", exc.detail)
    if isinstance(exc, PermissionDeniedException):
        return problem(403, "forbidden", "This key's role may not do that", exc.detail)
    slug = {
        404: "not-found",
        405: "method-not-allowed",
        413: "too-large",
        414: URI_TOO_LONG[0],
        415: "unsupported-media-type",
    }.get(exc.status_code, "http-error")
    if exc.status_code == 413:
        detail = f"a request body may have at most {MAX_BODY_BYTES:,} bytes"
        return problem(413, slug, "The request body is too large", detail)
    if exc.status_code == 414:
        return problem(414, *URI_TOO_LONG, exc.detail)
    if exc.status_code == 400:  # Litestar could not decode the body
        return not_json(exc.detail)
    return problem(exc.status_code, slug, exc.detail or "HTTP error")


URI_TOO_LONG = "uri-too-long", "The request's URI is too long"
"""The slug and title of a request whose query string or target is longer than we read, whether
the service (`edge.MAX_QUERY_BYTES`) or its HTTP server (`server_protocol`) refuses it."""

NOT_JSON = "invalid-json", "The body is not JSON"
"""The slug and title of the one answer to a body that cannot be read as JSON, over HTTP and
NATS alike."""


def not_json_reason(reason: str, body: bytes | None = None) -> str:
    """Why a body is not JSON, in our words: an empty `body` as such, msgspec's words for an
    unfinished document said plainly, any other reason as it is."""
    if body is not None and not body.strip():
        return EMPTY_BODY
    if reason == "Input data was truncated":  # msgspec's words for an unfinished document
        return "the JSON ends before it is complete, or holds an unfinished \\u escape"
    return reason


def not_json(reason: str, body: bytes | None = None) -> Response[dict[str, Any]]:
    """The one answer to a body that cannot be read as JSON, whichever route reads it; a
    handler that reads the `body` itself passes it, for an empty one to be named as such."""
    reason = not_json_reason(reason, body)
    return problem(400, *NOT_JSON, reason, errors=[{"field": "$", "reason": reason}])


def _refused(request: Request[Any, Any, Any], exc: InputRefused) -> Response[Any]:
    return problem(
        400,
        "invalid-request",
        "The request is not valid",
        str(exc),
        errors=[{"field": fault.path, "reason": fault.reason} for fault in exc.faults],
    )


def _invalid(request: Request[Any, Any, Any], exc: InvalidValue) -> Response[Any]:
    return problem(
        422,
        "invalid-value",
        "A value was refused",
        str(exc),
        errors=[{"field": _json_path(exc.field), "reason": exc.reason}],
    )


def _json_path(field: str) -> str:
    """A field of the body as a JSON path: `$.text`, `$[1].text` for an item of a list."""
    return f"${field}" if field.startswith("[") else f"$.{field}"


def invalid_document(
    slug: str, title: str
) -> Callable[[Request[Any, Any, Any], DocumentInvalid], Response[Any]]:
    """A handler that refuses a document (a segment's condition, a trigger's `on`): 422, with
    where in the body and why."""

    def refuse(request: Request[Any, Any, Any], exc: DocumentInvalid) -> Response[Any]:
        return problem(
            422, slug, title, str(exc), errors=[{"field": exc.path, "reason": exc.reason}]
        )

    return refuse


def _conflict(request: Request[Any, Any, Any], exc: IdempotencyKeyReused) -> Response[Any]:
    return problem(409, "idempotency-key-reused", "Idempotency key reused", str(exc))


def _over_capacity(request: Request[Any, Any, Any], exc: AgentOverCapacity) -> Response[Any]:
    # Any command whose commit would put an agent past their capacity (a reopening by reply).
    return problem(409, "agent-at-capacity", "The agent has no free capacity", str(exc))


def _not_found(request: Request[Any, Any, Any], exc: NotFound) -> Response[Any]:
    return problem(404, "not-found", "Not found", str(exc))


def _erased(request: Request[Any, Any, Any], exc: CustomerWasErased) -> Response[Any]:
    return problem(409, "customer-erased", "The customer was erased", str(exc))


def _template_missing(request: Request[Any, Any, Any], exc: TemplateNotFound) -> Response[Any]:
    return problem(
        422,
        "template-not-found",
        "Template not found",
        str(exc),
        errors=[{"field": "$.template", "reason": str(exc)}],
    )


def unrenderable(exc: RenderError, field: str) -> Response[dict[str, Any]]:
    """The one render problem, on send and preview: 422 `render-error`, its `errors[0]` naming
    the field and what failed: the `variable`, or the `budget` spent and its `limit`."""
    errors = [{"field": field, "reason": str(exc), **exc.names}]
    return problem(422, "render-error", "The content cannot be rendered", str(exc), errors=errors)


def render_field(exc: RenderError) -> str:
    """Where in a send request a render failed: the variable missing, else the content."""
    variable = exc.variable
    if variable is None:
        return "$.content"
    if variable.startswith("vars."):
        return "$.variables." + variable.removeprefix("vars.")
    return "$.customer_id"  # a profile attribute the customer does not have


def _unrenderable(request: Request[Any, Any, Any], exc: RenderError) -> Response[Any]:
    return unrenderable(exc, render_field(exc))


def _forged(request: Request[Any, Any, Any], exc: InvalidSignature) -> Response[Any]:
    return problem(401, "invalid-signature", "Invalid webhook signature", str(exc) or None)


def bad_cursor(request: Request[Any, Any, Any], exc: ValueError) -> Response[Any]:
    """A page's `?after=` that is no cursor it gave: for `InvalidCursor` and its like."""
    return problem(
        400,
        "invalid-request",
        "The request is not valid",
        str(exc),
        errors=[{"field": "query.after", "reason": str(exc)}],
    )


def _out_of_range(request: Request[Any, Any, Any], exc: OverflowError) -> Response[Any]:
    # The edge checks the times and numbers it knows of; this answers for any it missed.
    return problem(400, "out-of-range", "A value is out of range", str(exc))


def _crash(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    import structlog

    structlog.get_logger("chorus.http").exception("request failed", path=request.url.path)
    return problem(HTTP_500_INTERNAL_SERVER_ERROR, "internal", "Something went wrong on our side")


exception_handlers: ExceptionHandlersMap = {
    ValidationException: _validation,
    HTTPException: _http,
    InvalidValue: _invalid,
    InputRefused: _refused,
    IdempotencyKeyReused: _conflict,
    AgentOverCapacity: _over_capacity,
    NotFound: _not_found,
    CustomerWasErased: _erased,
    InvalidCursor: bad_cursor,
    TemplateNotFound: _template_missing,
    RenderError: _unrenderable,
    InvalidSignature: _forged,
    OverflowError: _out_of_range,
    Exception: _crash,
}


_PROBLEM_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    required=["type", "title", "status"],
    properties={
        "type": Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.URI),
        "title": Schema(type=OpenAPIType.STRING),
        "status": Schema(type=OpenAPIType.INTEGER, minimum=400, maximum=599),
        "detail": Schema(type=OpenAPIType.STRING),
        "errors": Schema(
            type=OpenAPIType.ARRAY,
            items=Schema(
                type=OpenAPIType.OBJECT,
                properties={
                    "field": Schema(type=OpenAPIType.STRING),
                    "reason": Schema(type=OpenAPIType.STRING),
                },
            ),
        ),
    },
    description="RFC 9457 problem details; `errors` names each refused field and why",
)
_WHY = {
    400: "The request is not valid: a parameter, the JSON or its shape",
    401: "No API key, an unknown or revoked one, or a bad webhook signature",
    403: "This key's role may not do that",
    404: "Nothing has that id or key",
    409: (
        "It exists already, its status does not allow that, or its idempotency key was used"
        " for another request"
    ),
    413: "The body is over the request limit, or the batch has too many signals",
    414: f"The query string is over {MAX_QUERY_BYTES:,} bytes",
    415: "The body is not JSON",
    422: "A value was refused: each one is named in `errors`",
    429: "This key is over its rate limit for this kind of request; `Retry-After` says when to retry",
}
# Problems that the shape of an operation does not tell.
_ALSO = {
    "activateCampaign": (409,),  # a paused or archived campaign
    "approveMessage": (409,),  # settled or expired already; a key reused
    "editHeldMessage": (409, 422),  # as approveMessage; content that does not render
    "rejectHeldMessage": (409,),  # as approveMessage
    "assignConversation": (409,),  # held by another agent; no free capacity; a key reused
    "changeConsents": (409,),  # an erased customer
    "changeSuppression": (409,),  # an erased customer
    "createCampaign": (409,),
    "createSegment": (409,),
    "createTrigger": (409,),
    "dryRunCampaign": (400, 413, 415, 422),  # a body read by the handler, as simulateRules
    "editCampaign": (409,),  # an archived campaign
    "findCustomer": (404,),  # no customer has the identity
    "pauseCampaign": (409,),  # a draft or an archived campaign
    "publishRules": (413, 415, 422),  # the rule document is read as it comes, not documented
    # a signed body that is no webhook of that provider; its sender over the ingest limit
    "receiveWebhook": (401, 413, 422, 429),
    "rotateKey": (409,),  # a revoked key
    "requestMessage": (404, 409),  # no such customer; an idempotency key used for another
    "resumeCampaign": (409,),  # a draft or an archived campaign
    "simulateRules": (400, 413, 415, 422),
    # agents, teams, routing and the agent's commands (docs/conversations.md)
    "registerAgent": (409,),  # another agent under the key
    "createTeam": (409,),
    "getRouting": (404,),  # none published yet
    "publishRouting": (400, 413, 415, 422),  # read as it comes, as publishRules
    "addConversationNote": (409,),  # an idempotency key used for another note
    "replyToConversation": (409,),  # an idempotency key used for another request
    "snoozeConversation": (409,),  # a resolved conversation
    "transferConversation": (409,),  # no free capacity; an idempotency key reused
}
_CREATE_OR_CHANGE = {
    "createCampaign",
    "createTeam",
    "registerAgent",
    "createSegment",
    "createTrigger",
    "publishTemplate",
    "putSegment",
    "putTrigger",
    "upsertCustomer",
}
"""Operations that answer 201 when they create and 200 when they change (or repeat), one body."""
_PAGES = {"unsubscribePage"}
"""Operations that answer people, not programs: their problems are HTML pages."""


def _answers(operation: Operation, *, public: bool) -> set[int]:
    """The problems an operation can answer, from its shape."""
    answers = set(_ALSO.get(operation.operation_id or "", ()))
    parameters = operation.parameters or []
    if parameters or operation.request_body is not None:
        answers.add(400)
    places = {p.param_in for p in parameters if isinstance(p, Parameter)}
    if "path" in places:
        answers.add(404)
    if "query" in places:
        answers.add(422)  # a value that parses but the domain refuses: an identity, a time
        answers.add(414)  # a query string over edge.MAX_QUERY_BYTES
    if operation.request_body is not None:
        answers |= {413, 415, 422}
    if not public:
        answers |= {401, 403, 429}  # 429: entrypoints.http.rate_limits
    return answers


def _created_or_changed(responses: dict[str, OpenAPIResponse | Reference]) -> None:
    answer = responses.get("201") or responses.get("200")
    if isinstance(answer, OpenAPIResponse):
        responses["201"] = replace(answer, description="Created")
        responses["200"] = replace(answer, description="Changed, or the same again")


def document_responses(openapi: OpenAPI, *, public_paths: Collection[str]) -> None:
    """Every operation documents each status it can answer, the problem details among them,
    and whether it needs a key (Litestar documents one success status, and its own 400 in a
    shape Chorus never sends)."""
    components = openapi.components = openapi.components or Components()
    components.schemas = {**(components.schemas or {}), "Problem": _PROBLEM_SCHEMA}
    problem_json = {
        PROBLEM_JSON: OpenAPIMediaType(schema=Reference("#/components/schemas/Problem"))
    }
    page = {MediaType.HTML.value: OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))}
    for path, item in (openapi.paths or {}).items():
        public = any(path.startswith(prefix) for prefix in public_paths)
        for operation in (item.get, item.put, item.post, item.delete, item.patch):
            if operation is None:
                continue
            if public:
                operation.security = []
            content = page if operation.operation_id in _PAGES else problem_json
            responses = operation.responses = dict(operation.responses or {})
            if operation.operation_id in _CREATE_OR_CHANGE:
                _created_or_changed(responses)
            for status in sorted(_answers(operation, public=public)):
                responses[str(status)] = OpenAPIResponse(description=_WHY[status], content=content)
