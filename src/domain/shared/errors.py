"""Errors the domain raises; the edges map them to their own error shapes."""

from __future__ import annotations

__all__ = ["DomainError", "InvalidValue", "NotFound"]


class DomainError(Exception):
    """A rule of the domain refused a command."""


class InvalidValue(DomainError, ValueError):
    """A value object was given something it cannot hold."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class NotFound(DomainError, LookupError):
    """Nothing exists under that id."""
