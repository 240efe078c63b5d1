"""`chorus erasure seal-existing`: the events stored in clear before sealing existed, sealed
in place under their customers' keys, batch by batch with a progress bar (docs/erasure.md).
Run it once after upgrading a store that holds such events; stopped, run it again: it takes
up what is left, and with nothing left it changes nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse

    from adapters.postgres.legacy_sealing import LegacySealing
    from entrypoints.settings import Settings

__all__ = ["add_erasure_parser", "run_erasure"]


def add_erasure_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    erasure = commands.add_parser("erasure", help="personal data and its erasure")
    erasure_commands = erasure.add_subparsers(dest="erasure_command", required=True)
    seal = erasure_commands.add_parser(
        "seal-existing",
        help="seal the personal values of events stored in clear before sealing existed",
    )
    seal.add_argument(
        "--batch", type=int, default=500, help="events a transaction, 1 to 10000 (default 500)"
    )


async def seal_existing(sealing: LegacySealing, batch: int) -> tuple[int, int, int]:
    """Seals every candidate with a progress bar on stderr; (sealed, erased, left in clear)."""
    # Here rather than at the top: every `chorus` command imports this module.
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from adapters.postgres.legacy_sealing import SealingCursor

    console = Console(stderr=True)
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[sealed]:,} sealed"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    total = await sealing.remaining()
    sealed = erased = left = 0
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("sealing", total=max(total, 1), sealed=0)
        cursor = SealingCursor()
        while True:
            done = await sealing.seal_batch(cursor, batch)
            if done.at_end:
                break
            sealed, erased, left = (
                sealed + done.sealed,
                erased + done.erased,
                left + done.left_clear,
            )
            progress.update(task, advance=done.examined, sealed=sealed + erased)
            cursor = done.next
        progress.update(task, completed=max(total, 1))
    console.print(
        f"sealed {sealed:,} events, wrote {erased:,} erased (their customer was erased), "
        f"left {left:,} in clear (a received signal of no customer and no readable identity)"
    )
    return sealed, erased, left


async def run_erasure(settings: Settings, args: argparse.Namespace) -> None:
    import asyncpg

    from adapters.postgres.legacy_sealing import LegacySealing
    from domain.customer.identities import IdentityNormalizer
    from entrypoints.ioc import make_container

    if not 1 <= args.batch <= 10_000:
        raise SystemExit("chorus: --batch takes 1 to 10000 events")
    container = make_container(settings)
    try:
        pool = await container.get(asyncpg.Pool)  # and the master key, from the settings
        normalizer = await container.get(IdentityNormalizer)
        await seal_existing(LegacySealing(pool, normalizer), args.batch)
    finally:
        await container.close()
