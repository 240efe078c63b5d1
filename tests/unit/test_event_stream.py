"""Server-sent events as the API writes them: a stream opens with a reconnection delay and a
comment at once, before its first event; a keep-alive is a comment alone, which a client reads
as no event; events keep their type, id and data, a line of data to a line."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from entrypoints.http.event_stream import KEEP_ALIVE, OPENING, EventStream, comment, event


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


class TestTheStream:
    def test_the_opening_sets_the_reconnection_delay_and_makes_no_event(self) -> None:
        assert OPENING == "retry: 3000\r\n: open\r\n\r\n"

    async def test_the_opening_comes_before_the_first_frame_and_closing_closes_the_frames(
        self,
    ) -> None:
        asked: list[str] = []

        async def frames() -> AsyncGenerator[str, None]:
            try:
                asked.append("first")
                yield KEEP_ALIVE
                yield event("conversation", 1, "{}")
            finally:
                asked.append("closed")

        answer = EventStream(frames(), headers={"Cache-Control": "no-store"})
        assert answer.media_type == "text/event-stream"
        assert answer.headers["Cache-Control"] == "no-store"
        assert answer.headers["X-Accel-Buffering"] == "no"
        chunks = answer.iterator
        assert isinstance(chunks, AsyncGenerator)
        assert await anext(chunks) == OPENING
        assert asked == []  # the opening waits for nothing
        assert await anext(chunks) == KEEP_ALIVE
        await chunks.aclose()
        assert asked == ["first", "closed"]
