"""Maps eventsourcing domain events to stored rows and back, with msgspec and upcasting.

Rows name their events by the catalog's stable names (`domain.catalog.TOPICS`), never by where
a class lives; a created event's `originator_topic` is stored as its aggregate's stable name
too, and is eventsourcing's own topic in memory, where eventsourcing resolves it.
"""

from __future__ import annotations

import dataclasses
import enum
import operator
import typing
from typing import Any
from uuid import UUID

import msgspec
import msgspec.structs
from eventsourcing.domain import CanMutateAggregate
from eventsourcing.utils import get_topic, resolve_topic

from adapters.postgres.customer_keys import (
    CUSTOMER_KEYS,
    SEALED_DOCUMENT_PREFIX,
    SEALED_PREFIX,
    sealed_by,
)
from domain.catalog import TOPICS
from domain.shared.personal import ERASED, map_personal

if typing.TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence
    from datetime import datetime

    from adapters.crypto.envelope import DataKey
    from adapters.postgres.customer_keys import CustomerKeys
    from domain.shared.personal import PersonalPath
    from domain.shared.topics import TopicRegistry

__all__ = ["FIND", "EncodedEvent", "EventCodec", "SealedFields", "sealed_fields"]

_HEADER_FIELDS = frozenset({"originator_id", "originator_version", "timestamp"})
_ORIGINATOR = "originator_topic"


_new = object.__new__
_SEALED_BY = "$k"
_SEALED_VALUES = "$v"
_DOCUMENT = "$d"  # a document sealed whole, in the JSON form written before the bytes one
# A document sealed whole as bytes: the prefix, the key's id (16 bytes), the length of the
# clear JSON (4 bytes, big-endian), the clear JSON, then nonce, ciphertext and tag of the
# document, bound to everything before it.
_CLEAR_AT = len(SEALED_DOCUMENT_PREFIX) + 16
_CLEAR_LENGTH = 4
# What a sealed value's place holds: the values themselves are sealed together, in the order
# the paths find them, in `$v` (one AES-GCM operation an event, however many values).
_PLACE = ""


def _header_end(payload: bytes) -> int:
    """Where the header of a document sealed whole as bytes ends: its sealed part follows."""
    length = payload[_CLEAR_AT : _CLEAR_AT + _CLEAR_LENGTH]
    return _CLEAR_AT + _CLEAR_LENGTH + int.from_bytes(length, "big")


class _Find(enum.Enum):
    IN_KEYS = enum.auto()


FIND = _Find.IN_KEYS
"""A sealed payload's key, to be found in the codec's keys by the id the payload stores."""


def _erased(_: Any) -> str:
    return ERASED


def sealed_fields(
    fields: dict[str, Any], paths: tuple[PersonalPath, ...], key: DataKey | None, by: UUID
) -> dict[str, Any]:
    """The fields to store: `$k`, then `$v` (the personal values sealed), then the fields with
    each personal value's place left empty; erased ones, when the key is gone."""
    if key is None:
        return {_SEALED_BY: str(by), **map_personal(fields, paths, _erased)}
    values: list[Any] = []

    def take(value: Any) -> str:
        values.append(value)
        return _PLACE

    map_personal(fields, paths, take)
    return {_SEALED_BY: key.id_str, _SEALED_VALUES: key.seal(values), **fields}


_ALL_OF = "*"


def _top_level(
    paths: tuple[PersonalPath, ...], fields: tuple[str, ...]
) -> tuple[tuple[int, bool], ...] | None:
    """Where each path's personal values are, when every path is a field of the event or each
    value of a mapping that is one (`properties.*`): the field's place among the event's own
    fields, and whether it is the mapping's values. None for any other path."""
    found: list[tuple[int, bool]] = []
    for path in paths:
        name, *rest = path.steps
        if name not in fields or rest not in ([], [_ALL_OF]):
            return None
        found.append((fields.index(name), bool(rest)))
    return tuple(found)


_ITSELF = ""


