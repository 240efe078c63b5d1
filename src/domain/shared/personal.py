"""Which values of an aggregate's events are personal data, declared next to the events.

An aggregate lists, per event name, the paths of its personal values in the event's fields:
`identity.identity.value` (a field of a field), `identities[].identity.value` (each item of a
list), `attributes.*` (every value of a mapping). The event store keeps those values sealed
with the key of the customer the event is about (ADR 0019), so that erasing the customer's
key makes them unreadable while every other field, and the event itself, stays.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["ERASED", "PersonalFields", "PersonalPath", "map_personal"]

ERASED = "[erased]"
"""What a personal value reads as once its customer was erased."""

_EACH = "[]"
_ALL = "*"


@dataclass(frozen=True, slots=True)
class PersonalPath:
    """One path to personal values in an event's fields."""

    steps: tuple[str, ...]
    walk: Callable[[Any, Callable[[Any], Any]], Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "walk", _compiled(self.steps))

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


def _leaf(node: Any, change: Callable[[Any], Any]) -> Any:
    return node if node is None else change(node)


def _each(inner: Callable[[Any, Callable[[Any], Any]], Any]) -> Callable[..., Any]:
    def walk(node: Any, change: Callable[[Any], Any]) -> Any:
        if isinstance(node, list | tuple):
            return [inner(item, change) for item in node]
        return node

    return walk


def _all(inner: Callable[[Any, Callable[[Any], Any]], Any]) -> Callable[..., Any]:
    def walk(node: Any, change: Callable[[Any], Any]) -> Any:
        if isinstance(node, dict):
            return {key: inner(value, change) for key, value in node.items()}
        return node

    return walk


def _field(name: str, inner: Callable[[Any, Callable[[Any], Any]], Any]) -> Callable[..., Any]:
    def walk(node: Any, change: Callable[[Any], Any]) -> Any:
        if isinstance(node, dict):
            value = node.get(name)
            if value is not None:
                node[name] = inner(value, change)
        return node

    return walk


def _compiled(steps: tuple[str, ...]) -> Callable[[Any, Callable[[Any], Any]], Any]:
    """The path as nested functions, built once: events are sealed and opened by the
    thousand a second, and a generic walk costs several times as much."""
    walk: Callable[[Any, Callable[[Any], Any]], Any] = _leaf
    for step in reversed(steps):
        walk = _each(walk) if step == _EACH else _all(walk) if step == _ALL else _field(step, walk)
    return walk


def map_personal(
    data: dict[str, Any], paths: tuple[PersonalPath, ...], change: Callable[[Any], Any]
) -> dict[str, Any]:
    """Replaces, in place, each personal value of an event's plain fields (not None: an absent
    value says nothing about anyone) by `change(value)`; returns `data`."""
    for path in paths:
        path.walk(data, change)
    return data
