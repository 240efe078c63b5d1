from __future__ import annotations

import json
import unicodedata
from typing import Any

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from entrypoints.text_checks import MAX_DEPTH, document_fault, line_fault, raw_fault, text_fault

controls = st.characters(categories=["Cc"])
surrogates = st.characters(categories=["Cs"])
clean_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cc", "Cs"]), max_size=20)


def _holding(bad: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(clean_text, bad, clean_text).map("".join)


clean_json: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | clean_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(clean_text, inner, max_size=3),
    max_leaves=20,
)


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


class TestLines:
    @given(_holding(controls | surrogates))
    def test_a_line_with_a_control_character_or_a_surrogate_is_refused(self, value: str) -> None:
        assert line_fault(value) is not None

    @given(clean_text)
    def test_a_line_without_one_passes(self, value: str) -> None:
        assert line_fault(value) is None


class TestFreeText:
    @given(st.text(st.sampled_from("ab \t\n\r"), max_size=20))
    def test_free_text_keeps_tabs_and_line_breaks(self, value: str) -> None:
        assert text_fault(value) is None

    @given(_holding(controls.filter(lambda c: c not in "\t\n\r") | surrogates))
    def test_free_text_refuses_every_other_control_character_and_surrogates(
        self, value: str
    ) -> None:
        reason = text_fault(value)
        assert reason is not None
        bad = next(c for c in value if unicodedata.category(c) in ("Cc", "Cs"))
        assert f"U+{ord(bad):04X}" in reason


class TestDocuments:
    @given(clean_json)
    def test_clean_json_up_to_the_depth_limit_passes(self, value: Any) -> None:
        assert _depth(value) <= MAX_DEPTH
        assert document_fault(value) is None
        assert raw_fault(msgspec.json.encode(value)) is None
        assert raw_fault(json.dumps(value).encode()) is None  # \u escapes for all non-ASCII

    @given(
        st.lists(st.sampled_from(["x", "items", "identities"]), min_size=1, max_size=5),
        _holding(controls | surrogates),
    )
    def test_a_bad_string_is_refused_with_its_path(self, keys: list[str], bad: str) -> None:
        document: Any = {"signals": [{"id": "ok", "deep": bad}]}
        for key in reversed(keys):
            document = {key: [document]}
        fault = document_fault(document)
        assert fault is not None
        assert fault.path == "$." + "".join(f"{k}[0]." for k in keys) + "signals[0].deep"

    @given(_holding(controls | surrogates))
    def test_a_bad_key_is_refused_with_its_path(self, bad: str) -> None:
        fault = document_fault({"properties": {bad: 1}})
        assert fault is not None
        assert fault.path == f"$.properties[{bad!a}]"
        assert fault.reason.startswith("its name")

    @given(st.integers(min_value=MAX_DEPTH + 1, max_value=3000))
    def test_a_document_nested_deeper_than_the_limit_is_refused(self, depth: int) -> None:
        raw = b'{"a":' * depth + b"1" + b"}" * depth
        fault = raw_fault(raw)
        assert fault is not None
        assert "nested deeper than 32" in fault.reason
        assert fault.path == "$" + ".a" * MAX_DEPTH

    @given(clean_json, st.integers(min_value=MAX_DEPTH + 1, max_value=100_000))
    def test_the_path_in_to_the_nesting_is_named_however_deep(self, value: Any, depth: int) -> None:
        """Deeper than a decoder can read (about 1,000 levels) as well as just too deep."""

        def nested(levels: int) -> bytes:
            document = {"x": [value, {'k]"[': "\u0000"}], "y": value}
            deep = "[" * levels + "]" * levels
            return json.dumps(document).replace('"\\u0000"', deep).encode()

        fault = raw_fault(nested(depth))
        assert fault is not None
        assert fault.reason == "is nested deeper than 32 levels"
        assert fault.path == "$.x[1]['k]\"['][0]" + "[0]" * (MAX_DEPTH - 4)
        assert fault == raw_fault(nested(MAX_DEPTH + 1))

    @given(st.integers(min_value=MAX_DEPTH + 1, max_value=100_000))
    def test_a_bare_array_nested_deeper_than_the_limit_is_refused_at_its_path(
        self, depth: int
    ) -> None:
        fault = raw_fault(b"[" * depth + b"]" * depth)
        assert fault is not None
        assert (fault.path, fault.reason) == (
            "$" + "[0]" * MAX_DEPTH,
            "is nested deeper than 32 levels",
        )

    def test_a_document_nested_exactly_to_the_limit_passes(self) -> None:
        raw = b"[" * MAX_DEPTH + b"]" * MAX_DEPTH
        assert raw_fault(raw) is None
        assert raw_fault(b'{"a":' * MAX_DEPTH + b"1" + b"}" * MAX_DEPTH) is None

    @given(
        st.lists(st.integers(0x80, 0xFF), min_size=1, max_size=6)
        .map(bytes)
        .filter(lambda b: not _is_utf8(b))
    )
    def test_invalid_utf8_is_refused(self, bad: bytes) -> None:
        fault = raw_fault(b'{"name": "' + bad + b'"}')
        assert fault is not None
        assert "UTF-8" in fault.reason


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


class TestTheRawShortcut:
    @given(clean_json | _holding(controls | surrogates), st.booleans())
    def test_reading_the_raw_bytes_finds_what_the_decoded_walk_finds(
        self, value: Any, ascii_only: bool
    ) -> None:
        document = {"x": [value], "body": value}
        raw = json.dumps(document, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
        try:
            msgspec.json.decode(raw)
        except msgspec.DecodeError:
            return  # msgspec refuses lone surrogates itself: each decoder answers for it
        except UnicodeDecodeError:
            return  # a raw surrogate: invalid UTF-8, tested above
        assert raw_fault(raw) == document_fault(document)
