"""JSON documents the domain reads with msgspec: a tagged union of Structs, checked whole.

A document comes as JSON text or as decoded JSON; a fault is said as where (a JSON path such as
`$.where[0].op`) and why, in the document's own terms rather than msgspec's.
"""

from __future__ import annotations

import copy
import re
import typing
from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from functools import partial
from typing import Any, Generic, Self, TypeVar

import msgspec

from domain.shared.errors import DomainError

__all__ = [
    "DocumentInvalid",
    "DocumentReader",
    "Tagged",
    "document_of",
    "field_named",
    "field_of",
    "json_fault",
    "key_fault",
    "keyed_values",
    "own_field",
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


_UNKNOWN_FIELD = re.compile(r"^Object contains unknown field `([^`]+)`$")


def field_of(error: msgspec.ValidationError | str) -> tuple[str, str]:
    """The JSON path a msgspec error (or its message) is about, and the reason without the
    path."""
    reason, _, path = str(error).partition(" - at `")
    field = path.rstrip("`") if path else "$"
    missing = _MISSING_AT.search(reason)
    if missing:
        field = f"{field}.{missing.group(1)}"
    return field, reason


def field_named(error: msgspec.ValidationError | str) -> tuple[str, str]:
    """As `field_of`, an unknown field named by its own path (`$.colour`), as a missing one
    is: for the edges, which name each field a request sent (documents keep `field_of`'s)."""
    path, reason = field_of(error)
    unknown = _UNKNOWN_FIELD.match(reason)
    if unknown is not None:
        return f"{path}.{unknown.group(1)}", reason
    return path, reason


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


def own_field(path: str, reason: str, document: Any) -> tuple[str, str]:
    """Where a value object's own check (`InvalidValue`) refused a value of the object at
    `path` in `document`: it says `field: reason` (`time_zone: 'Mars/Base' is not ...`), and
    the field is named below `path` (`$.working_hours.time_zone`) when the object has it."""
    own = _OWN.match(reason)
    node = None if own is None else _node_at(document, path)
    if own is None or not isinstance(node, dict):
        return path, reason
    if own.group("field").partition(".")[0] not in node:
        return path, reason
    return f"{path}.{own.group('field')}", own.group("reason")


def _node_at(document: Any, path: str) -> Any:
    """The value at `path` (`$.windows[0]`) in `document`; None where there is none."""
    steps = _STEP.findall(path.removeprefix("$"))
    if not path.startswith("$") or "".join(steps) != path.removeprefix("$"):
        return None
    node: Any = document
    for step in steps:
        if step == "[...]":
            return None
        if step.startswith("["):
            index = int(step[1:-1])
            node = node[index] if isinstance(node, list) and index < len(node) else None
        else:
            node = node.get(step[1:]) if isinstance(node, dict) else None
    return node


def keyed_values(message: str, document: Any, read: Callable[[Any], object]) -> str:
    """msgspec's `message` about `document` (decoded JSON) with each `[...]` it writes for a
    value of a free-keyed object (`$.sla.first_response[...]`) replaced by the key whose value
    is at fault (`$.sla.first_response.chat`); cut at the object when that cannot be told.
    `read` reads a document as the read that failed did, raising `msgspec.ValidationError`."""
    at = _AT_PATH.search(message)
    if at is None or "[...]" not in at.group("path"):
        return message
    path = at.group("path")
    found = _walk_keys(path, copy.deepcopy(document), read)
    named = path.partition("[...]")[0] if found is None else found[0]
    return message[: at.start("path")] + named + message[at.end("path") :]


def key_fault(message: str, document: Any, read: Callable[[Any], object]) -> tuple[str, str] | None:
    """Where and why, for msgspec's `message` about a key of a free-keyed object in `document`
    (`Invalid enum value 'fax' - at `key` in `$.capacity``): the key's own path
    (`$.capacity.fax`), or the object's when the key cannot be told; None for a message about
    anything else. `read` is as for `keyed_values`."""
    at = _AT_KEY.match(message)
    if at is None:
        return None
    path, reason = at.group("path"), at.group("reason")
    found = _walk_keys(path, copy.deepcopy(document), read)
    if found is None:
        return path.partition("[...]")[0], reason
    named, node, root = found
    culprit = _culprit(node, root, partial(_key_at, path=path), read)
    return (named if culprit is None else named + _member(culprit)), reason


def _walk_keys(path: str, root: Any, read: Callable[[Any], object]) -> tuple[str, Any, Any] | None:
    """`path` with each `[...]` named by its key, the value it leads to and the document (cut
    down to the culprits of each `[...]`); None when a key cannot be told."""
    steps = _STEP.findall(path.removeprefix("$"))
    if not path.startswith("$") or "".join(steps) != path.removeprefix("$"):
        return None
    node: Any = root
    named = read_at = "$"
    for step in steps:
        if step == "[...]":
            read_at += step
            key = _culprit(node, root, partial(_under, path=read_at), read)
            if key is None:
                return None
            node, named = node[key], named + _member(key)
        elif step.startswith("["):
            index = int(step[1:-1])
            node = node[index] if isinstance(node, list) and index < len(node) else None
            named, read_at = named + step, read_at + step
        else:
            node = node.get(step[1:]) if isinstance(node, dict) else None
            named, read_at = named + step, read_at + step
    return named, node, root


def _culprit(
    node: Any, root: Any, at_fault: Callable[[str], bool], read: Callable[[Any], object]
) -> str | None:
    """The key of the object `node` (within `root`) that is at fault, leaving it alone in its
    object: values of a free-keyed object are read in order, and the first at fault stops the
    read, so it is the first key that, alone, still fails there. `node` keeps only it."""
    if not isinstance(node, dict):
        return None
    for key, value in list(node.items()):
        node.clear()
        node[key] = value
        try:
            read(root)
        except msgspec.ValidationError as error:
            if at_fault(str(error)):
                return str(key)
        except (msgspec.DecodeError, RecursionError):
            return None
    return None


def _member(key: str) -> str:
    """A key as a step of a JSON path: `.chat`, or `['odd key']` as the edges write one."""
    return f".{key}" if _PLAIN_KEY.match(key) else f"[{key!a}]"


def _under(message: str, path: str) -> bool:
    at = _AT_PATH.search(message)
    return at is not None and at.group("path").startswith(path)


def _key_at(message: str, path: str) -> bool:
    at = _AT_KEY.match(message)
    return at is not None and at.group("path") == path


class DocumentReader(Generic[T]):
    """Reads documents of one union of `Tagged` Structs, raising `invalid` on a fault.

    `noun` names what a tag picks ("'x' is not a {noun} type: use ..." with the tags of the
    union's members, or of the `parts` for a reader of one Struct); `parts` are the Structs
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
        # A tag picks one of the union's members; a reader of one Struct (a routing document)
        # meets tags only in its parts (its rules' conditions).
        tagged = kinds or tuple(parts)
        self._tags = ", ".join(
            str(kind.__struct_config__.tag)
            for kind in tagged
            if kind.__struct_config__.tag is not None
        )
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
        """msgspec's message, each `[...]` of its path named by its key (`keyed_values`)."""
        if not _HAS_VALUE_STEP.search(message):
            return message
        try:
            root: Any = (
                msgspec.json.decode(document)
                if isinstance(document, bytes | str)
                else dict(document)
            )
        except (msgspec.DecodeError, RecursionError):
            return message
        if isinstance(document, bytes | str):
            return keyed_values(message, root, self._read_text)
        return keyed_values(message, root, self._read_builtins)

    def _read_text(self, document: Any) -> object:
        return self._decoder.decode(msgspec.json.encode(document))

    def _read_builtins(self, document: Any) -> object:
        return msgspec.convert(document, self._union)

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
_AT_KEY = re.compile(r"^(?P<reason>.*) - at `key` in `(?P<path>\$[^`]*)`$", re.DOTALL)
_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+$")  # as `entrypoints.text_checks` writes a path
_HAS_VALUE_STEP = re.compile(r"\[\.\.\.\][^`]*`$")
_STEP = re.compile(r"\.\w+|\[\d+\]|\[\.\.\.\]")
_MISSING_AT = re.compile(r"missing required field `([^`]+)`")
_MISSING = re.compile(r"^Object missing required field `(?P<field>[^`]+)`$")
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<field>[^`]+)`$")
_BAD_TAG = re.compile(r"^Invalid value (?P<value>'[^']*'|-?\d+)$")
_BAD_ENUM = re.compile(r"^Invalid enum value (?P<value>'[^']*'|-?\d+)$")
