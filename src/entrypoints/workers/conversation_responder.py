"""The agent's commands over NATS request/reply: `<prefix>.cmd.conversations.<command>`.

Commands: `reply`, `note`, `snooze`, `resolve`, `reopen`, `assign`, `transfer`, `tags`,
`priority`. The payload is
the HTTP body of `POST /v1/conversations/{id}/<route>` with `conversation_id` beside it, and
`agent` (the acting agent's key) when an agent acts: then only on their teams' conversations,
as over HTTP (`assign` and `transfer` keep their body's own `agent`, the one given the
conversation: the acting agent is `acting_agent` there). The reply is the HTTP answer's JSON with
`Chorus-Status: 200`, or an RFC 9457 problem with its status (400 for a body that cannot be
read, naming the field). Responders share a queue group: each command is answered by one
service process.

A retry is safe as over HTTP: `reply`, `note`, `assign` and `transfer` take an `Idempotency-Key`
header (or `idempotency_key` field; both given, the same key, else a 400 naming both), and a
retry under it does nothing again but answers what the first did (a reply or a note with
`repeated: true`; an assignment or a transfer as it was answered); the same key on another
request is a 409. `snooze`, `resolve`,
`reopen`, `tags` and `priority` set a state: they take the key and need none, the same command
again on a conversation that stands so recording nothing (`changed: false`).

A command may carry an API key (`Chorus-Key` or `Authorization: Bearer`, as send commands do):
it is checked (unknown, revoked or expired: 401; a role other than agent, service or admin:
403) and spends that key's rate limit as the command's HTTP route does (`reply`: `send`, the
others: `admin`; over it, a 429 with `retry_after`). The key then decides who acts, by the rule
HTTP follows (`application.conversations.actors`: `acting_agent_key`, `actor_of`): an agent
key acts as its agent, and a body naming another agent as the acting one is a 403 naming the
field; an agent key naming no agent is a 403; an admin or service key acts as the agent the
body names, or else as itself (recorded as the key, as over HTTP). A key limited to teams acts
on those teams' conversations only (`403 not-on-team` otherwise), as over HTTP.

A command without a key is admitted by NATS's own permissions (ADR 0022): it acts as the body's
`agent`, on that agent's teams, or, naming none, as the service on any team. With
`CHORUS_NATS_REQUIRE_KEY` on, it is a 401 problem instead, as a send command without one is:
nobody acts as a named agent on a publish permission alone.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

import msgspec

from application.conversations.actors import Actor, MayNotAct, acting_agent_key, actor_of
from domain.conversation.aggregate import ActingAgent
from domain.shared.documents import field_named, field_of
from domain.shared.keys import KEY_PATTERN
from entrypoints.conversation_commands import COMMANDS
from entrypoints.text_checks import line_fault, raw_fault
from entrypoints.workers.command_responder import IDEMPOTENCY_HEADER, STATUS_HEADER
from entrypoints.workers.nats_keys import (
    carried_key,
    missing_key,
    nats_route_class,
    spend,
)
from entrypoints.workers.nats_problems import (
    NatsProblem,
    forbidden,
    internal,
    invalid,
    not_json,
    problem_for,
)
from entrypoints.workers.queue_responder import QueueResponder
from ports.api_keys import Role

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from structlog.typing import FilteringBoundLogger

    from entrypoints.conversation_commands import ConversationDesk
    from entrypoints.http.rate_limiter import RateLimiter
    from ports.api_keys import ApiKey, ApiKeyStore
    from ports.clock import Clock
    from ports.staff import StaffDirectory

__all__ = ["ConversationCommandResponder", "conversation_subject"]

_MAX_KEY = 200
_ACTORS = frozenset({Role.AGENT, Role.SERVICE, Role.ADMIN})  # as the HTTP routes' guards
_encoder = msgspec.json.Encoder()


def conversation_subject(command: str, prefix: str = "chorus") -> str:
    """The subject a conversation command is answered on (`*` for every command)."""
    return f"{prefix}.cmd.conversations.{command}"


class _Envelope(msgspec.Struct, kw_only=True):
    """What a NATS command carries beside the HTTP body: the conversation, and who acts."""

    conversation_id: UUID
    agent: Annotated[str, msgspec.Meta(pattern=KEY_PATTERN)] | None = None


class ConversationCommandResponder(QueueResponder):
    """Answers the agent's commands from a NATS queue group."""

    what = "conversation command"

    def __init__(
        self,
        nc: Client,
        desk: ConversationDesk,
        staff: StaffDirectory,
        *,
        keys: ApiKeyStore | None = None,
        clock: Clock | None = None,
        limiter: RateLimiter | None = None,
        require_key: bool = False,
        prefix: str = "chorus",
        queue: str = "chorus-commands",
        logger: FilteringBoundLogger | None = None,
        max_in_flight: int = 32,
    ) -> None:
        if require_key and (keys is None or clock is None):
            raise ValueError("require_key needs the key store and a clock")
        super().__init__(nc, conversation_subject("*", prefix), queue, logger, max_in_flight)
        self.desk = desk
        self.staff = staff
        self.prefix = prefix
        self.keys = keys
        self.clock = clock
        self.limiter = limiter
        self.require_key = require_key

    async def stop(self, *, grace: float = 30.0) -> None:
        """Stops taking commands, lets those received finish (cancelled after `grace` s)."""
        sub, self._sub = self._sub, None
        if sub is None:
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(sub.drain(), timeout=grace)  # type: ignore[no-untyped-call]
        if self._in_flight:
            _, late = await asyncio.wait(set(self._in_flight), timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        self.log.info("conversation command responder stopped")

    async def _receive(self, msg: Msg) -> None:
        if not msg.reply:
            self.log.warning("conversation command without a reply subject dropped")
            return
        await self._hand_over(msg)

    async def _answer(self, msg: Msg) -> None:
        command = msg.subject.rpartition(".")[2]
        extra_headers: dict[str, str] = {}
        try:
            status, body = 200, await self._run(command, msg)
        except Exception as error:
            problem = problem_for(error)
            if problem is None:
                self.log.exception("conversation command failed", command=command)
                problem = internal()
            status, body, extra_headers = problem.status, problem.body(), problem.headers
        headers = {
            STATUS_HEADER: str(status),
            "Content-Type": "application/json" if status == 200 else "application/problem+json",
            **extra_headers,
        }
        try:
            await self.nc.publish(msg.reply, _encoder.encode(body), headers=headers)
        except Exception:
            self.log.exception("conversation command reply failed", status=status)
            return
        self.log.info("conversation command answered", command=command, status=status)

    async def _run(self, command: str, msg: Msg) -> dict[str, Any]:
        shape = COMMANDS.get(command)
        if shape is None:
            known = ", ".join(sorted(COMMANDS))
            raise NatsProblem(
                404, "not-found", "No such command", f"no command {command!r}; known: {known}"
            )
        carried = await self._check_key(msg)
        fault = raw_fault(msg.data)
        if fault is not None:
            raise invalid(fault.path, fault.reason)
        try:
            document = msgspec.json.decode(msg.data)
        except msgspec.DecodeError as error:
            raise not_json(str(error), msg.data) from None
        if not isinstance(document, dict):
            raise invalid("$", "a command is a JSON object")
        # `agent` names who acts, except where the body has an `agent` of its own (the one an
        # assignment or a transfer gives the conversation to): there, `acting_agent` does.
        acting_field = "acting_agent" if "agent" in shape.__struct_fields__ else "agent"
        envelope_fields = {
            name: document.pop(field)
            for name, field in (("conversation_id", "conversation_id"), ("agent", acting_field))
            if field in document
        }
        try:
            envelope = msgspec.convert(envelope_fields, _Envelope, str_keys=True)
        except msgspec.ValidationError as error:
            path, reason = field_of(error)
            raise invalid(path.replace("$.agent", f"$.{acting_field}", 1), reason) from None
        try:
            # Read as HTTP reads the body (Litestar converts leniently), so both edges answer a
            # value alike: `{"until": 7}` is a time long past on each, not a type error on one.
            data = msgspec.convert(document, shape, str_keys=True, strict=False)
        except msgspec.ValidationError as error:
            raise invalid(*field_named(error)) from None
        key = _idempotency_key(msg)
        actor = await self._actor(carried, envelope.agent, acting_field)
        method = getattr(self.desk, command)
        answer: dict[str, Any] = await method(envelope.conversation_id, actor, data, key)
        return answer

    async def _check_key(self, msg: Msg) -> ApiKey | None:
        """The key the command carries, if any: checked, its role too, and its limit spent; a
        401 without one when `require_key` says a key is mandatory."""
        if self.keys is None or self.clock is None:
            return None
        key = await carried_key(msg, self.keys, self.clock)
        if key is None:
            if self.require_key:
                raise missing_key()
            return None
        spend(self.limiter, nats_route_class(msg.subject, self.prefix), key)
        if key.role not in _ACTORS:
            names = ", ".join(sorted(r.value for r in _ACTORS))
            raise forbidden(f"role '{key.role.value}' may not do this; needs {names}")
        return key

    async def _actor(self, key: ApiKey | None, named: str | None, field: str) -> Actor:
        """Who acts: as the key would over HTTP when the command carries one (the body's
        `field` naming the acting agent only where the key lets it); without a key, the agent
        named, or the service."""
        if key is None:
            if named is None:
                return Actor(f"nats ({self.prefix}.cmd.conversations)")
            return Actor(named, ActingAgent(named, await self.staff.teams_of(named)))
        try:
            acting = acting_agent_key(key, named, field)
            agent = (
                None if acting is None else ActingAgent(acting, await self.staff.teams_of(acting))
            )
            return actor_of(key, key.author, agent)
        except MayNotAct as refused:
            raise _may_not_act(refused) from None


def _may_not_act(refused: MayNotAct) -> NatsProblem:
    """A key that may not act on the conversation, or not as the agent the body names: 403, as
    HTTP refuses the key (with the body's field, when naming another agent is why)."""
    if refused.field is None:
        return forbidden(refused.detail)
    field = f"$.{refused.field}"
    return NatsProblem(
        403,
        "forbidden",
        "This key may not act as that agent",
        f"{field}: {refused.detail}",
        [{"field": field, "reason": refused.detail}],
    )


def _idempotency_key(msg: Msg) -> str | None:
    for name, value in (msg.headers or {}).items():
        if name.lower() == IDEMPOTENCY_HEADER.lower() and value.strip():
            key = value.strip()
            if len(key) > _MAX_KEY:
                raise invalid(f"header.{IDEMPOTENCY_HEADER}", f"longer than {_MAX_KEY} characters")
            unclean = line_fault(key)
            if unclean is not None:
                raise invalid(f"header.{IDEMPOTENCY_HEADER}", unclean)
            return key
    return None
