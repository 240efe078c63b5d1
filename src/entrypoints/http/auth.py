"""API keys as `Authorization: Bearer <key>`; guards check the key's role."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from ports.api_keys import ApiKey, ApiKeyStore, Role
from ports.clock import Clock

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from litestar.connection import ASGIConnection
    from litestar.handlers.base import BaseRouteHandler

__all__ = [
    "READERS",
    "ApiKeyAuthentication",
    "allow",
    "author",
    "check_team",
    "current_key",
    "every_team",
    "key_now",
]

PUBLIC_PATHS = {"/health", "/ready", "/metrics", "/schema", "/v1/unsubscribe/", "/v1/webhooks/"}
READERS = (Role.MARKETER, Role.AGENT, Role.AUDITOR, Role.SERVICE)
"""The roles that may read what marketers define: `allow(*READERS)`."""


_REFUSALS = {"revoked": "this API key was revoked", "expired": "this API key has expired"}
"""The 401 `detail` for a key that exists but may no longer be used, saying which."""


class ApiKeyAuthentication(AbstractAuthenticationMiddleware):
    """Every /v1 path needs a valid key."""

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        key = await key_now(connection)
        return AuthenticationResult(user=key, auth=key)


async def key_now(connection: ASGIConnection[Any, Any, Any, Any]) -> ApiKey:
    """The key the connection's `Authorization` header names, as the key store knows it now
    (within its cache's time); NotAuthorizedException (401) for no key, an unknown one (a
    rotated secret too), or one revoked or expired. A long request (the inbox's stream) asks
    again as it goes on."""
    header = connection.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise NotAuthorizedException("send an API key as 'Authorization: Bearer <key>'")
    container = connection.app.state.dishka_container
    keys: ApiKeyStore = await container.get(ApiKeyStore)
    key = await keys.identify(secret.strip())
    if key is None:
        raise NotAuthorizedException("this API key is not known")
    clock: Clock = await container.get(Clock)
    refusal = key.refusal(clock.now())
    if refusal is not None:
        raise NotAuthorizedException(_REFUSALS[refusal])
    return key


def current_key(connection: ASGIConnection[Any, Any, Any, Any]) -> ApiKey:
    key: ApiKey = connection.auth
    return key


def author(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """Who made a change, as it is recorded with the change: the key's name, role and id."""
    return current_key(connection).author


def allow(
    *roles: Role,
) -> Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]:
    """A guard that lets the given roles (and admin) through."""
    allowed = {Role.ADMIN, *roles}

    # async: Litestar runs a sync guard in a worker thread, a thread hop on every request.
    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        key = current_key(connection)
        if key.role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            raise PermissionDeniedException(
                f"role '{key.role.value}' may not do this; needs {names}"
            )

    guard.roles = frozenset(allowed)  # type: ignore[attr-defined]  # read by the docs' table
    return guard


def every_team(
    what: str,
) -> Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]:
    """A guard that refuses a key limited to teams: `what` is shared by every team (the rule
    set, templates, segments, triggers), so only a key acting for every team may change it."""

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        key = current_key(connection)
        if key.teams:
            raise PermissionDeniedException(
                f"this key acts for {', '.join(sorted(key.teams))} only, and {what} is every "
                "team's: only a key not limited to teams may change it"
            )

    return guard


def check_team(connection: ASGIConnection[Any, Any, Any, Any], team: str | None) -> None:
    """403 unless the request's key may act for `team` (a key limited to teams, another)."""
    key = current_key(connection)
    if not key.may_act_for(team):
        raise PermissionDeniedException(
            f"this key acts for {', '.join(sorted(key.teams))} only, not for {team or 'no team'}"
        )
