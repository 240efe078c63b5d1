"""Rate limits per API key and route class, checked after authentication (ADR 0015).

Every request counts against its key's bucket for its route class: `ingest` (signals,
customer data and providers' webhooks), `send` (messages and conversation replies), `read`
(every GET) and `admin` (every other change). Providers' webhooks carry no key: they count per
provider and client address. The probes, the metrics, the schema and unsubscribe links are
never limited. Over the limit the answer is 429 with `Retry-After` and a problem body.
A key's NATS messages spend the same buckets (`entrypoints.workers.nats_keys`): `create_app`
takes the process's limiter, which the service shares with its NATS workers.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from litestar.enums import ScopeType

from entrypoints.http.problems import problem
from entrypoints.http.rate_limiter import (
    Limit,
    RateLimited,
    RateLimiter,
    RouteClass,
    key_caller,
    over_limit,
)
from ports.api_keys import ApiKey

if TYPE_CHECKING:
    from collections.abc import Callable

    from litestar import Request, Response
    from litestar.types import ASGIApp, Receive, Scope, Send

    from entrypoints.settings import Settings

__all__ = [
    "RateLimited",
    "limiter_from",
    "rate_limit_middleware",
    "refuse_over_limit",
    "route_class",
]

# An opt-out must never be refused, and the probes and metrics must answer an overloaded
# service most of all.
_UNLIMITED = ("/health", "/ready", "/metrics", "/schema", "/v1/unsubscribe/")
_READS = frozenset({"GET", "HEAD", "OPTIONS"})
_INGEST = re.compile(
    r"/v1/events|/v1/customers|/v1/customers/[^/]+/(consents|suppressions)|/v1/webhooks/[^/]+"
)
_SEND = re.compile(r"/v1/messages|/v1/conversations/[^/]+/replies")
_WEBHOOKS = "/v1/webhooks/"


def route_class(method: str, path: str) -> RouteClass | None:
    """The class a request counts against; None for the routes that are never limited."""
    if path.startswith(_UNLIMITED):
        return None
    if method in _READS:
        return RouteClass.READ
    path = path.rstrip("/")
    if _INGEST.fullmatch(path):
        return RouteClass.INGEST
    if _SEND.fullmatch(path):
        return RouteClass.SEND
    return RouteClass.ADMIN


def limiter_from(settings: Settings) -> RateLimiter | None:
    """The limits the settings ask for; None when they are off."""
    if not settings.rate_limits:
        return None
    return RateLimiter(
        {
            RouteClass.INGEST: Limit(settings.rate_limit_ingest, settings.rate_limit_ingest_burst),
            RouteClass.SEND: Limit(settings.rate_limit_send, settings.rate_limit_send_burst),
            RouteClass.READ: Limit(settings.rate_limit_read, settings.rate_limit_read_burst),
            RouteClass.ADMIN: Limit(settings.rate_limit_admin, settings.rate_limit_admin_burst),
        }
    )


def refuse_over_limit(request: Request[Any, Any, Any], exc: RateLimited) -> Response[Any]:
    answer = problem(
        429,
        "rate-limited",
        "Too many requests",
        str(exc),
        route_class=exc.route_class.value,
        retry_after=exc.retry_after,
    )
    answer.headers["Retry-After"] = str(exc.retry_after)
    return answer


def _caller(scope: Scope, path: str) -> str:
    key = scope.get("auth")
    if isinstance(key, ApiKey):
        return key_caller(key.id)
    # A provider's webhook: per provider and address, as no key vouches for it.
    client = scope.get("client")
    address = client[0] if client else "unknown"
    provider = path.removeprefix(_WEBHOOKS).partition("/")[0] if path.startswith(_WEBHOOKS) else ""
    return f"webhook:{provider}:{address}"


def rate_limit_middleware(limiter: RateLimiter) -> Callable[[ASGIApp], ASGIApp]:
    """A middleware to place after authentication, which tells whose bucket to spend."""

    def wrap(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == ScopeType.HTTP:
                path = scope["path"]
                kind = route_class(scope["method"], path)
                if kind is not None:
                    limited = over_limit(limiter, kind, _caller(scope, path))
                    if limited is not None:
                        raise limited
            await app(scope, receive, send)

        return middleware

    return wrap
