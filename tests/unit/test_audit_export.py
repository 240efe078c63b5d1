"""`chorus audit export` and the audit log's wire: the lines, the cursor, the options."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

import pytest

from adapters.inmemory.audit_log import InMemoryAuditLog
from application.audit.event_log import ReadAuditLog
from application.audit.refusals import AuditQueryRefused
from domain.customer.contact import ConsentRecord
from domain.policy.vocabulary import Channel, Purpose
from entrypoints.audit_cli import _filter, add_audit_parser, export
from entrypoints.audit_lines import cursor_text, parse_cursor
from ports.audit import LogCursor, LogFilter
from tests.unit.in_memory_chorus import InMemoryChorus, claim

if TYPE_CHECKING:
    from pathlib import Path


def options(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_audit_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["audit", "export", *argv])


def files_in(folder: Path) -> list[str]:
    """No part of an export is ever left beside it."""
    return sorted(path.name for path in folder.iterdir())


async def a_log() -> InMemoryChorus:
    chorus = InMemoryChorus()
    ana = (await chorus.upsert((claim("email", "ana@example.org"),), {}, {})).customer_id
    for granted in (True, False, True):
        consent = ConsentRecord(Channel.EMAIL, Purpose.MARKETING, granted, "preference centre")
        await chorus.change_consent(ana, [consent])
    return chorus


class TestExport:
    async def test_it_writes_every_event_as_the_line_the_api_answers(self, tmp_path: Path) -> None:
        chorus = await a_log()
        out = tmp_path / "log.jsonl"
        log = ReadAuditLog(InMemoryAuditLog(chorus.storage))
        written = await export(log, LogFilter(), options("--out", str(out), "--page", "2"))
        lines = [json.loads(line) for line in out.read_text().splitlines()]
        stored = chorus.storage.events.log
        assert written == len(lines) == len(stored)
        assert [line["position"] for line in lines] == [e.position for e in stored]
        assert [line["payload"] for line in lines] == [dict(e.data) for e in stored]
        assert lines[1]["cursor"] == "0.2"
        assert set(lines[0]) == {
            "position", "cursor", "stream", "version", "type", "recorded_at", "payload",
        }  # fmt: skip

    async def test_it_resumes_after_a_cursor(self, tmp_path: Path) -> None:
        chorus = await a_log()
        out = tmp_path / "rest.jsonl"
        log = ReadAuditLog(InMemoryAuditLog(chorus.storage))
        await export(log, LogFilter(), options("--out", str(out), "--after", "0.2"))
        assert [json.loads(line)["position"] for line in out.read_text().splitlines()] == [3, 4]

    @pytest.mark.parametrize(
        "argv",
        [
            ("--page", "0"),
            ("--page", "10001"),
            ("--since", "2026-11-28T00:00:00Z", "--until", "2026-11-27T00:00:00Z"),
            ("--after", "not-a-cursor"),
        ],
    )
    async def test_a_refused_option_leaves_an_earlier_export_as_it_was(
        self, tmp_path: Path, argv: tuple[str, ...]
    ) -> None:
        chorus = await a_log()
        out = tmp_path / "log.jsonl"
        out.write_text("earlier\n")
        args = options("--out", str(out), *argv)
        with pytest.raises(AuditQueryRefused):
            await export(ReadAuditLog(InMemoryAuditLog(chorus.storage)), _filter(args), args)
        assert out.read_text() == "earlier\n"
        assert files_in(tmp_path) == ["log.jsonl"]

    async def test_an_export_that_fails_part_way_leaves_an_earlier_one_and_no_part(
        self, tmp_path: Path
    ) -> None:
        chorus = await a_log()
        out = tmp_path / "log.jsonl"
        out.write_text("earlier\n")
        log = ReadAuditLog(InMemoryAuditLog(chorus.storage))
        calls = 0

        async def plan_then_fail(*given: object) -> object:
            nonlocal calls
            calls += 1
            if calls > 1:
                raise ConnectionError("the database went away")
            return await ReadAuditLog.plan(log, *given)  # type: ignore[arg-type]

        log.plan = plan_then_fail  # type: ignore[method-assign,assignment]
        with pytest.raises(ConnectionError):
            await export(log, LogFilter(), options("--out", str(out), "--page", "1"))
        assert out.read_text() == "earlier\n"
        assert files_in(tmp_path) == ["log.jsonl"]

    async def test_a_whole_export_replaces_an_earlier_one_keeping_its_mode(
        self, tmp_path: Path
    ) -> None:
        chorus = await a_log()
        out = tmp_path / "log.jsonl"
        out.write_text("earlier\n")
        out.chmod(0o640)
        log = ReadAuditLog(InMemoryAuditLog(chorus.storage))
        written = await export(log, LogFilter(), options("--out", str(out)))
        assert len(out.read_text().splitlines()) == written == len(chorus.storage.events.log)
        assert out.stat().st_mode & 0o777 == 0o640
        assert files_in(tmp_path) == ["log.jsonl"]

    @pytest.mark.parametrize(
        ("where", "said"),
        [("missing/dir/x.jsonl", "cannot be written: No such file"), (".", "is a directory")],
    )
    async def test_a_path_no_file_can_be_written_at_is_one_line_and_a_failed_exit(
        self, tmp_path: Path, where: str, said: str
    ) -> None:
        chorus = await a_log()
        out = tmp_path / where
        log = ReadAuditLog(InMemoryAuditLog(chorus.storage))
        with pytest.raises(SystemExit) as refused:
            await export(log, LogFilter(), options("--out", str(out)))
        message = str(refused.value.code)
        assert message.startswith(f"chorus: --out {out} ")
        assert said in message
        assert "\n" not in message

    def test_options_it_cannot_use_stop_it_before_it_writes(self) -> None:
        for argv in (
            ("--type", "Customer.Nothing"),
            ("--stream", "ana"),
            ("--since", "yesterday"),
            ("--until", "2026-11-27T10:00:00"),
        ):
            with pytest.raises(SystemExit, match="chorus: --"):
                _filter(options("--out", "x", *argv))


class TestCursors:
    def test_a_cursor_reads_back_as_the_place_it_was_made_from(self) -> None:
        place = LogCursor(2**63 - 1, 17)
        assert parse_cursor(cursor_text(place)) == place
        assert parse_cursor(None) == parse_cursor("") == LogCursor()

    @pytest.mark.parametrize(
        "text", ["1", "a.b", "1.2.3", "-1.2", "9223372036854775808.1", " 1.2", "1.2\n", "\uff11.2"]
    )
    def test_anything_else_is_refused_naming_after(self, text: str) -> None:
        with pytest.raises(AuditQueryRefused) as refused:
            parse_cursor(text)
        assert refused.value.parameter == "after"
