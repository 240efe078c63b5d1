"""New ids come from here, so tests and replays are deterministic."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from uuid import UUID

__all__ = ["IdGenerator"]


class IdGenerator(Protocol):
    """Makes ids that were never used before."""

    def new_id(self) -> UUID: ...
