"""The HTTP server's own refusals as RFC 9457 problems, so that a client always reads JSON.

uvicorn answers a request it cannot parse with a plain-text 400 before the app sees it, and its
parser reads a request target (the path and query) of any length up to 64 KiB, then refuses it
so. `ProblemHttpProtocol` stops reading a target longer than MAX_TARGET_BYTES as it comes, with a
414 `uri-too-long` problem, and answers any other request it cannot parse with a 400 problem.
The app refuses a query string longer than `edge.MAX_QUERY_BYTES` with the same 414; the
server's limit sits above it by room for a path, so that the app's answer is the one given
whenever it can be. After such an answer the server reads on, and drops, what the client still
sends (up to MAX_BODY_BYTES, for DRAIN_SECONDS at most), so that the client reads the answer
rather than a reset connection.
"""

from __future__ import annotations

import msgspec
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from entrypoints.http.edge import MAX_BODY_BYTES, MAX_QUERY_BYTES, QUERY_TOO_LONG
from entrypoints.http.problems import PROBLEM_JSON, URI_TOO_LONG, problem_body

__all__ = ["DRAIN_SECONDS", "MAX_TARGET_BYTES", "ProblemHttpProtocol"]

MAX_TARGET_BYTES = 2 * MAX_QUERY_BYTES
"""A request target (path and query), at most, as the server reads it: the longest query
string the app reads and as much again for the path."""

DRAIN_SECONDS = 10.0
"""How long the server reads on after refusing a request, for a client that never closes."""

_TARGET_TOO_LONG = (
    f"a request's path and query may have at most {MAX_TARGET_BYTES:,} bytes; {QUERY_TOO_LONG}"
)


class _TargetTooLong(Exception):
    """Raised in the parser's callback to stop reading the request: the parser fails, and the
    server answers it (`send_400_response`)."""


class ProblemHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, its refusals said as problems."""

    _too_long = False
    _drained: int | None = None  # bytes dropped since the answer; None before one

    def data_received(self, data: bytes) -> None:
        if self._drained is None:
            super().data_received(data)
            return
        self._drained += len(data)
        if self._drained > MAX_BODY_BYTES:
            self.transport.close()

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > MAX_TARGET_BYTES:
            self._too_long = True
            raise _TargetTooLong

    def send_400_response(self, msg: str) -> None:
        if self._too_long:
            status, body = 414, problem_body(414, *URI_TOO_LONG, _TARGET_TOO_LONG)
        else:
            status = 400
            body = problem_body(400, "invalid-http", "The request is not valid HTTP", msg)
        encoded = msgspec.json.encode(body)
        content = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: " + PROBLEM_JSON.encode() + b"\r\n",
                b"content-length: " + str(len(encoded)).encode("ascii") + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
                encoded,
            ]
        )
        self.transport.write(b"".join(content))
        # Said and done: the client's closing (or the time running out) closes the connection.
        self._drained = 0
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(DRAIN_SECONDS, self.transport.close)
