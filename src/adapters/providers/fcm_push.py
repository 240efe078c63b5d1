"""Push notifications through Firebase Cloud Messaging's HTTP v1 API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from adapters.providers.http_provider import HttpProvider
from domain.policy.vocabulary import Channel
from ports.providers import (
    DeliveryStatus,
    InboundMessage,
    InvalidSignature,
    OutboundMessage,
    ProviderError,
    SendReceipt,
    StatusUpdate,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import aiohttp

    from adapters.providers.http_provider import HttpAnswer

__all__ = ["FCM_ERROR_TYPE", "FcmPushProvider"]

FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"

_RETRYABLE_CODES = frozenset({"QUOTA_EXCEEDED", "UNAVAILABLE", "INTERNAL"})
_INVALID_TOKEN_CODES = frozenset({"UNREGISTERED", "SENDER_ID_MISMATCH"})


class _Detail(msgspec.Struct, rename={"type_": "@type", "error_code": "errorCode"}):
    type_: str | None = None
    error_code: str | None = None


class _Error(msgspec.Struct):
    code: int | None = None
    message: str | None = None
    status: str | None = None
    details: list[_Detail] = []


class _ErrorBody(msgspec.Struct):
    error: _Error


class _Answer(msgspec.Struct):
    name: str


def _error(response: HttpAnswer) -> ProviderError:
    status = response.status_code
    try:
        error: _Error | None = msgspec.json.decode(response.content, type=_ErrorBody).error
    except (msgspec.ValidationError, msgspec.DecodeError):
        error = None
    fcm_code = None
    if error is not None:
        fcm_code = next(
            (d.error_code for d in error.details if d.type_ == FCM_ERROR_TYPE and d.error_code),
            error.status,
        )
    words = (
        f"fcm {fcm_code or 'error'}: {error.message if error else 'no error body'} (HTTP {status})"
    )
    if fcm_code in _INVALID_TOKEN_CODES or status == 404:
        return ProviderError(
            f"invalid device token, do not retry; {words}", retryable=False, status=status
        )
    retryable = status == 429 or status >= 500 or fcm_code in _RETRYABLE_CODES
    return ProviderError(words, retryable=retryable, status=status)


class FcmPushProvider(HttpProvider):
    """One Firebase project.

    `access_token` is used as a static OAuth 2.0 bearer token: production wiring should refresh
    a service-account token (scope `https://www.googleapis.com/auth/firebase.messaging`), which
    this adapter does not do.
    """

    CHANNEL = Channel.PUSH
    LABEL = "fcm"

    def __init__(
        self,
        name: str,
        *,
        base_url: str,
        project_id: str,
        access_token: str,
        timeout: float = 10.0,
        client: aiohttp.ClientSession | None = None,
        max_connections: int = 100,
    ) -> None:
        super().__init__(name, timeout=timeout, client=client, max_connections=max_connections)
        self._project_id = project_id
        self._url = f"{base_url.rstrip('/')}/v1/projects/{project_id}/messages:send"
        self._auth_header = {"Authorization": f"Bearer {access_token}"}

    def __repr__(self) -> str:
        return f"FcmPushProvider(name={self._name!r}, project_id={self._project_id!r})"

    @staticmethod
    def payload(message: OutboundMessage) -> dict[str, Any]:
        """The v1 `messages:send` body; FCM data values are strings, and carry our ids."""
        data = {
            **message.data,
            "chorus_message_id": str(message.message_id),
            "idempotency_key": message.idempotency_key,
        }
        notification = {
            key: value
            for key, value in (("title", message.title or message.subject), ("body", message.body))
            if value
        }
        body: dict[str, Any] = {"token": message.to, "data": data}
        if notification:
            body["notification"] = notification
        return {"message": body}

    async def send(self, message: OutboundMessage) -> SendReceipt:
        """Posts to `projects/{id}/messages:send`; the answer's `name` is the message id."""
        if not message.to:
            raise ProviderError("a push message needs a device token", retryable=False)
        response = await self._post(
            self._url,
            content=msgspec.json.encode(self.payload(message)),
            headers={**self._auth_header, "Content-Type": "application/json"},
        )
        if response.status_code >= 400:
            raise _error(response)
        try:
            name = msgspec.json.decode(response.content, type=_Answer).name
        except (msgspec.ValidationError, msgspec.DecodeError):
            raise ProviderError(
                f"fcm answered HTTP {response.status_code} without a message name",
                retryable=True,
                status=response.status_code,
            ) from None
        return SendReceipt(self._name, name, DeliveryStatus.SENT)

    def parse_webhook(
        self, headers: Mapping[str, str], body: bytes, url: str
    ) -> Sequence[StatusUpdate | InboundMessage]:
        """FCM reports no deliveries by webhook: every request is refused."""
        raise InvalidSignature("fcm has no webhooks")
