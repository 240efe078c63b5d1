"""Send requests over NATS request/reply: `<prefix>.cmd.messages.send` answers with the decision.

The payload is the HTTP body of `POST /v1/messages`; the reply is the recorded decision as JSON
with `Chorus-Status: 200`, or an RFC 9457 problem with the matching `Chorus-Status`. Responders
share a queue group, so each request is answered by exactly one service process.

NATS is a trusted internal boundary, secured by its own accounts and subject permissions
(ADR 0022): a command may come without a key (origin `nats`). A command that carries one
(`Chorus-Key: <key>` or `Authorization: Bearer <key>`) is checked as HTTP checks it: an unknown,
revoked or expired key is a 401 problem, a role that may not send or a team the key may not act
for a 403, and the decision names the key (`nats:key:<id>`). `CHORUS_NATS_REQUIRE_KEY` makes the
key mandatory (without one, a 401 problem), as it does on conversation commands and signals. A
command with a key spends that key's `send` budget, the one its `POST /v1/messages` spend too
(`nats_keys`): over it, a 429 problem with `retry_after` and a `Retry-After` header.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import msgspec
import structlog
from opentelemetry import trace

from adapters.system.trace_context import context_from
from domain.message.origin import NATS, nats_origin
from domain.shared.documents import field_named, json_fault
from domain.shared.errors import InvalidValue
from entrypoints.http.schemas import MessageIn
from entrypoints.idempotency_keys import request_key
from entrypoints.text_checks import line_fault, raw_fault
from entrypoints.tracing import CORRELATION_ATTRIBUTE, tracer
from entrypoints.workers.nats_keys import (
    KEY_HEADER,
    carried_key,
    missing_key,
    nats_route_class,
    spend,
)
from entrypoints.workers.nats_keys import header as _header
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
    from uuid import UUID

    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from structlog.typing import FilteringBoundLogger

    from application.messages.request_message import RequestMessage
    from application.queries.customers import CustomerQueries
    from application.queries.decisions import DecisionQueries
    from domain.customer.identities import IdentityNormalizer
    from entrypoints.http.rate_limiter import RateLimiter
    from ports.api_keys import ApiKey, ApiKeyStore
    from ports.clock import Clock

__all__ = [
    "CORRELATION_HEADER",
    "IDEMPOTENCY_HEADER",
    "KEY_HEADER",
    "STATUS_HEADER",
    "SendCommandResponder",
    "send_subject",
]

STATUS_HEADER = "Chorus-Status"
CORRELATION_HEADER = "Chorus-Correlation-Id"
IDEMPOTENCY_HEADER = "Idempotency-Key"
REPEATED_HEADER = "Chorus-Repeated"
_SENDERS = frozenset({Role.ADMIN, Role.SERVICE, Role.MARKETER, Role.AGENT})  # as POST /v1/messages
_ACCEPTABLE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_MAX_KEY = 200  # as MessageIn.idempotency_key
_decoder = msgspec.json.Decoder(MessageIn)
_encoder = msgspec.json.Encoder()


def send_subject(prefix: str = "chorus") -> str:
    """The subject send requests are answered on."""
    return f"{prefix}.cmd.messages.send"


@dataclass(frozen=True, slots=True)
class _Reply:
    """What goes back to the requester: a status, a JSON body and extra headers."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class SendCommandResponder(QueueResponder):
    """Answers send requests from a NATS queue group; each request is decided and recorded once."""

    what = "send command"

    def __init__(
        self,
        nc: Client,
        request_message: RequestMessage,
        decisions: DecisionQueries,
        customers: CustomerQueries,
        normalizer: IdentityNormalizer,
        *,
        keys: ApiKeyStore,
        clock: Clock,
        require_key: bool = False,
        limiter: RateLimiter | None = None,
        prefix: str = "chorus",
        queue: str = "chorus-commands",
        logger: FilteringBoundLogger | None = None,
        max_in_flight: int = 64,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        super().__init__(nc, send_subject(prefix), queue, logger, max_in_flight)
        self.request_message = request_message
        self.decisions = decisions
        self.customers = customers
        self.normalizer = normalizer
        self.keys = keys
        self.clock = clock
        self.require_key = require_key
        self.limiter = limiter
        self.route_class = nats_route_class(self.subject, prefix)

    async def stop(self, *, grace: float = 30.0) -> None:
        """Stops taking requests, lets those received finish (cancelled after `grace` s)."""
        sub, self._sub = self._sub, None
        if sub is None:
            return
        deadline = asyncio.get_running_loop().time() + grace
        try:
            # Unsubscribes, then waits until every request already delivered is handed over.
            await asyncio.wait_for(sub.drain(), timeout=grace)  # type: ignore[no-untyped-call]
        except Exception as error:  # a closed or draining connection: nothing more arrives
            self.log.warning("draining the send command subscription failed", error=repr(error))
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        pending = set(self._in_flight)
        if pending:
            remaining = max(0.0, deadline - asyncio.get_running_loop().time())
            _, late = await asyncio.wait(pending, timeout=remaining)
            if late:
                self.log.warning("send commands cancelled mid-flight", count=len(late))
                for task in late:
                    task.cancel()
                await asyncio.gather(*late, return_exceptions=True)
        self.log.info("send command responder stopped")

    async def _receive(self, msg: Msg) -> None:
        """The subscription callback: hands each request to a task of its own, never raises."""
        try:
            if not msg.reply:
                self.log.warning(
                    "send command without a reply subject dropped",
                    correlation_id=self._given_correlation_id(msg),
                    size=len(msg.data),
                )
                return
            await self._hand_over(msg)
        except Exception:
            self.log.exception("send command could not be handled")

    @staticmethod
    def _given_correlation_id(msg: Msg) -> str | None:
        given = _header(msg, CORRELATION_HEADER)
        return given if given is not None and _ACCEPTABLE_ID.match(given) else None

    async def _answer(self, msg: Msg) -> None:
        """Decides one request and replies; every failure becomes a problem reply."""
        # As over HTTP: the caller's correlation id, else one of ours, given before anything
        # is decided so the message, its dispatch, the provider call and its webhook carry it.
        given = self._given_correlation_id(msg) or uuid.uuid4().hex
        started = time.perf_counter()
        bound = {"correlation_id": given}
        with (
            tracer().start_as_current_span(
                "send command",
                context=context_from(msg.headers),
                kind=trace.SpanKind.SERVER,
                record_exception=False,  # its message may quote personal data
                attributes={"messaging.destination.name": msg.subject},
            ) as span,
            structlog.contextvars.bound_contextvars(**bound),
        ):
            try:
                reply = await self._decide(msg)
            except Exception as error:
                problem = problem_for(error)
                if problem is None:
                    self.log.exception("send command failed")
                    problem = internal()
                reply = _Reply(
                    problem.status,
                    _encoder.encode(problem.body(errors_always=True)),
                    {"Content-Type": "application/problem+json", **problem.headers},
                )
            correlation_id = structlog.contextvars.get_contextvars().get("correlation_id")
            span.set_attribute(CORRELATION_ATTRIBUTE, str(correlation_id or ""))
            span.set_attribute("chorus.status", reply.status)
            headers = {STATUS_HEADER: str(reply.status), **reply.headers}
            if correlation_id:
                headers[CORRELATION_HEADER] = str(correlation_id)
            try:
                await self.nc.publish(msg.reply, reply.body, headers=headers)
            except Exception:
                self.log.exception("send command reply failed", status=reply.status)
                return
            log = self.log.info if reply.status < 500 else self.log.warning
            log(
                "send command answered",
                status=reply.status,
                ms=round((time.perf_counter() - started) * 1000, 2),
            )

    async def _key(self, msg: Msg) -> ApiKey | None:
        """The key the command carries, checked as HTTP checks it, its rate limit spent; None:
        sent without one (never limited)."""
        key = await carried_key(msg, self.keys, self.clock)
        if key is None:
            if self.require_key:
                raise missing_key()
            return None
        # As over HTTP: the limit is spent once the key is known, before its role is looked at.
        spend(self.limiter, self.route_class, key)
        if key.role not in _SENDERS:
            names = ", ".join(sorted(r.value for r in _SENDERS))
            raise forbidden(f"role '{key.role.value}' may not do this; needs {names}")
        structlog.contextvars.bind_contextvars(key_id=str(key.id))
        return key

    async def _decide(self, msg: Msg) -> _Reply:
        key = await self._key(msg)
        fault = raw_fault(msg.data)
        if fault is not None:
            raise invalid(fault.path, fault.reason)
        try:
            data = _decoder.decode(msg.data)
        except msgspec.ValidationError as error:
            # A typed read may stop at a field before it finds the body is no JSON at all.
            broken = json_fault(msg.data)
            if broken is not None:
                raise not_json(broken, msg.data) from None
            raise invalid(*field_named(error)) from None
        except msgspec.DecodeError as error:
            raise not_json(str(error), msg.data) from None
        if (data.customer_id is None) == (data.identity is None):
            raise invalid("$.customer_id", "exactly one of customer_id and identity")
        if key is not None and not key.may_act_for(data.team):
            raise forbidden(
                f"this key acts for {', '.join(sorted(key.teams))} only, "
                f"not for {data.team or 'no team'}"
            )
        idempotency = request_key(_header(msg, IDEMPOTENCY_HEADER), data.idempotency_key)
        if idempotency is not None and len(idempotency) > _MAX_KEY:
            raise invalid(f"header.{IDEMPOTENCY_HEADER}", f"longer than {_MAX_KEY} characters")
        unclean = None if idempotency is None else line_fault(idempotency)
        if unclean is not None:
            raise invalid(f"header.{IDEMPOTENCY_HEADER}", unclean)
        if data.customer_id is not None:
            customer_id = data.customer_id
        else:
            assert data.identity is not None
            customer_id = await self._by_identity(data.identity)
        decided = await self.request_message(
            customer_id,
            data.send_request(),
            idempotency_key=data.scoped_key(idempotency),
            origin=NATS if key is None else nats_origin(key.id),
            content=data.message_content(
                structlog.contextvars.get_contextvars().get("correlation_id")
            ),
        )
        structlog.contextvars.bind_contextvars(
            decision_id=str(decided.decision_id), repeated=decided.repeated
        )
        view = await self.decisions.by_id(decided.decision_id)
        return _Reply(
            200,
            _encoder.encode(view),
            {"Content-Type": "application/json", REPEATED_HEADER: str(decided.repeated).lower()},
        )

    async def _by_identity(self, text: str) -> UUID:
        try:
            identity = self.normalizer.parse(text)
        except InvalidValue as error:
            raise NatsProblem(
                422,
                "invalid-value",
                "A value was refused",
                f"identity: {error.reason}",
                [{"field": "$.identity", "reason": error.reason}],
            ) from None
        return (await self.customers.by_identity(identity)).id
