"""Every error leaves as RFC 9457 problem details, mapped here in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar import Response
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from application.messages.request_message import IdempotencyKeyReused
from domain.shared.documents import DocumentInvalid
from domain.shared.errors import InvalidValue, NotFound
from entrypoints.http.edge import MAX_BODY_BYTES
from entrypoints.text_checks import InputRefused
from ports.directory import InvalidCursor
from ports.providers import InvalidSignature
from ports.templates import RenderError, TemplateNotFound

if TYPE_CHECKING:
    from collections.abc import Callable

    from litestar import Request
    from litestar.types import ExceptionHandlersMap

__all__ = [
    "PROBLEM_JSON",
    "bad_cursor",
    "exception_handlers",
    "invalid_document",
    "problem",
    "unrenderable",
]

PROBLEM_JSON = "application/problem+json"
_TYPE_BASE = "https://chorus.dev/problems/"


def problem(
    status: int, slug: str, title: str, detail: str | None = None, **extra: Any
) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {"type": _TYPE_BASE + slug, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _validation(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    errors = []
    for item in exc.extra or []:
        if isinstance(item, dict):
            message = str(item.get("message", ""))
            field = message.rpartition(" - at `")[2].rstrip("`") if " - at `" in message else None
            key = item.get("key")
            source = item.get("source")
            if field is None and key:
                field = f"$.{key}" if source == "body" else f"{source}.{key}"
            errors.append({"field": field or "$", "reason": message.partition(" - at `")[0]})
    return problem(400, "invalid-request", "The request is not valid", exc.detail, errors=errors)


def _http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    if isinstance(exc, NotAuthorizedException):
        return problem(401, "unauthorized", "An API key is needed", exc.detail)
    if isinstance(exc, PermissionDeniedException):
        return problem(403, "forbidden", "This key's role may not do that", exc.detail)
    slug = {
        404: "not-found",
        405: "method-not-allowed",
        413: "too-large",
        415: "unsupported-media-type",
    }.get(exc.status_code, "http-error")
    if exc.status_code == 413:
        detail = f"a request body may have at most {MAX_BODY_BYTES:,} bytes"
        return problem(413, slug, "The request body is too large", detail)
    return problem(exc.status_code, slug, exc.detail or "HTTP error")


def _refused(request: Request[Any, Any, Any], exc: InputRefused) -> Response[Any]:
    fault = exc.fault
    return problem(
        400,
        "invalid-request",
        "The request is not valid",
        str(exc),
        errors=[{"field": fault.path, "reason": fault.reason}],
    )


def _invalid(request: Request[Any, Any, Any], exc: InvalidValue) -> Response[Any]:
    return problem(
        422,
        "invalid-value",
        "A value was refused",
        str(exc),
        errors=[{"field": f"$.{exc.field}", "reason": exc.reason}],
    )


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


def _not_found(request: Request[Any, Any, Any], exc: NotFound) -> Response[Any]:
    return problem(404, "not-found", "Not found", str(exc))


def _template_missing(request: Request[Any, Any, Any], exc: TemplateNotFound) -> Response[Any]:
    return problem(
        422, "template-not-found", "Template not found", str(exc), errors=[{"field": "template"}]
    )


def unrenderable(exc: RenderError, field: str) -> Response[dict[str, Any]]:
    """The one render problem, on send and preview: 422 `render-error`, its `errors[0]` naming
    the field and what failed: the `variable`, or the `budget` spent and its `limit`."""
    errors = [{"field": field, "reason": str(exc), **exc.names}]
    return problem(422, "render-error", "The content cannot be rendered", str(exc), errors=errors)


def _unrenderable(request: Request[Any, Any, Any], exc: RenderError) -> Response[Any]:
    variable = exc.variable
    if variable is None:
        field = "$.content"
    elif variable.startswith("vars."):
        field = "$.variables." + variable.removeprefix("vars.")
    else:
        field = "$.customer_id"  # a profile attribute the customer does not have
    return unrenderable(exc, field)


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
    NotFound: _not_found,
    InvalidCursor: bad_cursor,
    TemplateNotFound: _template_missing,
    RenderError: _unrenderable,
    InvalidSignature: _forged,
    OverflowError: _out_of_range,
    Exception: _crash,
}
