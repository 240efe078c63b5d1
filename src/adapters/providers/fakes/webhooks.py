"""How the fakes call back: signed webhooks posted after a delay, retried while the target is down.

The poster writes HTTP/1.1 itself over kept-alive connections, not with httpx: one httpx
client tops out near 1,500 requests a second on a small machine, and a fake under a benchmark
must call back as fast as it accepts messages. It reads what a webhook answer needs: the status,
and a body delimited by Content-Length, chunks or the end of the connection.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ssl
import threading
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

__all__ = [
    "FINAL_STATUSES",
    "FinalStatus",
    "StatusCallbacks",
    "Webhook",
    "WebhookOutcome",
    "WebhookPoster",
]

FinalStatus = Literal["delivered", "failed", "bounced", "complained"]
FINAL_STATUSES: tuple[FinalStatus, ...] = ("delivered", "failed", "bounced", "complained")

# The target refused the request itself: sending it again cannot help. Anything else but a 2xx
# (5xx, 404 while routes load, 409 for a message not recorded yet, 429) is tried again.
_FINAL_REFUSALS = frozenset({400, 401, 403, 405, 413, 415, 422})
_BROKEN = (OSError, EOFError, ValueError, asyncio.LimitOverrunError)  # EOFError: a short read
_NO_BODY = frozenset({204, 304})


@dataclass(frozen=True, slots=True)
class StatusCallbacks:
    """What a fake reports once it has accepted a new message, where, and how patiently.

    `url` None sends nothing (Twilio still uses a message's own StatusCallback). Attempts are
    spaced by `backoff_seconds`, doubled each time up to `max_backoff_seconds`.
    """

    url: str | None = None
    status: FinalStatus = "delivered"
    delay_seconds: float = 0.0
    attempts: int = 8
    backoff_seconds: float = 0.25
    max_backoff_seconds: float = 2.0

    def __post_init__(self) -> None:
        if self.status not in FINAL_STATUSES:
            raise ValueError(f"status must be one of {', '.join(FINAL_STATUSES)}")
        if self.url is not None and urlsplit(self.url).scheme not in ("http", "https"):
            raise ValueError("a callback URL is http:// or https://")
        if self.attempts < 1 or self.delay_seconds < 0 or self.backoff_seconds < 0:
            raise ValueError("attempts must be at least 1 and the waits not negative")


@dataclass(frozen=True, slots=True)
class Webhook:
    """One signed request, ready to post: the signature covers exactly this URL and body."""

    url: str
    headers: dict[str, str]
    body: bytes
    message_id: str | None = None  # the provider's id of the message it reports on


@dataclass(frozen=True, slots=True)
class WebhookOutcome:
    """How posting one webhook ended: the last answer's status, or None if none came."""

    url: str
    message_id: str | None
    status: int | None
    attempts: int
    error: str | None = None

    @property
    def delivered(self) -> bool:
        """Whether the target answered 2xx."""
        return self.status is not None and 200 <= self.status < 300


class _Connection:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def close(self) -> None:
        self.writer.close()


def _request(host: str, target: str, webhook: Webhook) -> bytes:
    fields = {"Host": host, "Content-Length": str(len(webhook.body)), **webhook.headers}
    texts = [target, *fields, *fields.values()]
    if any("\r" in text or "\n" in text for text in texts):
        raise ValueError("a line break in the target or a header")
    head = "".join(f"{name}: {value}\r\n" for name, value in fields.items())
    return f"POST {target} HTTP/1.1\r\n{head}\r\n".encode("latin-1") + webhook.body


async def _response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Reads one answer; returns its status and whether the connection may be used again."""
    while True:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        version, status_text = lines[0].split(b" ", 2)[:2]
        status = int(status_text)
        if 100 <= status < 200:
            continue  # an interim answer: the real one follows
        length: int | None = None
        chunked = False
        reusable = version == b"HTTP/1.1"
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value
            elif name == b"connection":
                reusable = value == b"keep-alive" or (reusable and value != b"close")
        if status in _NO_BODY:
            return status, reusable
        if chunked:
            while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                await reader.readexactly(size + 2)
            while await reader.readuntil(b"\r\n") != b"\r\n":
                pass  # trailers
        elif length is not None:
            await reader.readexactly(length)
        else:
            await reader.read()  # the body ends with the connection
            reusable = False
        return status, reusable


@dataclass(slots=True)
class _Counts:
    pending: int = 0
    delivered: int = 0
    failed: int = 0
    outcomes: list[WebhookOutcome] = field(default_factory=list)


class WebhookPoster:
    """Posts webhooks on the loop that calls `submit`; `outcomes` lists how each one ended."""

    def __init__(self, *, max_connections: int = 64, timeout: float = 10.0) -> None:
        self._timeout = timeout
        self._slots: asyncio.Semaphore | None = None
        self._max_connections = max_connections
        self._idle: dict[tuple[str, str, int], collections.deque[_Connection]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._lock = threading.Lock()  # the counts are read from other threads
        self._counts = _Counts()

    # what happened

    @property
    def outcomes(self) -> list[WebhookOutcome]:
        """Every finished webhook, in the order they finished (a copy)."""
        with self._lock:
            return list(self._counts.outcomes)

    @property
    def pending(self) -> int:
        """Webhooks waiting for their delay, being posted, or waiting to be tried again."""
        with self._lock:
            return self._counts.pending

    def counts(self) -> dict[str, int]:
        """pending, delivered and failed, for a status page."""
        with self._lock:
            counts = self._counts
            return {
                "pending": counts.pending,
                "delivered": counts.delivered,
                "failed": counts.failed,
            }

    def clear(self) -> None:
        """Forgets finished outcomes (pending webhooks still go)."""
        with self._lock:
            self._counts = _Counts(pending=self._counts.pending)

    # posting

    def submit(self, webhook: Webhook, settings: StatusCallbacks) -> None:
        """Posts `webhook` in the background after `settings.delay_seconds`; never blocks."""
        with self._lock:
            self._counts.pending += 1
        task = asyncio.get_running_loop().create_task(self._deliver(webhook, settings))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, webhook: Webhook, settings: StatusCallbacks) -> None:
        outcome: WebhookOutcome | None = None
        try:
            if settings.delay_seconds > 0:
                await asyncio.sleep(settings.delay_seconds)
            outcome = await self.post(webhook, settings)
        finally:
            with self._lock:
                self._counts.pending -= 1
                if outcome is not None:
                    self._counts.outcomes.append(outcome)
                    if outcome.delivered:
                        self._counts.delivered += 1
                    else:
                        self._counts.failed += 1

    async def post(self, webhook: Webhook, settings: StatusCallbacks) -> WebhookOutcome:
        """Posts until a 2xx, a refusal of the request itself, or the last attempt."""
        parts = urlsplit(webhook.url)
        secure = parts.scheme == "https"
        key = (parts.scheme, parts.hostname or "", parts.port or (443 if secure else 80))
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        request = _request(parts.netloc, target, webhook)
        wait = settings.backoff_seconds
        status: int | None = None
        error: str | None = None
        for attempt in range(1, settings.attempts + 1):
            if attempt > 1:
                await asyncio.sleep(wait)
                wait = min(wait * 2, settings.max_backoff_seconds)
            try:
                status, error = await self._attempt(key, request), None
            except (*_BROKEN, TimeoutError) as failure:
                status, error = None, type(failure).__name__
                continue
            if status < 300 or status in _FINAL_REFUSALS:
                return WebhookOutcome(webhook.url, webhook.message_id, status, attempt)
        return WebhookOutcome(webhook.url, webhook.message_id, status, settings.attempts, error)

    async def _attempt(self, key: tuple[str, str, int], request: bytes) -> int:
        """One request, on a kept-alive connection if one still works, else on a new one."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._max_connections)
        async with self._slots, asyncio.timeout(self._timeout):
            idle = self._idle.setdefault(key, collections.deque())
            while idle:
                try:
                    return await self._exchange(idle.pop(), key, request)
                except _BROKEN:
                    pass  # the target closed it while it was idle
            scheme, host, port = key
            reader, writer = await asyncio.open_connection(
                host, port, ssl=ssl.create_default_context() if scheme == "https" else None
            )
            return await self._exchange(_Connection(reader, writer), key, request)

    async def _exchange(
        self, connection: _Connection, key: tuple[str, str, int], request: bytes
    ) -> int:
        try:
            connection.writer.write(request)
            await connection.writer.drain()
            status, reusable = await _response(connection.reader)
        except BaseException:
            connection.close()
            raise
        if reusable:
            self._idle[key].append(connection)
        else:
            connection.close()
        return status

    async def aclose(self) -> None:
        """Cancels pending webhooks and closes idle connections."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for idle in self._idle.values():
            while idle:
                idle.pop().close()
