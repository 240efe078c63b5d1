"""API keys over HTTP: admins create, list, read, rotate and revoke them; auditors list and
read them (never a secret), with each key's change log.

A secret is answered once, when a key is created or rotated; it is stored only as a hash.
Every change is written with an entry of the key's change log naming the acting key.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

import msgspec
from dishka.integrations.litestar import FromDishka, inject
from litestar import Controller, Request, Response, get, post
from litestar.exceptions import ValidationException

from application.access.create_key import CreateKey
from domain.shared.errors import NotFound
from domain.shared.times import time_fault
from entrypoints.http.auth import allow, author
from entrypoints.http.problems import problem
from ports.api_keys import ApiKeyStore, Role
from ports.clock import Clock

if TYPE_CHECKING:
    from ports.api_keys import ApiKey, KeyChange

__all__ = ["KeysController"]

_TEAM = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.-]*$")]


class KeyIn(msgspec.Struct, forbid_unknown_fields=True):
    """A new key: its name, role, the teams it is limited to (none: every team), when it
    expires (none: never) and, for an agent key, the agent it acts as."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    role: Role
    teams: Annotated[list[_TEAM], msgspec.Meta(max_length=100)] = []
    expires_at: Annotated[datetime, msgspec.Meta(tz=True)] | None = None
    agent: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None


class KeyOut(msgspec.Struct):
    """A key as stored: never its secret. `teams` empty: every team. `state`: active,
    expired or revoked."""

    id: UUID
    name: str
    role: str
    teams: list[str]
    agent: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    state: str


class KeyChangeOut(msgspec.Struct):
    change: str
    by: str
    at: datetime
    detail: dict[str, Any]


class KeyDetailOut(msgspec.Struct):
    """A key and its change log, oldest first."""

    key: KeyOut
    changes: list[KeyChangeOut]


class KeySecretOut(msgspec.Struct):
    """A key with its secret, shown this once: keep it, Chorus cannot show it again."""

    key: KeyOut
    secret: str


class KeysOut(msgspec.Struct):
    """Every key in one page: `next_cursor` is always null (keys are few)."""

    items: list[KeyOut]
    next_cursor: str | None


def _out(key: ApiKey, now: datetime) -> KeyOut:
    return KeyOut(
        id=key.id,
        name=key.name,
        role=key.role.value,
        teams=sorted(key.teams),
        agent=key.agent,
        created_at=key.created_at,
        expires_at=key.expires_at,
        revoked_at=key.revoked_at,
        state=key.refusal(now) or "active",
    )


def _change(change: KeyChange) -> KeyChangeOut:
    return KeyChangeOut(change.change, change.by, change.at, change.detail)


def _unknown(key_id: UUID) -> NotFound:
    return NotFound(f"no API key {key_id}")


class KeysController(Controller):
    path = "/v1/keys"
    tags = ["keys"]

    @post(
        guards=[allow()],
        operation_id="createKey",
        name="keys:create",
        status_code=201,
        summary="Create a key; the answer holds its secret, shown this once",
        description=(
            'Body: `{"name": "growth backend", "role": "service", "teams": ["growth"], '
            '"expires_at": "2027-06-01T00:00:00Z"}`. Roles: admin, marketer, agent, auditor, '
            "service. `teams` limits what the key may send as and read (admin and auditor keys "
            "see every team and take none); `agent` names the agent an agent key acts as, and "
            "an agent key must name one. An agent that is not registered: 422 naming "
            "`$.agent`; a team that does not exist (`POST /v1/teams`): 422 naming "
            "`$.teams[i]`."
        ),
    )
    @inject
    async def create_key(
        self,
        data: KeyIn,
        request: Request[Any, Any, Any],
        create: FromDishka[CreateKey],
        clock: FromDishka[Clock],
    ) -> KeySecretOut:
        now = clock.now()
        if data.expires_at is not None:
            reason = time_fault(data.expires_at)
            if reason is None and data.expires_at <= now:
                reason = "is not in the future"
            if reason is not None:
                raise ValidationException(
                    f"expires_at {reason}",
                    extra=[{"message": f"{reason} - at `$.expires_at`", "key": "expires_at"}],
                )
        created = await create(
            data.role,
            data.name,
            agent=data.agent,
            teams=data.teams,
            expires_at=data.expires_at,
            by=author(request),
        )
        return KeySecretOut(_out(created.key, now), created.secret)

    @get(
        guards=[allow(Role.AUDITOR)],
        operation_id="listKeys",
        name="keys:list",
        summary="Every key, oldest first; no secrets",
    )
    @inject
    async def list_keys(self, keys: FromDishka[ApiKeyStore], clock: FromDishka[Clock]) -> KeysOut:
        now = clock.now()
        return KeysOut([_out(key, now) for key in await keys.all_keys()], None)

    @get(
        "/{key_id:uuid}",
        guards=[allow(Role.AUDITOR)],
        operation_id="getKey",
        name="keys:get",
        summary="One key and its change log: who created, rotated and revoked it, and when",
    )
    @inject
    async def get_key(
        self, key_id: UUID, keys: FromDishka[ApiKeyStore], clock: FromDishka[Clock]
    ) -> KeyDetailOut:
        key = await keys.get(key_id)
        if key is None:
            raise _unknown(key_id)
        changes = await keys.changes(key_id)
        return KeyDetailOut(_out(key, clock.now()), [_change(c) for c in changes])

    @post(
        "/{key_id:uuid}/rotate",
        guards=[allow()],
        operation_id="rotateKey",
        name="keys:rotate",
        status_code=200,
        summary="A new secret for a key, shown this once; the old secret stops working at once",
        description=(
            "There is no grace period: a client switches to the new secret before the next "
            "request. Other Chorus processes refuse the old secret within a second. A revoked "
            "key cannot be rotated (409)."
        ),
    )
    @inject
    async def rotate_key(
        self,
        key_id: UUID,
        request: Request[Any, Any, Any],
        keys: FromDishka[ApiKeyStore],
        clock: FromDishka[Clock],
    ) -> Response[Any]:
        rotated = await keys.rotate(key_id, by=author(request))
        if rotated is None:
            if await keys.get(key_id) is None:
                raise _unknown(key_id)
            return problem(409, "key-revoked", "The key is revoked", f"API key {key_id} is revoked")
        return Response(KeySecretOut(_out(rotated.key, clock.now()), rotated.secret))

    @post(
        "/{key_id:uuid}/revoke",
        guards=[allow()],
        operation_id="revokeKey",
        name="keys:revoke",
        status_code=200,
        summary="Revoke a key: every Chorus process refuses it within a second (401 `revoked`)",
        description="Revoking a revoked key changes nothing and answers the key as it is.",
    )
    @inject
    async def revoke_key(
        self,
        key_id: UUID,
        request: Request[Any, Any, Any],
        keys: FromDishka[ApiKeyStore],
        clock: FromDishka[Clock],
    ) -> KeyOut:
        revoked = await keys.revoke(key_id, by=author(request))
        if revoked is None:
            raise _unknown(key_id)
        return _out(revoked, clock.now())
