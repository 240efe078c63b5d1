"""A fake FCM HTTP v1 API: bearer auth, dedup by data.idempotency_key, unregistered tokens."""

from __future__ import annotations

import hmac
import itertools
import re
import threading
from typing import TYPE_CHECKING

from adapters.providers.fakes.http_fake import FakeRequest, FakeResponse, HttpFake
from adapters.providers.fcm_push import FCM_ERROR_TYPE

if TYPE_CHECKING:
    from adapters.providers.fakes.webhooks import StatusCallbacks

__all__ = ["FakeFcm"]

_SEND_PATH = re.compile(r"^/v1/projects/(?P<project>[^/]+)/messages:send$")
_STATUS_NAMES = {
    400: ("INVALID_ARGUMENT", "INVALID_ARGUMENT"),
    401: ("UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR"),
    403: ("PERMISSION_DENIED", "SENDER_ID_MISMATCH"),
    404: ("NOT_FOUND", "UNREGISTERED"),
    429: ("RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"),
    500: ("INTERNAL", "INTERNAL"),
    503: ("UNAVAILABLE", "UNAVAILABLE"),
}


class FakeFcm(HttpFake):
    """Accepts `POST /v1/projects/{id}/messages:send`; records each message once per key.

    FCM reports no deliveries by webhook, so this fake never calls back.
    """

    def __init__(
        self,
        *,
        project_id: str = "chorus-fake",
        access_token: str = "fake-fcm-token",
        callbacks: StatusCallbacks | None = None,
    ) -> None:
        super().__init__(callbacks=callbacks)
        self.project_id = project_id
        self.access_token = access_token
        self.unregistered: set[str] = set()
        self._counter = itertools.count(1)
        self._counter_lock = threading.Lock()

    def unregister(self, token: str) -> None:
        """Makes sends to this device token fail with UNREGISTERED (404)."""
        self.unregistered.add(token)

    def reset(self) -> None:
        """Clears the knobs, the records and the unregistered tokens."""
        super().reset()
        self.unregistered.clear()

    def authorized(self, request: FakeRequest) -> bool:
        """A bearer OAuth token."""
        given = request.headers.get("authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {self.access_token}".encode())

    def error_response(self, status: int, reason: str) -> FakeResponse:
        """A Google API error with an FcmError detail."""
        grpc_status, fcm_code = _STATUS_NAMES.get(status, ("UNKNOWN", "UNSPECIFIED_ERROR"))
        return FakeResponse.json(
            status,
            {
                "error": {
                    "code": status,
                    "message": reason,
                    "status": grpc_status,
                    "details": [{"@type": FCM_ERROR_TYPE, "errorCode": fcm_code}],
                }
            },
        )

    def _next_name(self) -> str:
        with self._counter_lock:
            number = next(self._counter)
        return f"projects/{self.project_id}/messages/0:{number:016d}%fake"

    def handle(self, request: FakeRequest) -> FakeResponse:
        """Accepts one message to one device token and answers its name."""
        match = _SEND_PATH.match(request.path)
        if request.method != "POST" or match is None:
            return self.error_response(404, "Requested entity was not found.")
        if match["project"] != self.project_id:
            return self.error_response(403, "SenderId mismatch")
        body = request.json()
        message = body.get("message") if isinstance(body, dict) else None
        if not isinstance(message, dict) or not message.get("token"):
            return self.error_response(400, "Invalid value at 'message': a token is required")
        data = message.get("data", {})
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            return self.error_response(400, "Invalid value at 'message.data': values are strings")
        if message["token"] in self.unregistered:
            return self.error_response(404, "Requested entity was not found.")
        name = self.accept(data.get("idempotency_key"), message, self._next_name)
        return FakeResponse.json(200, {"name": name})
