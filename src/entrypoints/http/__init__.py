"""The HTTP API: Litestar, JSON under /v1, errors as RFC 9457 problem details."""
