"""`chorus keys create/list/rotate/revoke`: API keys from the command line, as `/v1/keys`.

A secret is printed once, on stdout alone (so `KEY=$(chorus keys create ...)` keeps it); what
happened goes to stderr. Changes are recorded as made by `cli` on this machine's user.
"""

from __future__ import annotations

import getpass
import sys
from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

from domain.shared.times import time_fault
from ports.api_keys import ApiKeyStore, Role

if TYPE_CHECKING:
    import argparse

    from application.access.create_key import CreateKey
    from entrypoints.settings import Settings
    from ports.api_keys import ApiKey

__all__ = ["add_keys_parser", "run_keys"]


def add_keys_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = commands.add_parser("keys", help="API keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = key_commands.add_parser("create", help="create a key and print it once")
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    create.add_argument("--name", default="cli")
    create.add_argument(
        "--agent",
        help="the registered agent an agent key acts as (required for one; e.g. ana.silva)",
    )
    create.add_argument(
        "--team",
        action="append",
        default=[],
        help="an existing team the key is limited to (repeatable; none: every team)",
    )
    create.add_argument("--expires-at", help="when the key stops working (ISO 8601 with offset)")
    key_commands.add_parser("list", help="every key: id, role, teams, state (never a secret)")
    rotate = key_commands.add_parser(
        "rotate", help="print a new secret for a key; the old one stops working at once"
    )
    rotate.add_argument("key_id", type=UUID)
    revoke = key_commands.add_parser("revoke", help="revoke a key in every process within 1 s")
    revoke.add_argument("key_id", type=UUID)


def _expiry(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise SystemExit(f"chorus: --expires-at {text!r} is not an ISO 8601 time") from None
    reason = time_fault(value)
    if reason is not None:
        raise SystemExit(f"chorus: --expires-at {reason}")
    return value


def _line(key: ApiKey, now: datetime) -> str:
    teams = ",".join(sorted(key.teams)) or "*"
    expires = key.expires_at.isoformat() if key.expires_at else "-"
    state = key.refusal(now) or "active"
    return (
        f"{key.id}  {key.role.value:<8}  {state:<7}  teams={teams}  expires={expires}  {key.name}"
    )


async def _run(
    keys: ApiKeyStore, create: CreateKey, now: datetime, args: argparse.Namespace
) -> None:
    by = f"cli ({getpass.getuser()})"
    if args.keys_command == "create":
        expires_at = _expiry(args.expires_at)
        try:
            created = await create(
                Role(args.role),
                args.name,
                agent=args.agent,
                teams=args.team,
                expires_at=expires_at,
                by=by,
            )
        except ValueError as error:
            raise SystemExit(f"chorus: {error}") from None
        print(created.secret)
        print(
            f"created {args.role} key {created.key.id} ({args.name}); it is shown only once",
            file=sys.stderr,
        )
    elif args.keys_command == "list":
        for key in await keys.all_keys():
            print(_line(key, now))
    elif args.keys_command == "rotate":
        rotated = await keys.rotate(args.key_id, by=by)
        if rotated is None:
            raise SystemExit(f"chorus: no usable key {args.key_id} (unknown or revoked)")
        print(rotated.secret)
        print(f"rotated key {args.key_id}; the old secret no longer works", file=sys.stderr)
    else:
        revoked = await keys.revoke(args.key_id, by=by)
        if revoked is None:
            raise SystemExit(f"chorus: no key {args.key_id}")
        print(f"revoked key {args.key_id} at {revoked.revoked_at}", file=sys.stderr)


async def run_keys(settings: Settings, args: argparse.Namespace) -> None:
    from application.access.create_key import CreateKey
    from entrypoints.ioc import make_container
    from ports.clock import Clock

    container = make_container(settings)
    try:
        keys = await container.get(ApiKeyStore)
        create = await container.get(CreateKey)
        await _run(keys, create, (await container.get(Clock)).now(), args)
    finally:
        await container.close()
