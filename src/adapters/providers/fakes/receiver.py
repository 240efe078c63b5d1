"""A webhook receiver standing in for Chorus: it records every request and answers 200."""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.providers.fakes.http_fake import FakeResponse, HttpFake

if TYPE_CHECKING:
    from adapters.providers.fakes.http_fake import FakeRequest

__all__ = ["WebhookReceiver"]


class WebhookReceiver(HttpFake):
    """`received` holds each `FakeRequest`; the knobs (fail_next, hang) apply as to any fake."""

    def handle(self, request: FakeRequest) -> FakeResponse:
        """Records the request and answers `{}`."""
        with self._lock:
            self.received.append(request)
        return FakeResponse(200, b"{}", {"content-type": "application/json"})

    def url(self, path: str = "/") -> str:
        """The full URL of `path` on this receiver, as a signature covers it."""
        return self.base_url + path
