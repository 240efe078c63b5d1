"""JSON documents the domain reads with msgspec: a tagged union of Structs, checked whole.

A document comes as JSON text or as decoded JSON; a fault is said as where (a JSON path such as
`$.where[0].op`) and why, in the document's own terms rather than msgspec's.
"""

from __future__ import annotations

import copy
import re
import typing
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any, Generic, Self, TypeVar

import msgspec

from domain.shared.errors import DomainError

__all__ = [
    "DocumentInvalid",
    "DocumentReader",
    "Tagged",
    "document_of",
    "field_of",
    "json_fault",
]

T = TypeVar("T")


class Tagged(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
    omit_defaults=True,
    tag_field="type",
):
    """The base of the Structs a `DocumentReader` tells apart by their `type`, each with its own
    `tag`: values, strict about their fields, written without their defaults."""


class DocumentInvalid(DomainError, ValueError):
    """A document that cannot be used: where (a JSON path such as `$.where[0].op`) and why."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason

    def under(self, field: str) -> Self:
        """The same fault, the document being the value of `field` in another: `$.field...`."""
        return type(self)(f"$.{field}" + self.path.removeprefix("$"), self.reason)


def document_of(value: msgspec.Struct) -> dict[str, Any]:
    """The JSON document a `DocumentReader` reads back as `value`."""
    document: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(value))
    return document


def field_of(error: msgspec.ValidationError) -> tuple[str, str]:
    """The JSON path a msgspec error is about, and the reason without the path."""
    reason, _, path = str(error).partition(" - at `")
    field = path.rstrip("`") if path else "$"
    missing = _MISSING_AT.search(reason)
    if missing:
        field = f"{field}.{missing.group(1)}"
    return field, reason


def json_fault(document: bytes | str) -> str | None:
    """Why a document is not JSON at all; for the error path of a typed decode, which
    validates as it reads and so may name a field of a document that is cut short."""
    try:
        msgspec.json.decode(document)
    except msgspec.DecodeError as error:
        return str(error)
    except RecursionError:
        # Whatever follows, it cannot be read: the edges refuse such nesting first, by its path.
        return "it nests arrays and objects too deep to be read"
    return None


class DocumentReader(Generic[T]):
    """Reads documents of one union of `Tagged` Structs, raising `invalid` on a fault.

    `noun` names what a tag picks ("'x' is not a {noun} type: use ..."); `parts` are the Structs
    nested in the union's members, whose fields are also the document's; `enums` say, by field
    name, which values a field of an enum takes.
    """

    def __init__(
        self,
        union: Any,
        invalid: type[DocumentInvalid],
        *,
        noun: str,
        parts: Sequence[type[msgspec.Struct]] = (),
        enums: Mapping[str, type[StrEnum]] | None = None,
    ) -> None:
        kinds: tuple[type[msgspec.Struct], ...] = typing.get_args(union)
        self._union = union
        self._decoder: msgspec.json.Decoder[T] = msgspec.json.Decoder(union)
        self._invalid = invalid
        self._noun = noun
        self._fields = frozenset(
            info.encode_name for kind in (*kinds, *parts) for info in msgspec.structs.fields(kind)
        )
        self._tags = ", ".join(str(kind.__struct_config__.tag) for kind in kinds)
        self._enums = dict(enums or {})

    def read(self, document: bytes | str | Mapping[str, Any]) -> T:
        """Reads a document from JSON text or from decoded JSON, checking it whole."""
        try:
            if isinstance(document, bytes | str):
                return self._decoder.decode(document)
            value: T = msgspec.convert(dict(document), self._union)
        except msgspec.ValidationError as error:
            raise self._invalid(*self.explain(self._keyed(str(error), document))) from None
        except msgspec.DecodeError as error:
            raise self._invalid("$", f"not valid JSON: {error}") from None
        except RecursionError:
            # The edges refuse such nesting first, by its path; this is never a crash.
            raise self._invalid("$", "it nests arrays and objects too deep to be read") from None
        return value

    def _keyed(self, message: str, document: bytes | str | Mapping[str, Any]) -> str:
        """msgspec's message with each `[...]` it writes for a value of a free-keyed object
        (`$.sla.first_response[...]`) replaced by the key whose value is at fault
        (`$.sla.first_response.chat`); cut at the object when that cannot be told."""
        at = _AT_PATH.search(message)
        if at is None or "[...]" not in at.group("path"):
            return message
        path = at.group("path")
        named = self._name_keys(path, document)
        if named is None:
            named = path.partition("[...]")[0]
        return message[: at.start("path")] + named + message[at.end("path") :]

    def _name_keys(self, path: str, document: bytes | str | Mapping[str, Any]) -> str | None:
        # Values of a free-keyed object are read in order and the first at fault stops the
        # read: it is the first key that, left alone in its object, still fails there.
        steps = _STEP.findall(path.removeprefix("$"))
        if not path.startswith("$") or "".join(steps) != path.removeprefix("$"):
            return None
        as_text = isinstance(document, bytes | str)
        try:
            root: Any = (
                msgspec.json.decode(document)
                if isinstance(document, bytes | str)
                else copy.deepcopy(dict(document))
            )
        except (msgspec.DecodeError, RecursionError, TypeError):
            return None
        node: Any = root
        named = read = "$"
        for step in steps:
            if step == "[...]":
                read += step
                if not isinstance(node, dict):
                    return None
                entries = list(node.items())
                for key, value in entries:
                    node.clear()
                    node[key] = value
                    if self._fails_under(root, read, as_text=as_text):
                        node, named = value, f"{named}.{key}"
                        break
                else:
                    return None
            elif step.startswith("["):
                index = int(step[1:-1])
                node = node[index] if isinstance(node, list) and index < len(node) else None
                named, read = named + step, read + step
            else:
                node = node.get(step[1:]) if isinstance(node, dict) else None
                named, read = named + step, read + step
        return named

    def _fails_under(self, document: Any, path: str, *, as_text: bool) -> bool:
        try:
            if as_text:
                self._decoder.decode(msgspec.json.encode(document))
            else:
                msgspec.convert(document, self._union)
        except msgspec.ValidationError as error:
            at = _AT_PATH.search(str(error))
            return at is not None and at.group("path").startswith(path)
        except (msgspec.DecodeError, RecursionError):
            return False
        return False

    def explain(self, message: str) -> tuple[str, str]:
        """Splits msgspec's `reason - at `$.path`` and says the reason in the document's terms."""
        reason, at, path = message.rpartition(" - at `")
        if at:
            path = path.removesuffix("`")
        else:
            reason, path = message, "$"
        own = _OWN.match(reason)
        if own and own.group("field").partition(".")[0] in self._fields:
            return f"{path}.{own.group('field')}", own.group("reason")
        missing = _MISSING.match(reason)
        if missing:
            return f"{path}.{missing.group('field')}", "required field is missing"
        unknown = _UNKNOWN.match(reason)
        if unknown:
            return f"{path}.{unknown.group('field')}", "unknown field"
        bad_tag = _BAD_TAG.match(reason)
        if bad_tag and path.endswith(".type"):
            return path, f"{bad_tag.group('value')} is not a {self._noun} type: use {self._tags}"
        bad_enum = _BAD_ENUM.match(reason)
        enum = self._enums.get(path.rpartition(".")[2])
        if bad_enum and enum is not None:
            allowed = ", ".join(str(member) for member in enum)
            return path, f"{bad_enum.group('value')} is not one of {allowed}"
        return path, reason


# A `ValueError` of a Struct's own checks (`InvalidValue`) reads `field: reason`, the field
# perhaps a path below it (`first_response.chat`, `tiers.vip.next_response.email`).
_OWN = re.compile(r"^(?P<field>\w+(?:\.[^:]+?)*): (?P<reason>.*)$", re.DOTALL)
_AT_PATH = re.compile(r"`(?P<path>\$[^`]*)`$")
_STEP = re.compile(r"\.\w+|\[\d+\]|\[\.\.\.\]")
_MISSING_AT = re.compile(r"missing required field `([^`]+)`")
_MISSING = re.compile(r"^Object missing required field `(?P<field>[^`]+)`$")
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<field>[^`]+)`$")
_BAD_TAG = re.compile(r"^Invalid value (?P<value>'[^']*'|-?\d+)$")
_BAD_ENUM = re.compile(r"^Invalid enum value (?P<value>'[^']*'|-?\d+)$")
