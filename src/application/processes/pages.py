"""Reading a page of events by class, so that a process decodes only what it looks at."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["of_kinds"]


def of_kinds(events: Sequence[Any], *kinds: type) -> list[Any]:
    """The events of these classes, in log order. A page the runner decodes as it is read
    (`of`) decodes only these; a plain list is filtered."""
    select = getattr(events, "of", None)
    if select is not None:
        found: list[Any] = select(*kinds)
        return found
    return [event for event in events if isinstance(event, kinds)]