def _top_level_names(paths: tuple[PersonalPath, ...]) -> tuple[tuple[str, str], ...] | None:
    """Where the paths' personal values are, when each is a field of the event, each value of
    a mapping that is one (`attributes.*`), or one value of such a mapping (`profile.first_name`):
    the field's name, and `_ITSELF`, `*` or the value's name in it. None for any other path:
    for opening a payload's fields."""
    found: list[tuple[str, str]] = []
    for path in paths:
        name, *rest = path.steps
        if not rest:
            found.append((name, _ITSELF))
        elif len(rest) == 1 and rest[0] != "[]":
            found.append((name, rest[0]))
        else:
            return None
    return tuple(found)


def _opened_at_top(
    fields: dict[str, Any], places: tuple[tuple[str, str], ...], values: Iterator[Any]
) -> dict[str, Any]:
    """`map_personal` of the opened `values` back into their places, for paths that are
    fields or in one (`_top_level_names`), without walking them through closures."""
    for name, inner in places:
        value = fields.get(name)
        if value is None:
            continue
        if inner == _ITSELF:
            fields[name] = next(values)
        elif not isinstance(value, dict):
            continue
        elif inner == _ALL_OF:
            fields[name] = {k: None if v is None else next(values) for k, v in value.items()}
        elif value.get(inner) is not None:
            value[inner] = next(values)
    return fields


def _opened_fields(
    fields: dict[str, Any],
    paths: tuple[PersonalPath, ...],
    key: DataKey | None,
    places: tuple[tuple[str, str], ...] | None = None,
) -> dict[str, Any]:
    del fields[_SEALED_BY]
    sealed = fields.pop(_SEALED_VALUES, None)
    if key is None or sealed is None:
        return map_personal(fields, paths, _erased)
    values = iter(key.open(sealed))
    if places is not None:
        return _opened_at_top(fields, places, values)
    return map_personal(fields, paths, lambda _: next(values))


class SealedFields:
    """The fields of a stored event left sealed (`EventCodec.decode_unopened`), opened once
    when first asked for, as `EventCodec.decode` would have them."""

    __slots__ = ("_codec", "_key", "_kind", "_opened", "_payload")

    def __init__(self, codec: EventCodec, kind: _EventType, payload: bytes, key: DataKey) -> None:
        self._codec = codec
        self._kind = kind
        self._payload = payload
        self._key = key
        self._opened: dict[str, Any] | None = None

    def opened(self) -> dict[str, Any]:
        if self._opened is None:
            kind = self._kind
            fields = self._codec.opened(kind.topic, self._payload, self._key)
            if fields is None:  # never: only payloads with sealed values are left so
                fields = msgspec.json.decode(self._payload)
            body = msgspec.convert(fields, kind.body, strict=False)
            self._opened = msgspec.structs.asdict(body)
        return self._opened


class EncodedEvent(msgspec.Struct, frozen=True, array_like=True):
    stream_id: UUID
    version: int
    topic: str
    class_version: int
    occurred_at: datetime
    payload: bytes


class _EventType:
    """How one event class is written and read."""

    def __init__(self, cls: type[CanMutateAggregate[UUID]], topic: str) -> None:
        self.cls = cls
        self.topic = topic
        self.class_version: int = getattr(cls, "class_version", 1)
        hints = typing.get_type_hints(cls)
        fields = dataclasses.fields(cls)  # type: ignore[arg-type]
        self.fields = tuple(f.name for f in fields if f.name not in _HEADER_FIELDS)
        body = msgspec.defstruct(
            f"{cls.__qualname__}Body", [(name, hints[name]) for name in self.fields]
        )
        self.decoder = msgspec.json.Decoder(body)
        self.personal: tuple[PersonalPath, ...] = ()
        # Where the personal values are among the event's own fields, when they can be taken
        # from them directly (`_top_level`): sealed without turning the event into builtins.
        self.personal_fields: tuple[tuple[int, bool], ...] | None = None
        self.loose_decoder = msgspec.json.Decoder(dict[str, Any])
        self.body = body
        self.creates = _ORIGINATOR in self.fields
        self.originator_at = self.fields.index(_ORIGINATOR) if self.creates else -1
        # Read at once and encoded as the body struct (the same JSON as a dict of the fields, in
        # their order): a third cheaper, and attribution encodes an event per signal.
        self.values: Callable[[Any], Any] = (
            operator.attrgetter(*self.fields)
            if len(self.fields) > 1
            else lambda event: tuple(getattr(event, name) for name in self.fields)
        )

    def upcast(self, state: dict[str, Any], from_version: int) -> Any:
        while from_version < self.class_version:
            getattr(self.cls, f"upcast_v{from_version}_v{from_version + 1}")(state)
            from_version += 1
        return msgspec.convert(state, self.body, strict=False)


