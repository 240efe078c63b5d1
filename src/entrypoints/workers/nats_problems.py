"""The one problem every NATS edge refuses with (ADR 0022), and the one mapping from an error to
it, as HTTP maps the same error (`entrypoints.http.problems`, `conversation_commands.problem_of`).

A command (a send, a conversation command) answers a `NatsProblem` as an RFC 9457 problem reply,
its status in `Chorus-Status` and its `headers` beside it (`Retry-After`); a signal message, which
nobody answers, is dead-lettered with the problem's `reason`. A key's refusal (`nats_keys`) is
one of them.
"""

from __future__ import annotations

from typing import Any

from application.messages.request_message import IdempotencyKeyReused
from domain.customer.aggregate import CustomerWasErased
from domain.shared.errors import InvalidValue, NotFound
from entrypoints.conversation_commands import problem_of
from entrypoints.http.problems import NOT_JSON, not_json_reason, render_field
from entrypoints.text_checks import InputRefused
from ports.templates import RenderError, TemplateNotFound

__all__ = ["NatsProblem", "forbidden", "internal", "invalid", "not_json", "problem_for"]

_TYPE_BASE = "https://chorus.dev/problems/"  # as in entrypoints.http.problems


class NatsProblem(Exception):
    """An answer other than 200, raised where it is found: a problem's fields, the fields at
    fault (`errors`; None where it names none), its extension members (`extra`) and the headers
    a reply carries beside it."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        errors: list[dict[str, Any]] | None = None,
        *,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.errors = errors
        self.extra = extra or {}
        self.headers = headers or {}

    def body(self, *, errors_always: bool = False) -> dict[str, Any]:
        """The RFC 9457 problem object: `errors` where the problem has them (`[]` too), or
        always with `errors_always` (`[]` naming no field), then the extension members."""
        body: dict[str, Any] = {
            "type": _TYPE_BASE + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors is not None or errors_always:
            body["errors"] = self.errors or []
        body.update(self.extra)
        return body

    @property
    def reason(self) -> str:
        """As a dead letter's reason says it."""
        return f"{self.status} {self.slug}: {self.detail}"


def invalid(path: str, reason: str) -> NatsProblem:
    """A 400 about one field of the message (`header.<name>` for a header)."""
    return NatsProblem(
        400,
        "invalid-request",
        "The request is not valid",
        f"{path}: {reason}",
        [{"field": path, "reason": reason}],
    )


def not_json(reason: str, body: bytes) -> NatsProblem:
    """A 400: the message's `body` cannot be read as JSON at all, said as HTTP says it of a
    request's body (`invalid-json`, naming `$`)."""
    reason = not_json_reason(reason, body)
    return NatsProblem(400, *NOT_JSON, reason, [{"field": "$", "reason": reason}])


def forbidden(detail: str) -> NatsProblem:
    """A 403: the key's role may not do that, as HTTP's guards say it."""
    return NatsProblem(403, "forbidden", "This key's role may not do that", detail)


def internal() -> NatsProblem:
    """A 500: an error no problem answers (its responder logs it)."""
    return NatsProblem(500, "internal", "Something went wrong on our side", "internal error")


def problem_for(error: Exception) -> NatsProblem | None:
    """The problem a command's error answers with, as HTTP answers it; the problem itself when
    one was raised; None for an error no problem answers (an internal error)."""
    if isinstance(error, NatsProblem):
        return error
    found = problem_of(error)  # a conversation command's own refusal
    if found is not None:
        return NatsProblem(
            found.status, found.slug, found.title, found.detail, found.errors, extra=found.extra
        )
    if isinstance(error, InputRefused):
        return NatsProblem(
            400,
            "invalid-request",
            "The request is not valid",
            str(error),
            [{"field": fault.path, "reason": fault.reason} for fault in error.faults],
        )
    if isinstance(error, InvalidValue):
        return NatsProblem(
            422,
            "invalid-value",
            "A value was refused",
            str(error),
            [{"field": f"$.{error.field}", "reason": error.reason}],
        )
    if isinstance(error, NotFound):
        return NatsProblem(404, "not-found", "Not found", str(error))
    if isinstance(error, CustomerWasErased):
        return NatsProblem(409, "customer-erased", "The customer was erased", str(error))
    if isinstance(error, IdempotencyKeyReused):
        return NatsProblem(409, "idempotency-key-reused", "Idempotency key reused", str(error))
    if isinstance(error, TemplateNotFound):
        return NatsProblem(
            422,
            "template-not-found",
            "Template not found",
            str(error),
            [{"field": "$.template", "reason": str(error)}],
        )
    if isinstance(error, RenderError):
        return NatsProblem(
            422,
            "render-error",
            "The content cannot be rendered",
            str(error),
            [{"field": render_field(error), "reason": str(error), **error.names}],
        )
    return None
