"""Random UUIDs."""

from __future__ import annotations

from uuid import UUID, uuid4

__all__ = ["RandomIds"]


class RandomIds:
    """Version 4 UUIDs from the operating system's randomness."""

    def new_id(self) -> UUID:
        return uuid4()
