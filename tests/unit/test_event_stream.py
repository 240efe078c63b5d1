"""Server-sent events as the API writes them: a keep-alive is a comment alone, which a client
reads as no event; events keep their type, id and data, a line of data to a line."""

from __future__ import annotations

from entrypoints.http.event_stream import KEEP_ALIVE, comment, event


class TestTheFrames:
    def test_a_keep_alive_is_a_comment_and_a_blank_line_with_no_data(self) -> None:
        assert KEEP_ALIVE == ": keep-alive\r\n\r\n"
        assert "data:" not in KEEP_ALIVE

    def test_a_comment_of_several_lines_is_a_comment_line_each(self) -> None:
        assert comment("a\nb") == ": a\r\n: b\r\n\r\n"

    def test_an_event_has_its_type_id_and_data_and_ends_with_a_blank_line(self) -> None:
        assert event("conversation", 1042, '{"id": 1}') == (
            'event: conversation\r\nid: 1042\r\ndata: {"id": 1}\r\n\r\n'
        )

    def test_data_of_several_lines_is_a_data_line_each_and_fields_keep_to_one_line(
        self,
    ) -> None:
        assert event("a\nb", "1\r2", "x\ny") == "event: ab\r\nid: 12\r\ndata: x\r\ndata: y\r\n\r\n"
