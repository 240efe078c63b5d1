"""What an audit query refuses, naming the parameter."""

from __future__ import annotations

from domain.shared.errors import DomainError

__all__ = ["AuditQueryRefused"]


class AuditQueryRefused(DomainError):
    """A parameter of an audit query that cannot be answered: a time in the future, a period
    that ends before it starts."""

    def __init__(self, parameter: str, reason: str) -> None:
        super().__init__(f"{parameter} {reason}")
        self.parameter = parameter
        self.reason = reason
