"""A tiny ASGI fake HTTP provider on a background uvicorn thread, with failure knobs.

After accepting a new message a fake can call back with a signed status webhook (see
`StatusCallbacks`), and it can post an inbound message ("STOP") in its provider's format. The
times a fake reports come from the clock it is given (the wall's by default): a fake beside a
service on the manual clock reports on that clock.
The same knobs answer over HTTP under `/_fake/`, for a fake running in another process:
`POST /_fake/fail {"count": 3, "status": 503}`, `POST /_fake/hang {"seconds": 5, "accept": false}`,
`POST /_fake/rate_limit {"per_second": 10}`, `POST /_fake/reset`,
`POST /_fake/callbacks {"url": "...", "status": "delivered", "delay_seconds": 0}`,
`POST /_fake/inbound {"from": "+447700900123", "text": "STOP"}` and `GET /_fake/stats`.
"""

from __future__ import annotations

import asyncio
import collections
import json
import math
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Self
from urllib.parse import parse_qsl

import httpx
import msgspec
import uvicorn

from adapters.providers.fakes.webhooks import (
    FinalStatus,
    StatusCallbacks,
    Webhook,
    WebhookOutcome,
    WebhookPoster,
)
from adapters.system.clock import SystemClock

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, MutableMapping
    from types import TracebackType

    from ports.clock import Clock

__all__ = ["FakeRequest", "FakeResponse", "HttpFake"]

_HANG_STEP = 0.02
_CONTROL = "/_fake/"
_Scope = dict[str, Any]
_Message = dict[str, Any]


@dataclass(frozen=True, slots=True)
class FakeRequest:
    """One HTTP request as the fake saw it; header names are lower-case."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON; raises ValueError if it is not."""
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        """The body as a form; a repeated name keeps its last value."""
        return dict(parse_qsl(self.body.decode(), keep_blank_values=True))


