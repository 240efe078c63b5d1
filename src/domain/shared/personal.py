"""Which values of an aggregate's events are personal data, declared next to the events.

An aggregate lists, per event name, the paths of its personal values in the event's fields:
`identity.identity.value` (a field of a field), `identities[].identity.value` (each item of a
list), `attributes.*` (every value of a mapping). The event store keeps those values sealed
with the key of the customer the event is about (ADR 0016), so that erasing the customer's
key makes them unreadable while every other field, and the event itself, stays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["ERASED", "PersonalFields", "PersonalPath", "map_personal"]

ERASED = "[erased]"
"""What a personal value reads as once its customer was erased."""

_EACH = "[]"
_ALL = "*"


@dataclass(frozen=True, slots=True)
class PersonalPath:
    """One path to personal values in an event's fields."""

    steps: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> PersonalPath:
        steps: list[str] = []
        for part in text.split("."):
            if not part:
                msg = f"{text!r}: an empty step"
                raise ValueError(msg)
            if part.endswith(_EACH):
                steps += [part.removesuffix(_EACH), _EACH]
            else:
                steps.append(part)
        return cls(tuple(steps))

    def __str__(self) -> str:
        return ".".join(self.steps).replace("." + _EACH, _EACH)


@dataclass(frozen=True, slots=True)
class PersonalFields:
    """Event name -> the paths of its personal values, as `PersonalPath` texts."""

    paths: Mapping[str, tuple[str, ...]]
    parsed: dict[str, tuple[PersonalPath, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "parsed",
            {
                name: tuple(PersonalPath.parse(path) for path in paths)
                for name, paths in self.paths.items()
            },
        )

    def of(self, event_name: str) -> tuple[PersonalPath, ...]:
        return self.parsed.get(event_name, ())


def _walk(node: Any, steps: tuple[str, ...], at: int, change: Callable[[Any], Any]) -> Any:
    if at == len(steps):
        return node if node is None else change(node)
    step = steps[at]
    if step == _EACH:
        if isinstance(node, list | tuple):
            return [_walk(item, steps, at + 1, change) for item in node]
        return node
    if not isinstance(node, dict):
        return node
    if step == _ALL:
        return {key: _walk(value, steps, at + 1, change) for key, value in node.items()}
    if step in node:
        node[step] = _walk(node[step], steps, at + 1, change)
    return node


def map_personal(
    data: dict[str, Any], paths: tuple[PersonalPath, ...], change: Callable[[Any], Any]
) -> dict[str, Any]:
    """Replaces, in place, each personal value of an event's plain fields (not None: an absent
    value says nothing about anyone) by `change(value)`; returns `data`."""
    for path in paths:
        _walk(data, path.steps, 0, change)
    return data
