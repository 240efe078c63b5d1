"""`chorus audit export`: the event log written to a file as the same JSON lines as
`GET /v1/audit/events`, page after page to the end, with a progress bar."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from uuid import UUID

from domain.shared.times import time_fault

if TYPE_CHECKING:
    import argparse

    from application.audit.event_log import ReadAuditLog
    from entrypoints.settings import Settings
    from ports.audit import LogFilter

__all__ = ["add_audit_parser", "run_audit"]


def add_audit_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    audit = commands.add_parser("audit", help="the event log, for auditors")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True)
    export = audit_commands.add_parser(
        "export", help="write the log (or part of it) as JSON lines, as GET /v1/audit/events"
    )
    export.add_argument("--out", type=Path, required=True, help="the file to write")
    export.add_argument("--since", help="recorded at or after this ISO 8601 time")
    export.add_argument("--until", help="recorded before this ISO 8601 time")
    export.add_argument(
        "--type", action="append", default=[], help="an event's stable name (repeatable)"
    )
    export.add_argument("--stream", action="append", default=[], help="a stream id (repeatable)")
    export.add_argument("--after", help="resume after this cursor (a line's `cursor`)")
    export.add_argument(
        "--page", type=int, default=5_000, help="events a page, 1 to 10000 (default 5000)"
    )


def _time(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise SystemExit(f"chorus: {option} {text!r} is not an ISO 8601 time") from None
    reason = time_fault(value)
    if reason is not None:
        raise SystemExit(f"chorus: {option} {reason}")
    return value


def _filter(args: argparse.Namespace) -> LogFilter:
    from domain.catalog import TOPICS
    from ports.audit import LogFilter

    unknown = [t for t in args.type if t not in TOPICS.readable()]
    if unknown:
        raise SystemExit(f"chorus: --type {unknown[0]!r} is not the stable name of an event")
    try:
        streams = tuple(UUID(s) for s in args.stream)
    except ValueError:
        raise SystemExit("chorus: --stream takes a stream's id, a UUID") from None
    return LogFilter(
        streams=streams,
        topics=tuple(sorted(set(args.type))),
        since=_time(args.since, "--since"),
        until=_time(args.until, "--until"),
    )


async def export(log: ReadAuditLog, where: LogFilter, args: argparse.Namespace) -> int:
    """Writes every page to the end readable now; returns how many events were written."""
    # Here rather than at the top: every `chorus` command imports this module.
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from entrypoints.audit_lines import cursor_text, line_of, parse_cursor

    after = parse_cursor(args.after)
    end = await log.end()
    written = 0
    console = Console(stderr=True)
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[events]:,} events"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    # The bar measures the way through the log by position, whatever the filter keeps.
    with Progress(*columns, console=console) as progress, args.out.open("wb") as out:
        task = progress.add_task("exporting", total=max(end.position, 1), events=0)
        progress.update(task, completed=min(after.position, end.position))
        while True:
            plan = await log.plan(where, after, args.page)
            async for event in log.events(where, plan):
                out.write(line_of(event))
                written += 1
            after = plan.next
            progress.update(task, completed=min(after.position, end.position), events=written)
            if plan.at_end:
                progress.update(task, completed=max(end.position, 1))
                break
    console.print(
        f"wrote {written:,} events to {args.out}; resume with --after {cursor_text(after)}"
    )
    return written


async def run_audit(settings: Settings, args: argparse.Namespace) -> None:
    from application.audit.event_log import ReadAuditLog
    from application.audit.refusals import AuditQueryRefused
    from entrypoints.ioc import make_container

    where = _filter(args)
    container = make_container(settings)
    try:
        log = await container.get(ReadAuditLog)
        await export(log, where, args)
    except AuditQueryRefused as refused:
        option = "--page" if refused.parameter == "limit" else f"--{refused.parameter}"
        raise SystemExit(f"chorus: {option} {refused.reason}") from None
    finally:
        await container.close()
