"""`chorus audit export`: the event log written to a file as the same JSON lines as
`GET /v1/audit/events`, page after page to the end, with a progress bar. `chorus audit
verify`: the log replayed and checked, each check reported, a non-zero exit on any
difference."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from uuid import UUID

from domain.shared.times import time_fault

if TYPE_CHECKING:
    import argparse
    from typing import IO

    from rich.console import Console
    from rich.progress import Progress as Bars
    from rich.progress import TaskID

    from application.audit.event_log import ReadAuditLog
    from application.audit.verify import CheckReport
    from entrypoints.settings import Settings
    from ports.audit import LogFilter

__all__ = ["add_audit_parser", "print_reports", "run_audit", "verify"]


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
    check = audit_commands.add_parser(
        "verify",
        help="replay the log and check it: read models, allowing decisions, decisions again",
    )
    check.add_argument(
        "--show", type=int, default=20, help="differences shown per check (default 20)"
    )
    check.add_argument(
        "--skip-read-models",
        action="store_true",
        help="leave out the comparison of each read model with its rebuild",
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


def _part_beside(out: Path) -> IO[bytes]:
    """A new file beside `out`, to become it once whole: an export that fails or is stopped
    leaves an earlier file of that name as it was. A path no file can be written at is one
    line, and a non-zero exit."""
    import os
    import tempfile

    if out.is_dir():
        raise SystemExit(f"chorus: --out {out} is a directory: name a file")
    try:
        part = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed by the export
            "wb", dir=out.parent, prefix=f".{out.name}.", suffix=".part", delete=False
        )
    except OSError as error:
        raise SystemExit(f"chorus: --out {out} cannot be written: {error.strerror}") from None
    # As `open` would have made it (or as the file it replaces): not the temporary's 0600.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(part.name, out.stat().st_mode & 0o777 if out.exists() else 0o666 & ~umask)
    return part


async def export(log: ReadAuditLog, where: LogFilter, args: argparse.Namespace) -> int:
    """Writes every page to the end readable now; returns how many events were written.

    Every option is checked before anything is written; the file is written beside `--out`
    and takes its name only once the export is whole."""
    import contextlib
    import os

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

    log.check(where, args.page)
    after = parse_cursor(args.after)
    part = _part_beside(args.out)
    written = 0
    console = Console(stderr=True)
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[events]:,} events"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    try:
        end = await log.end()
        # The bar measures the way through the log by position, whatever the filter keeps.
        with Progress(*columns, console=console) as progress, part as out:
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
        os.replace(part.name, args.out)
    except BaseException:
        part.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(part.name)
        raise
    console.print(
        f"wrote {written:,} events to {args.out}; resume with --after {cursor_text(after)}"
    )
    return written


class _RichProgress:
    """One bar per check."""

    def __init__(self, bars: Bars) -> None:
        self.bars = bars
        self.tasks: dict[str, tuple[TaskID, int]] = {}

    def begin(self, check: str, total: int) -> None:
        self.tasks[check] = (self.bars.add_task(check, total=max(total, 1)), total)

    def reached(self, check: str, done: int) -> None:
        task, total = self.tasks[check]
        self.bars.update(task, completed=done if total else 1)


def print_reports(console: Console, reports: list[CheckReport]) -> None:
    """The differences found (the first of each check) and a summary line per check."""
    for report in reports:
        if report.shown:
            console.print(f"[bold]{report.check}[/bold]: the first differences")
            for difference in report.shown:
                # As recorded: a row stays on one line, and `api:key:...` is no emoji.
                console.print(
                    f"  {difference.subject}: {difference.detail}",
                    markup=False,
                    emoji=False,
                    soft_wrap=True,
                )
    for report in reports:
        mark = "[green]ok[/green]    " if report.passed else "[red]FAILED[/red]"
        console.print(
            f"{mark} {report.check}: {report.checked:,} checked, "
            f"{report.differences:,} difference(s)"
        )


async def verify(settings: Settings, args: argparse.Namespace) -> list[CheckReport]:
    """Runs the checks with a progress bar on stderr; the reports."""
    import contextlib

    import asyncpg
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from adapters.postgres.read_model_rebuilds import PostgresReadModelRebuilds
    from adapters.postgres.verified_log import PostgresVerifiedLog
    from application.audit.verify import VerifyLog
    from entrypoints.cli import every_projection_runner
    from entrypoints.ioc import make_container

    if args.show < 0:
        raise SystemExit("chorus: --show takes a number of differences, 0 or more")
    console = Console(stderr=True)
    async with contextlib.AsyncExitStack() as stack:
        container = make_container(settings)
        stack.push_async_callback(container.close)
        pool = await container.get(asyncpg.Pool)
        read_models = None
        if not args.skip_read_models:
            runner = await every_projection_runner(container, settings, stack, publish=False)
            await runner.setup()
            read_models = PostgresReadModelRebuilds(runner)
        checks = VerifyLog(PostgresVerifiedLog(pool), read_models, args.show)
        columns = (
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console) as bars:
            reports = await checks(_RichProgress(bars))
    print_reports(Console(), reports)
    return reports


async def run_audit(settings: Settings, args: argparse.Namespace) -> None:
    from application.audit.event_log import ReadAuditLog
    from application.audit.refusals import AuditQueryRefused
    from entrypoints.ioc import make_container

    if args.audit_command == "verify":
        if not settings.database_url:
            raise SystemExit("chorus: set DATABASE_URL")
        reports = await verify(settings, args)
        if not all(report.passed for report in reports):
            raise SystemExit(1)
        return
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
