"""What a campaign send's decision names as its origin: `campaign:<key>:<version>:<step>:<enrollment>`.

Every decision records what asked for it (invariant 1); a campaign's sends name the campaign,
the version and step of its journey, and the enrollment, so that the enrollment process, the
stats and the audit find the enrollment a message was sent for from the decision alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

__all__ = ["PREFIX", "SendOrigin"]

PREFIX = "campaign:"


@dataclass(frozen=True, slots=True)
class SendOrigin:
    """A campaign send: which campaign, version and step, for which enrollment."""

    campaign: str
    version: int
    step: str
    enrollment: UUID

    def __str__(self) -> str:
        return f"{PREFIX}{self.campaign}:{self.version}:{self.step}:{self.enrollment}"

    @classmethod
    def parse(cls, origin: str) -> SendOrigin | None:
        """The send an origin names, or None for an origin that is not a campaign send's."""
        if not origin.startswith(PREFIX):
            return None
        parts = origin.split(":")
        if len(parts) != 5:
            return None
        try:
            return cls(parts[1], int(parts[2]), parts[3], UUID(parts[4]))
        except ValueError:
            return None
