"""A local SMTP server (aiosmtpd) that records what it received and fails or hangs on request.

Messages are de-duplicated by Message-ID, as a careful receiver would: a second delivery of a
Message-ID already received is accepted (250) but recorded in `.duplicates`, not `.received`,
so tests can assert that a message arrived exactly once. A client that gives up while the
server hangs (the DATA reply never reached it) leaves nothing recorded, as RFC 5321 wants.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import warnings
from email.parser import BytesParser
from email.policy import default as default_policy
from typing import TYPE_CHECKING, Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

if TYPE_CHECKING:
    from email.message import EmailMessage
    from types import TracebackType
    from typing import Self

__all__ = ["FakeSmtpServer"]


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class _Handler:
    """aiosmtpd's handler: answers DATA according to the fake's knobs."""

    def __init__(self, fake: FakeSmtpServer) -> None:
        self.fake = fake

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        code, hang = self.fake._next_behaviour()
        if hang > 0:
            await asyncio.sleep(hang)  # cancelled if the client disconnects meanwhile
        if code is not None:
            enhanced = "4.3.0 temporary" if code < 500 else "5.7.1 permanent"
            return f"{code} {enhanced} failure (fake)"
        content = envelope.original_content or envelope.content
        parsed: EmailMessage = BytesParser(policy=default_policy).parsebytes(content)
        self.fake._record(parsed, envelope.mail_from, list(envelope.rcpt_tos))
        return "250 2.0.0 OK: queued"


class FakeSmtpServer:
    """An SMTP server on 127.0.0.1 and a free port, run by aiosmtpd in a thread of its own."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self._wanted_port = port
        self._credentials = credentials
        self._lock = threading.Lock()
        self._controller: Controller | None = None
        self._received: list[EmailMessage] = []
        self._duplicates: list[EmailMessage] = []
        self._envelopes: list[tuple[str, list[str]]] = []
        self._seen: set[str] = set()
        self._attempts = 0
        self._failures: list[int] = []
        self._hang_seconds = 0.0
        self._hang_count: int | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeSmtpServer:
        """Starts listening (on a free port unless given one); returns the server, `.port` set."""
        if self._controller is not None:
            return self
        self.port = self._wanted_port or _free_port(self.host)
        options: dict[str, Any] = {}
        if self._credentials is not None:
            warnings.filterwarnings(  # a local fake: plain-text AUTH is the point
                "ignore", message="Requiring AUTH while not requiring TLS", category=UserWarning
            )
            options = {
                "authenticator": self._authenticate,
                "auth_required": True,
                "auth_require_tls": False,
            }
        controller = Controller(
            _Handler(self), hostname=self.host, port=self.port, ready_timeout=5.0, **options
        )
        controller.start()
        self._controller = controller
        return self

    def stop(self) -> None:
        """Stops listening and drops open connections."""
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if self._credentials is None or not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login, password = self._credentials
        ok = auth_data.login == login.encode() and auth_data.password == password.encode()
        return AuthResult(success=ok, handled=False)

    # -- knobs -----------------------------------------------------------------------------

    def fail_next(self, n: int = 1, code: int = 451) -> None:
        """The next `n` messages are answered with `code` after DATA (451: retry, 550: never)."""
        if not 400 <= code < 600:
            raise ValueError("an SMTP failure code is 4xx or 5xx")
        with self._lock:
            self._failures.extend([code] * n)

    def hang(self, seconds: float, *, count: int | None = None) -> None:
        """Delays the DATA reply by `seconds`: for the next `count` messages, or all of them."""
        with self._lock:
            self._hang_seconds = seconds
            self._hang_count = count

    def reset(self) -> None:
        """Forgets what was received and every knob."""
        with self._lock:
            self._received.clear()
            self._duplicates.clear()
            self._envelopes.clear()
            self._seen.clear()
            self._attempts = 0
            self._failures.clear()
            self._hang_seconds = 0.0
            self._hang_count = None

    # -- what arrived ----------------------------------------------------------------------

    @property
    def received(self) -> list[EmailMessage]:
        """Messages accepted, once per Message-ID, in arrival order (a copy)."""
        with self._lock:
            return list(self._received)

    @property
    def duplicates(self) -> list[EmailMessage]:
        """Messages accepted again under a Message-ID already received (a copy)."""
        with self._lock:
            return list(self._duplicates)

    @property
    def envelopes(self) -> list[tuple[str, list[str]]]:
        """The SMTP envelope (MAIL FROM, RCPT TO) of each message in `.received` (a copy)."""
        with self._lock:
            return list(self._envelopes)

    @property
    def attempts(self) -> int:
        """How many DATA commands arrived, whatever the answer."""
        with self._lock:
            return self._attempts

    def _next_behaviour(self) -> tuple[int | None, float]:
        with self._lock:
            self._attempts += 1
            code = self._failures.pop(0) if self._failures else None
            hang = self._hang_seconds
            if hang > 0 and self._hang_count is not None:
                self._hang_count -= 1
                if self._hang_count <= 0:
                    self._hang_seconds, self._hang_count = 0.0, None
            return code, hang

    def _record(self, message: EmailMessage, mail_from: str, rcpt_tos: list[str]) -> None:
        message_id = str(message.get("Message-ID", "")).strip()
        with self._lock:
            if message_id and message_id in self._seen:
                self._duplicates.append(message)
                return
            if message_id:
                self._seen.add(message_id)
            self._received.append(message)
            self._envelopes.append((mail_from, rcpt_tos))
