"""Email over SMTP (aiosmtplib): a MIME message whose Message-ID comes from the idempotency key.

SMTP has no idempotency keys, so the Message-ID stands in for one: it is derived from the
message's idempotency key (and the sender's domain), a retried send carries the same Message-ID,
and receivers (and `FakeSmtpServer`) can recognise the duplicate. Connections are pooled and
reused between sends; a connection that failed in any way is dropped, never reused.

Errors: 4xx replies, connection failures and timeouts are retryable; 5xx replies are not.
Neither the password nor the username ever appears in an exception or a log line.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import TYPE_CHECKING

import aiosmtplib

from domain.policy.vocabulary import Channel
from ports.providers import (
    DeliveryStatus,
    InvalidSignature,
    OutboundMessage,
    ProviderError,
    SendReceipt,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from ports.providers import InboundMessage, StatusUpdate

__all__ = ["SmtpProvider", "build_email", "message_id_for"]

# Headers the provider writes itself: `OutboundMessage.headers` may not override them.
_RESERVED_HEADERS = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "subject",
        "message-id",
        "date",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "x-chorus-message-id",
    }
)
_IDLE_CHECK_SECONDS = 30.0  # an idle pooled connection older than this is checked with NOOP


def message_id_for(idempotency_key: str, sender: str) -> str:
    """The RFC 5322 Message-ID of a send: the same key and sender always give the same one."""
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:40]
    _, address = parseaddr(sender)
    domain = address.rpartition("@")[2] or "chorus.invalid"
    return f"<{digest}.chorus@{domain}>"


def build_email(message: OutboundMessage, sender: str) -> EmailMessage:
    """The MIME message for one outbound email: text, optional HTML alternative and headers."""
    for header in message.headers:
        if header.lower() in _RESERVED_HEADERS:
            raise ValueError(f"header {header!r} is set by the provider")
    email = EmailMessage()
    email["From"] = sender
    email["To"] = message.to
    if message.subject is not None:
        email["Subject"] = message.subject
    email["Date"] = formatdate(usegmt=True)
    email["Message-ID"] = message_id_for(message.idempotency_key, sender)
    email["X-Chorus-Message-Id"] = str(message.message_id)
    for header, value in message.headers.items():
        email[header] = value
    if message.body is None and message.html is not None:
        email.set_content(message.html, subtype="html")
    else:
        email.set_content(message.body or "")
        if message.html is not None:
            email.add_alternative(message.html, subtype="html")
    return email


def _from_response(error: aiosmtplib.SMTPResponseException, what: str) -> ProviderError:
    code = error.code
    if isinstance(error, aiosmtplib.SMTPAuthenticationError):
        reason = f"smtp authentication failed ({code})"  # the server's text may echo the user
    else:
        reason = f"smtp {what} refused: {code} {error.message}".strip()[:300]
    return ProviderError(reason, retryable=400 <= code < 500, status=code)


def _map_error(error: Exception) -> ProviderError:
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        codes = [refused.code for refused in error.recipients]
        retryable = bool(codes) and all(400 <= code < 500 for code in codes)
        first = error.recipients[0] if error.recipients else None
        detail = f"{first.code} {first.message}" if first else "no recipient accepted"
        return ProviderError(
            f"smtp recipient refused: {detail}"[:300],
            retryable=retryable,
            status=first.code if first else None,
        )
    if isinstance(error, aiosmtplib.SMTPResponseException):
        what = "recipient" if isinstance(error, aiosmtplib.SMTPRecipientRefused) else "message"
        if isinstance(error, aiosmtplib.SMTPSenderRefused):
            what = "sender"
        return _from_response(error, what)
    if isinstance(error, TimeoutError):  # SMTPTimeoutError and asyncio timeouts alike
        return ProviderError("smtp server timed out", retryable=True)
    if isinstance(error, aiosmtplib.SMTPNotSupported):
        return ProviderError(f"smtp server lacks a feature: {error.message}", retryable=False)
    if isinstance(error, OSError):  # ConnectionError and SMTPServerDisconnected too
        return ProviderError(f"smtp connection failed: {type(error).__name__}", retryable=True)
    if isinstance(error, aiosmtplib.SMTPException):
        return ProviderError(f"smtp error: {type(error).__name__}", retryable=True)
    return ProviderError(f"smtp send failed: {type(error).__name__}", retryable=True)


class _Connection:
    """One pooled SMTP client and when it was last used."""

    __slots__ = ("client", "last_used")

    def __init__(self, client: aiosmtplib.SMTP) -> None:
        self.client = client
        self.last_used = time.monotonic()


class SmtpProvider:
    """One SMTP account: sends one message per transaction over a small connection pool."""

    def __init__(
        self,
        name: str,
        *,
        host: str,
        port: int,
        username: str | None = None,
        password: str | None = None,
        use_tls: bool = False,
        start_tls: bool = False,
        sender: str,
        timeout: float = 10.0,
        max_connections: int = 4,
    ) -> None:
        if use_tls and start_tls:
            raise ValueError("use_tls and start_tls are mutually exclusive")
        self._name = name
        self._host = host
        self._port = port
        self._username = username
        self._password = password
        self._use_tls = use_tls
        self._start_tls = start_tls
        self.sender = sender
        self.timeout = timeout
        self._envelope_sender = parseaddr(sender)[1] or sender
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(max_connections)
        self._closed = False

    def __repr__(self) -> str:
        return f"SmtpProvider({self._name!r}, host={self._host!r}, port={self._port})"

    @property
    def name(self) -> str:
        """The configured provider's name."""
        return self._name

    @property
    def channel(self) -> Channel:
        """Always email."""
        return Channel.EMAIL

    async def _connect(self) -> _Connection:
        client = aiosmtplib.SMTP(
            hostname=self._host,
            port=self._port,
            username=self._username,
            password=self._password,
            use_tls=self._use_tls,
            start_tls=self._start_tls,
            timeout=self.timeout,
        )
        await client.connect()
        return _Connection(client)

    async def _acquire(self) -> _Connection:
        while self._idle:
            connection = self._idle.pop()
            if not connection.client.is_connected:
                continue
            if time.monotonic() - connection.last_used > _IDLE_CHECK_SECONDS:
                try:
                    await connection.client.noop()
                except (aiosmtplib.SMTPException, OSError):
                    connection.client.close()
                    continue
            return connection
        return await self._connect()

    async def send(self, message: OutboundMessage) -> SendReceipt:
        """Sends one email; raises ProviderError (4xx, timeouts, connection errors retryable)."""
        if self._closed:
            raise ProviderError("smtp provider is closed", retryable=True)
        try:
            email = build_email(message, self.sender)
        except ValueError as error:
            raise ProviderError(f"invalid email: {error}", retryable=False) from None
        async with self._slots:
            connection: _Connection | None = None
            try:
                connection = await self._acquire()
                await connection.client.send_message(
                    email, sender=self._envelope_sender, recipients=[message.to]
                )
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
                if connection is not None:
                    connection.client.close()
                raise _map_error(error) from None
            except BaseException:
                if connection is not None:
                    connection.client.close()
                raise
            connection.last_used = time.monotonic()
            if self._closed:
                await self._quit(connection)
            else:
                self._idle.append(connection)
        return SendReceipt(
            provider=self._name,
            provider_message_id=str(email["Message-ID"]),
            status=DeliveryStatus.SENT,
        )

    def parse_webhook(
        self, headers: Mapping[str, str], body: bytes, url: str
    ) -> Sequence[StatusUpdate | InboundMessage]:
        """SMTP has no webhooks: every request claiming to be one is refused."""
        raise InvalidSignature("smtp has no webhooks")

    @staticmethod
    async def _quit(connection: _Connection) -> None:
        try:
            await connection.client.quit()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            connection.client.close()

    async def close(self) -> None:
        """Says QUIT on every idle connection; connections in use close when they return."""
        self._closed = True
        idle, self._idle = self._idle, []
        await asyncio.gather(*(self._quit(connection) for connection in idle))
