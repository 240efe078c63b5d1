"""A tiny ASGI fake HTTP provider on a background uvicorn thread, with failure knobs."""

from __future__ import annotations

import asyncio
import collections
import json
import math
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import parse_qsl

import uvicorn

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, MutableMapping
    from types import TracebackType

__all__ = ["FakeRequest", "FakeResponse", "HttpFake"]

_HANG_STEP = 0.02
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


class HttpFake:
    """Serves `handle` on 127.0.0.1 and a free port; knobs fail, hang or rate-limit requests."""

    def __init__(self) -> None:
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

    # lifecycle

    @property
    def base_url(self) -> str:
        """The URL the fake listens on; only once started."""
        if self._base_url is None:
            raise RuntimeError("the fake is not started")
        return self._base_url

    def start(self) -> str:
        """Starts serving in a background thread and returns the base URL."""
        if self._base_url is not None:
            return self._base_url
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._asgi,
            interface="asgi3",
            lifespan="off",
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
        self._base_url = f"http://127.0.0.1:{port}"
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

    def reset(self) -> None:
        """Clears the knobs, the records and the idempotency keys; ends hanging requests."""
        with self._lock:
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
        """Records a message once per idempotency key and returns its id (the first one's)."""
        with self._lock:
            if key is not None and key in self._ids:
                self.duplicates += 1
                return self._ids[key]
            made = new_id()
            if key is not None:
                self._ids[key] = made
            self.received.append(record)
            return made

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

    async def _asgi(
        self,
        scope: _Scope,
        receive: Callable[[], Awaitable[_Message]],
        send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ) -> None:
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
        response = (
            self.error_response(401, "unauthorized")
            if not self.authorized(request)
            else self._intercept()
        )
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