@dataclass(frozen=True, slots=True)
class FakeResponse:
    """What the fake answers."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> Self:
        """A JSON answer."""
        merged = {"content-type": "application/json", **(headers or {})}
        return cls(status, json.dumps(payload).encode(), merged)


class _Fail(msgspec.Struct, forbid_unknown_fields=True):
    count: Annotated[int, msgspec.Meta(ge=0)] = 1
    status: Annotated[int, msgspec.Meta(ge=400, le=599)] = 500


class _Hang(msgspec.Struct, forbid_unknown_fields=True):
    seconds: Annotated[float, msgspec.Meta(ge=0)]
    accept: bool = False


class _RateLimit(msgspec.Struct, forbid_unknown_fields=True):
    per_second: Annotated[float, msgspec.Meta(gt=0)] | None = None


class _Callbacks(msgspec.Struct, forbid_unknown_fields=True):
    url: str | None = None
    status: FinalStatus = "delivered"
    delay_seconds: Annotated[float, msgspec.Meta(ge=0)] = 0.0


class _Inbound(msgspec.Struct, forbid_unknown_fields=True):
    sender: str = msgspec.field(name="from")
    text: str = "STOP"
    url: str | None = None


class HttpFake:
    """Serves `handle` on 127.0.0.1 and a free port; knobs fail, hang or rate-limit requests."""

    def __init__(
        self, *, callbacks: StatusCallbacks | None = None, clock: Clock | None = None
    ) -> None:
        self.clock: Clock = clock or SystemClock()
        """The time the fake's webhooks report."""
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self._stopping = threading.Event()
        self._base_url: str | None = None
        self.received: list[Any] = []
        self.duplicates = 0
        self.requests = 0
        self._ids: dict[str, str] = {}
        self._fail_count = 0
        self._fail_status = 500
        self._hang_seconds = 0.0
        self._hang_after_accept = False
        self._per_second: float | None = None
        self._recent: collections.deque[float] = collections.deque()
        self._generation = 0
        self._configured_callbacks = callbacks or StatusCallbacks()
        self._callbacks = self._configured_callbacks
        self.poster = WebhookPoster()

    # lifecycle

    @property
    def base_url(self) -> str:
        """The URL the fake listens on; only once started."""
        if self._base_url is None:
            raise RuntimeError("the fake is not started")
        return self._base_url

    def start(self, port: int = 0, host: str = "127.0.0.1") -> str:
        """Starts serving in a background thread (on a free port by default); returns the URL."""
        if self._base_url is not None:
            return self._base_url
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            sock.close()
            raise
        port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._asgi,
            interface="asgi3",
            lifespan="on",
            proxy_headers=False,
            log_config=None,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=2,
        )
        server = uvicorn.Server(config)
        self._stopping.clear()
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=type(self).__name__, daemon=True
        )
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                sock.close()
                raise RuntimeError(f"{type(self).__name__} did not start")
            time.sleep(0.01)
        self._server, self._thread, self._sock = server, thread, sock
        self._base_url = f"http://{host}:{port}"
        return self._base_url

    def stop(self) -> None:
        """Stops serving; hanging requests end at once."""
        self._stopping.set()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._sock is not None:
            self._sock.close()
        self._server, self._thread, self._sock = None, None, None
        self._base_url = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # knobs

    def fail_next(self, n: int = 1, status: int = 500) -> None:
        """Answers the next `n` requests with `status` and the provider's error body."""
        with self._lock:
            self._fail_count, self._fail_status = n, status

    def hang(self, seconds: float, *, accept: bool = False) -> None:
        """Delays every answer by `seconds`; with `accept`, after recording the message."""
        with self._lock:
            self._hang_seconds, self._hang_after_accept = seconds, accept

    def rate_limit(self, per_second: float | None) -> None:
        """Answers 429 beyond `per_second` requests in any second; None lifts the limit."""
        with self._lock:
            self._per_second = per_second
            self._recent.clear()

    def report_statuses(self, callbacks: StatusCallbacks | None) -> None:
        """From now on, calls back (or not, with None) after accepting a new message."""
        with self._lock:
            self._callbacks = callbacks or StatusCallbacks()

    @property
    def callbacks(self) -> StatusCallbacks:
        """Where and what the fake reports after accepting a message."""
        return self._callbacks

    @property
    def webhooks(self) -> list[WebhookOutcome]:
        """How each status webhook ended, in the order they ended."""
        return self.poster.outcomes

    @property
    def pending_webhooks(self) -> int:
        """Status webhooks not finished yet: delayed, in flight or waiting to be tried again."""
        return self.poster.pending

    def reset(self) -> None:
        """Clears the knobs, the records and the idempotency keys; ends hanging requests.

        Status callbacks go back to those the fake was made with; webhooks in flight still go.
        """
        self.poster.clear()
        with self._lock:
            self._callbacks = self._configured_callbacks
            self._generation += 1
            self._fail_count, self._fail_status = 0, 500
            self._hang_seconds, self._hang_after_accept = 0.0, False
            self._per_second = None
            self._recent.clear()
            self.received.clear()
            self._ids.clear()
            self.duplicates = 0
            self.requests = 0

    # for subclasses

    def accept(self, key: str | None, record: Any, new_id: Callable[[], str]) -> str:
        """Records a message once per idempotency key and returns its id (the first one's).

        A new message is then reported with a status webhook, if the fake calls back.
        """
        with self._lock:
            if key is not None and key in self._ids:
                self.duplicates += 1
                return self._ids[key]
            made = new_id()
            if key is not None:
                self._ids[key] = made
            self.received.append(record)
            callbacks = self._callbacks
        url = self.callback_url(record, callbacks)
        if url is not None:
            webhook = self.status_webhook(url, made, record, callbacks.status)
            if webhook is not None:
                self.poster.submit(webhook, callbacks)  # in the background: the answer goes now
        return made

    def callback_url(self, record: Any, callbacks: StatusCallbacks) -> str | None:
        """Where a message's status goes: the configured URL, unless the provider says otherwise."""
        return callbacks.url

    def status_webhook(
        self, url: str, message_id: str, record: Any, status: FinalStatus
    ) -> Webhook | None:
        """The signed webhook reporting `status` for an accepted message; None if there is none."""
        return None

    def inbound_webhook(self, url: str, sender: str, text: str) -> Webhook:
        """The signed webhook of a message a customer sent, e.g. "STOP"."""
        raise NotImplementedError(f"{type(self).__name__} has no inbound messages")

    async def send_inbound(
        self,
        sender: str,
        text: str = "STOP",
        *,
        url: str | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> httpx.Response:
        """Posts an inbound message webhook from the caller's loop, to `url` or the callback URL."""
        target = url or self._callbacks.url
        if target is None:
            raise ValueError("no URL to post the inbound message to")
        webhook = self.inbound_webhook(target, sender, text)
        if client is not None:
            return await client.post(webhook.url, content=webhook.body, headers=webhook.headers)
        async with httpx.AsyncClient(timeout=10.0) as owned:
            return await owned.post(webhook.url, content=webhook.body, headers=webhook.headers)

    def authorized(self, request: FakeRequest) -> bool:
        """Whether the request carries the right credentials."""
        return True

    def error_response(self, status: int, reason: str) -> FakeResponse:
        """The provider's error body for `status`."""
        return FakeResponse.json(status, {"error": reason})

    def handle(self, request: FakeRequest) -> FakeResponse:
        """Answers one authorized request that no knob intercepted."""
        return self.error_response(404, "not found")

    # the ASGI app

    def _intercept(self) -> FakeResponse | None:
        with self._lock:
            self.requests += 1
            if self._per_second is not None:
                now = time.monotonic()
                while self._recent and now - self._recent[0] >= 1.0:
                    self._recent.popleft()
                if len(self._recent) >= self._per_second:
                    return self.error_response(429, "rate limited")
                self._recent.append(now)
            if self._fail_count > 0:
                self._fail_count -= 1
                return self.error_response(self._fail_status, "injected failure")
        return None

    async def _hang(self, *, after_accept: bool) -> None:
        """Sleeps in short steps, so that `stop` and `reset` end a hang at once."""
        with self._lock:
            seconds = self._hang_seconds if self._hang_after_accept == after_accept else 0.0
            generation = self._generation
        deadline = time.monotonic() + seconds
        for _ in range(math.ceil(seconds / _HANG_STEP)):
            left = deadline - time.monotonic()
            if left <= 0 or self._stopping.is_set() or self._generation != generation:
                return
            await asyncio.sleep(min(_HANG_STEP, left))

    async def _control(self, request: FakeRequest) -> FakeResponse:
        """The knobs over HTTP, for a fake in another process."""
        action = request.path.removeprefix(_CONTROL)
        body = request.body or b"{}"
        if request.method == "GET" and action == "stats":
            with self._lock:
                stats = {
                    "requests": self.requests,
                    "received": len(self.received),
                    "duplicates": self.duplicates,
                }
            return FakeResponse.json(200, {**stats, "webhooks": self.poster.counts()})
        if request.method != "POST":
            return FakeResponse.json(405, {"error": "method not allowed"})
        if action == "fail":
            fail = msgspec.json.decode(body, type=_Fail)
            self.fail_next(fail.count, fail.status)
        elif action == "hang":
            hang = msgspec.json.decode(body, type=_Hang)
            self.hang(hang.seconds, accept=hang.accept)
        elif action == "rate_limit":
            self.rate_limit(msgspec.json.decode(body, type=_RateLimit).per_second)
        elif action == "reset":
            self.reset()
        elif action == "callbacks":
            wanted = msgspec.json.decode(body, type=_Callbacks)
            self.report_statuses(StatusCallbacks(wanted.url, wanted.status, wanted.delay_seconds))
        elif action == "inbound":
            inbound = msgspec.json.decode(body, type=_Inbound)
            callbacks = self._callbacks
            target = inbound.url or callbacks.url
            if target is None:
                return FakeResponse.json(409, {"error": "no callback URL is configured"})
            webhook = self.inbound_webhook(target, inbound.sender, inbound.text)
            outcome = await self.poster.post(webhook, callbacks)
            return FakeResponse.json(200, {"status": outcome.status, "error": outcome.error})
        else:
            return FakeResponse.json(404, {"error": f"no control {action!r}"})
        return FakeResponse.json(200, {"ok": True})

    async def _lifespan(
        self,
        receive: Callable[[], Awaitable[_Message]],
        send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.poster.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _asgi(
        self,
        scope: _Scope,
        receive: Callable[[], Awaitable[_Message]],
        send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        request = FakeRequest(
            method=scope["method"],
            path=scope["path"],
            query=scope.get("query_string", b"").decode(),
            headers={k.decode().lower(): v.decode() for k, v in scope["headers"]},
            body=b"".join(chunks),
        )
        if request.path.startswith(_CONTROL):
            try:
                response: FakeResponse | None = await self._control(request)
            except (msgspec.ValidationError, msgspec.DecodeError, ValueError) as error:
                response = FakeResponse.json(400, {"error": str(error)})
        elif not self.authorized(request):
            response = self.error_response(401, "unauthorized")
        else:
            response = self._intercept()
        if response is None:
            await self._hang(after_accept=False)
            try:
                response = self.handle(request)
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                response = self.error_response(400, f"bad request: {type(exc).__name__}")
            if response.status < 300:
                await self._hang(after_accept=True)
        headers = [(k.encode(), v.encode()) for k, v in response.headers.items()]
        headers.append((b"content-length", str(len(response.body)).encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})