class EventCodec:
    """Encodes an event's own fields as JSON; id, version and time live in columns.

    The personal values of an event about a customer (`domain.shared.personal`) are sealed
    with that customer's key, and the payload starts with `"$k"`, the customer's id; they are
    opened on decoding, and read as `[erased]` once the key is gone. Payloads stored before
    (no `"$k"`) read as they are. The keys must be loaded before (`CustomerKeys.load_for`,
    `ensure`): encoding and decoding are synchronous.
    """

    def __init__(self, topics: TopicRegistry = TOPICS, keys: CustomerKeys = CUSTOMER_KEYS) -> None:
        self.topics = topics
        self.keys = keys
        self._by_class: dict[type, _EventType] = {}
        self._by_topic: dict[str, _EventType] = {}
        self._stored_originators: dict[str, str] = {}
        self._loaded_originators: dict[str, str] = {}
        self._places_by_topic: dict[str, tuple[tuple[str, str], ...] | None] = {}
        self._unopened_by_topic: dict[str, tuple[tuple[str, str], ...] | None] = {}
        self._encoder = msgspec.json.Encoder()

    def _type_of_class(self, cls: type) -> _EventType:
        found = self._by_class.get(cls)
        if found is None:
            found = _EventType(cls, self.topics.topic_of(cls))
            found.personal = self.topics.personal(found.topic)
            found.personal_fields = _top_level(found.personal, found.fields)
            self._by_class[cls] = found
            self._by_topic[found.topic] = found
        return found

    def _type_of_topic(self, topic: str) -> _EventType:
        found = self._by_topic.get(topic)
        if found is None:
            found = self._type_of_class(self.topics.class_of(topic))
            self._by_topic[topic] = found  # an old name, renamed: read as the class now
        return found

    def _stored_originator(self, originator_topic: str) -> str:
        found = self._stored_originators.get(originator_topic)
        if found is None:
            found = self.topics.topic_of(resolve_topic(originator_topic))
            self._stored_originators[originator_topic] = found
        return found

    def _loaded_originator(self, stored: str) -> str:
        found = self._loaded_originators.get(stored)
        if found is None:
            found = get_topic(self.topics.class_of(stored))
            self._loaded_originators[stored] = found
        return found

    def personal_subject(self, event: CanMutateAggregate[UUID], subject: UUID | None) -> bool:
        """Whether encoding this event about `subject` seals values (needs its key)."""
        if subject is None:
            return False
        kind = self._by_class.get(type(event)) or self._type_of_class(type(event))
        return bool(kind.personal)

    def encode(self, event: CanMutateAggregate[UUID], subject: UUID | None = None) -> EncodedEvent:
        """The event as stored; its personal values sealed with `subject`'s key, if any."""
        kind = self._by_class.get(type(event)) or self._type_of_class(type(event))
        values = kind.values(event)
        if kind.creates:
            values = list(values)
            values[kind.originator_at] = self._stored_originator(values[kind.originator_at])
        if kind.personal and subject is not None:
            payload = self._sealed_values(kind, list(values), subject)
        else:
            payload = self._encoder.encode(kind.body(*values))
        return EncodedEvent(
            event.originator_id,
            event.originator_version,
            kind.topic,
            kind.class_version,
            event.timestamp,
            payload,
        )

    def _sealed_values(self, kind: _EventType, values: list[Any], subject: UUID) -> bytes:
        """The payload of an event with personal values, from its own fields' values (a list
        of its own, changed here)."""
        key = self.keys.key_of(subject)
        if key is not None and kind.personal_fields is not None:
            head = self._sealed_at_top(kind.personal_fields, values, key)
            if head is not None:
                rest = self._encoder.encode(kind.body(*values))[1:]
                return head + (b'"' if rest == b"}" else b'",') + rest
        fields = msgspec.to_builtins(kind.body(*values))
        return self._encoder.encode(sealed_fields(fields, kind.personal, key, subject))

    def _sealed_at_top(
        self, places: tuple[tuple[int, bool], ...], values: list[Any], key: DataKey
    ) -> bytes | None:
        """Leaves each personal value's place empty in the event's field `values` and returns
        the payload's start, up to the end of their sealed text: as `sealed_fields` stores
        them, without turning the whole event into builtins and walking them. None, `values`
        untouched, when a mapping of personal values is not a `dict` (`sealed_fields` takes
        it then)."""
        for place, each in places:
            if each and values[place] is not None and type(values[place]) is not dict:
                return None
        taken: list[Any] = []
        for place, each in places:
            value = values[place]
            if value is None:
                continue
            if not each:
                taken.append(value)
                values[place] = _PLACE
                continue
            items = value.values()
            if None in items:  # an absent value says nothing about anyone: left as it is
                values[place] = {name: None if v is None else _PLACE for name, v in value.items()}
                taken.extend([item for item in items if item is not None])
            else:
                values[place] = dict.fromkeys(value, _PLACE)
                taken.extend(items)
        sealed = key.seal_json_text(self._encoder.encode(taken))
        return b'{"$k":"' + key.id_text + b'","$v":"' + sealed

    def sealed_document(
        self, topic: str, payload: bytes, key_id: UUID, clear: dict[str, Any]
    ) -> bytes:
        """A document of `topic` (a received signal, as the producer sent it) sealed whole by
        the key `key_id` (loaded before), beside the `clear` fields that hold nothing personal
        (its id). Whole: parsing it to seal its values one by one would cost intake more than
        storing it; once erased, it reads as `clear` and its personal fields `[erased]`."""
        if not self.topics.personal(topic):
            return payload
        return self._sealed_whole(payload, key_id, self._encoder.encode(clear))

    def sealed_documents(
        self, topic: str, documents: Sequence[tuple[bytes, UUID, Mapping[str, object]]]
    ) -> list[bytes]:
        """`sealed_document` of each `(payload, key id, clear fields)`, the clear fields (its
        id, and what else stays readable once erased) kept beside the sealed whole: intake
        seals every signal it commits, so the keys are found once a batch."""
        if not self.topics.personal(topic):
            return [payload for payload, _, _ in documents]
        encode = self._encoder.encode
        heads: dict[UUID, tuple[DataKey, bytes] | None] = {}
        sealed: list[bytes] = []
        for payload, key_id, kept in documents:
            clear = encode(kept)
            try:
                found = heads[key_id]
            except KeyError:
                key = self.keys.key_of(key_id)
                found = heads[key_id] = (
                    None if key is None else (key, SEALED_DOCUMENT_PREFIX + key.bound_to)
                )
            if found is None:
                sealed.append(self._sealed_whole(payload, key_id, clear))
                continue
            key, head = found
            header = head + len(clear).to_bytes(_CLEAR_LENGTH, "big") + clear
            sealed.append(header + key.seal_raw(payload, header))
        return sealed

    def _sealed_whole(self, payload: bytes, key_id: UUID, clear: bytes) -> bytes:
        key = self.keys.key_of(key_id)
        if key is None:  # erased already: only the clear fields are kept
            rest = b"}" if clear == b"{}" else b"," + clear[1:]
            return b'{"$k":"' + str(key_id).encode("ascii") + b'"' + rest
        header = (
            SEALED_DOCUMENT_PREFIX
            + key.bound_to
            + len(clear).to_bytes(_CLEAR_LENGTH, "big")
            + clear
        )
        return header + key.seal_raw(payload, header)

    def _key_of(self, payload: bytes) -> DataKey | None:
        """The key that sealed a payload holding sealed values, loaded before."""
        subject = sealed_by(payload)
        return None if subject is None else self.keys.key_of(subject)

    def _opened_whole(self, payload: bytes, key: DataKey | None) -> bytes | None:
        """A document sealed whole as bytes: its JSON, or None once erased (`_erased_whole`).
        Its clear fields are read only then: the document holds them too."""
        if key is None:
            return None
        end = _header_end(payload)
        return key.open_raw(payload[end:], payload[:end])

    def _erased_whole(self, topic: str, payload: bytes) -> dict[str, Any]:
        """A document sealed whole as bytes, once its key is gone: its clear fields only."""
        clear: dict[str, Any] = msgspec.json.decode(
            payload[_CLEAR_AT + _CLEAR_LENGTH : _header_end(payload)]
        )
        return self._erased_document(topic, clear)

    def as_recorded(
        self, topic: str, payload: bytes, key: DataKey | _Find | None = FIND
    ) -> tuple[dict[str, Any] | None, bytes | None]:
        """What a recorded event holds of a stored payload: its plain fields, or its plain
        JSON (a document sealed whole opens to the bytes the producer sent, with no decoding
        and encoding again), or the payload itself when it holds nothing sealed. `key`: the
        key that sealed it (None: erased), when the caller found it already."""
        whole = payload[:2] == SEALED_DOCUMENT_PREFIX
        if not whole and payload[:7] != SEALED_PREFIX:
            return None, payload
        if key is FIND:
            key = self._key_of(payload)
        if whole:
            document = self._opened_whole(payload, key)
            if document is not None:
                return None, document
            return self._erased_whole(topic, payload), None
        if topic in self.topics.documents:
            fields: dict[str, Any] = msgspec.json.decode(payload)
            if key is not None and _DOCUMENT in fields:
                return None, key.open_json(fields[_DOCUMENT])
        if key is None:
            return self.opened(topic, payload, key), None
        plain = self.keys.opened_before(payload, key)
        if plain is not None:
            return None, plain
        opened = self.opened(topic, payload, key)
        if opened is not None:
            self.keys.keep_opened(payload, key, self._encoder.encode(opened))
        return opened, None

    def opened(
        self, topic: str, payload: bytes, key: DataKey | _Find | None = FIND
    ) -> dict[str, Any] | None:
        """The plain fields of a payload holding sealed values, opened (or erased); None
        when it holds none. `key`: as for `as_recorded`."""
        whole = payload[:2] == SEALED_DOCUMENT_PREFIX
        if not whole and payload[:7] != SEALED_PREFIX:
            return None
        if key is FIND:
            key = self._key_of(payload)
        if whole:
            document = self._opened_whole(payload, key)
            if document is None:
                return self._erased_whole(topic, payload)
            opened: dict[str, Any] = msgspec.json.decode(document)
            return opened
        fields: dict[str, Any] = msgspec.json.decode(payload)
        if _DOCUMENT in fields or topic in self.topics.documents:
            if key is None or _DOCUMENT not in fields:
                del fields[_SEALED_BY]
                fields.pop(_DOCUMENT, None)
                return self._erased_document(topic, fields)
            document_fields: dict[str, Any] = key.open(fields[_DOCUMENT])
            return document_fields
        paths = self.topics.personal(topic)
        try:
            places = self._places_by_topic[topic]
        except KeyError:
            places = self._places_by_topic[topic] = _top_level_names(paths)
        return _opened_fields(fields, paths, key, places)

    def _erased_document(self, topic: str, clear: dict[str, Any]) -> dict[str, Any]:
        """A document sealed whole, once its key is gone: its clear fields, the rest erased."""
        return {**clear, **{path.steps[0]: ERASED for path in self.topics.personal(topic)}}

    def decode(
        self,
        stream_id: UUID,
        version: int,
        topic: str,
        class_version: int,
        occurred_at: datetime,
        payload: bytes,
        key: DataKey | _Find | None = FIND,
    ) -> CanMutateAggregate[UUID]:
        """The event a row stores, its sealed values opened by `key` (as for `as_recorded`)."""
        kind = self._type_of_topic(topic)
        opened = self.opened(topic, payload, key) if kind.personal else None
        if opened is not None:
            body = kind.upcast(opened, class_version)
        elif class_version == kind.class_version:
            body = kind.decoder.decode(payload)
        else:
            body = kind.upcast(kind.loose_decoder.decode(payload), class_version)
        # Filled in place rather than through the frozen dataclass's __init__, which costs
        # three times as much (setattr per field, and a check that a stored id is a UUID):
        # processes decode every event of the topics they handle.
        event = _new(kind.cls)
        values = event.__dict__
        values["originator_id"] = stream_id
        values["originator_version"] = version
        values["timestamp"] = occurred_at
        values.update(msgspec.structs.asdict(body))
        if kind.creates:
            values[_ORIGINATOR] = self._loaded_originator(values[_ORIGINATOR])
        return event

    def unopened_places(self, topic: str) -> tuple[tuple[str, str], ...] | None:
        """Where the personal values of `topic`'s events are when every one is a value of a
        mapping among their fields (`profile.first_name`, `attributes.*`): (field, name or
        `*`). None when one is anywhere else, or when they hold none."""
        try:
            return self._unopened_by_topic[topic]
        except KeyError:
            pass
        paths = self.topics.personal(topic)
        places: tuple[tuple[str, str], ...] | None = tuple(
            (path.steps[0], path.steps[1])
            for path in paths
            if len(path.steps) == 2 and path.steps[1] != "[]"
        )
        if not paths or len(places or ()) != len(paths) or topic in self.topics.documents:
            places = None
        self._unopened_by_topic[topic] = places
        return places

    def decode_unopened(
        self,
        stream_id: UUID,
        version: int,
        topic: str,
        class_version: int,
        occurred_at: datetime,
        payload: bytes,
        key: DataKey | None,
        unopened: Callable[[SealedFields, str, str], Any],
    ) -> CanMutateAggregate[UUID]:
        """As `decode`, with its sealed values left sealed: each one's place holds
        `unopened(fields, field, name)`, whose `fields.opened()` are the event's own fields
        opened, as `decode` gives them. Only for a topic with `unopened_places`, sealed by
        `key` (found already; None: not found), in its class's current version; any other
        row is `decode`d, its key found in the keys."""
        kind = self._type_of_topic(topic)
        places = self.unopened_places(topic)
        if (
            places is None
            or key is None
            or class_version != kind.class_version
            or payload[:7] != SEALED_PREFIX
        ):
            return self.decode(stream_id, version, topic, class_version, occurred_at, payload)
        # The body's decoder passes over `$k` and `$v`: each sealed value's place is empty.
        body = msgspec.structs.asdict(kind.decoder.decode(payload))
        sealed: SealedFields | None = None
        for field, name in places:
            mapping = body.get(field)
            if type(mapping) is not dict:
                continue
            for each in mapping if name == _ALL_OF else (name,):
                value = mapping.get(each)
                if type(value) is str and value == _PLACE:
                    if sealed is None:
                        sealed = SealedFields(self, kind, payload, key)
                    mapping[each] = unopened(sealed, field, each)
        event = _new(kind.cls)
        values = event.__dict__
        values["originator_id"] = stream_id
        values["originator_version"] = version
        values["timestamp"] = occurred_at
        values.update(body)
        if kind.creates:
            values[_ORIGINATOR] = self._loaded_originator(values[_ORIGINATOR])
        return event

    def to_plain(self, topic: str, payload: bytes) -> dict[str, Any]:
        """The payload as plain JSON values, for auditors and timelines: opened, or erased."""
        opened = self.opened(topic, payload)
        if opened is not None:
            return opened
        result: dict[str, Any] = msgspec.json.decode(payload)
        return result
