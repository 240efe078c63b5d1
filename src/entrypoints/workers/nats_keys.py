"""An API key a NATS message carries, checked as HTTP checks it, and the rate limit it counts
against (ADR 0022, its amendment on rate limits; ADR 0015).

A message may carry a key as `Chorus-Key: <key>` or `Authorization: Bearer <key>`. A key that is
carried is always checked: unknown, revoked or expired is a 401. It then spends one unit of the
key's bucket for the message's route class, in the same limiter as HTTP's (one per process), so
that a key's HTTP requests and NATS messages share one budget: a send command counts as
`POST /v1/messages` (`send`), a signal message (one signal or a batch) as `POST /v1/events`
(`ingest`), a conversation reply as `POST /v1/conversations/{id}/replies` (`send`) and the
agent's other commands as their POSTs (`admin`). Over the limit it is a 429 with the seconds to
wait. The limiter never waits: a key over its limit is refused at once and nobody else notices.

A message without a key is not limited: NATS is the trusted boundary, whose accounts and
subject permissions say who may publish (ADR 0022), and each responder bounds what it takes at
once (`max_in_flight`). `CHORUS_NATS_REQUIRE_KEY` makes a key mandatory on every edge that acts
for a client: send commands and conversation commands answer a message without one with a 401
(`missing_key`), and a signal message without one is dead-lettered with that 401 as its reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from entrypoints.http.rate_limiter import RouteClass, key_caller, over_limit
from entrypoints.workers.nats_problems import NatsProblem

if TYPE_CHECKING:
    from nats.aio.msg import Msg

    from entrypoints.http.rate_limiter import RateLimiter
    from ports.api_keys import ApiKey, ApiKeyStore
    from ports.clock import Clock

__all__ = [
    "KEY_HEADER",
    "KeyRefused",
    "carried_key",
    "given_secret",
    "header",
    "missing_key",
    "nats_route_class",
    "spend",
    "unauthorized",
]

KEY_HEADER = "Chorus-Key"
_REFUSALS = {"revoked": "this API key was revoked", "expired": "this API key has expired"}


class KeyRefused(NatsProblem):
    """A message refused for its key, or for its key's rate limit: a problem naming no field
    (`errors: []`), with the headers a reply carries beside it (`Retry-After`)."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        *,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status, slug, title, detail, [], extra=extra, headers=headers)


def unauthorized(detail: str) -> KeyRefused:
    return KeyRefused(401, "unauthorized", "An API key is needed", detail)


def missing_key() -> KeyRefused:
    """The 401 for a message without a key where `CHORUS_NATS_REQUIRE_KEY` makes one mandatory."""
    return unauthorized(
        f"send an API key as '{KEY_HEADER}: <key>' or 'Authorization: Bearer <key>'"
    )


def header(msg: Msg, name: str) -> str | None:
    """A message header by case-insensitive name; None when absent or blank."""
    if not msg.headers:
        return None
    wanted = name.lower()
    for key, value in msg.headers.items():
        if key.lower() == wanted and value.strip():
            return value.strip()
    return None


def given_secret(msg: Msg) -> str | None:
    """The key a message carries, `Chorus-Key` or `Authorization: Bearer`; None without one."""
    secret = header(msg, KEY_HEADER)
    if secret is not None:
        return secret
    authorization = header(msg, "Authorization")
    if authorization is None:
        return None
    scheme, _, secret = authorization.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise unauthorized(f"send an API key as 'Authorization: Bearer <key>' or '{KEY_HEADER}'")
    return secret.strip()


async def carried_key(msg: Msg, keys: ApiKeyStore, clock: Clock) -> ApiKey | None:
    """The key the message carries, if it may be used now; None: it carries none."""
    secret = given_secret(msg)
    if secret is None:
        return None
    key = await keys.identify(secret)
    if key is None:
        raise unauthorized("this API key is not known")
    refusal = key.refusal(clock.now())
    if refusal is not None:
        raise unauthorized(_REFUSALS[refusal])
    return key


def nats_route_class(subject: str, prefix: str = "chorus") -> RouteClass | None:
    """The route class a message on `subject` counts against, as its HTTP route does; None for
    a subject no limit applies to."""
    if subject.startswith(f"{prefix}.signals."):
        return RouteClass.INGEST
    if subject == f"{prefix}.cmd.messages.send":
        return RouteClass.SEND
    command = subject.removeprefix(f"{prefix}.cmd.conversations.")
    if command != subject and command and "." not in command:
        return RouteClass.SEND if command == "reply" else RouteClass.ADMIN
    return None


def spend(limiter: RateLimiter | None, route_class: RouteClass | None, key: ApiKey) -> None:
    """Spends one unit of the key's bucket for the route class (the bucket its HTTP requests
    spend too); `KeyRefused` 429 over the limit, counted in `chorus_rate_limited_total`."""
    if limiter is None or route_class is None:
        return
    limited = over_limit(limiter, route_class, key_caller(key.id))
    if limited is None:
        return
    raise KeyRefused(
        429,
        "rate-limited",
        "Too many requests",
        str(limited),
        extra={"route_class": route_class.value, "retry_after": limited.retry_after},
        headers={"Retry-After": str(limited.retry_after)},
    )
