"""Applies `migrations/*.sql` in order, once each, and records what it applied."""

from __future__ import annotations

import hashlib
from pathlib import Path

import asyncpg

__all__ = ["MIGRATIONS_DIR", "MigrationChanged", "migrate"]

MIGRATIONS_DIR = Path(__file__).resolve().parents[3] / "migrations"
_LOCK = 7_301_195_411  # advisory lock key: one migrator at a time


class MigrationChanged(RuntimeError):
    """An applied migration's file was edited afterwards; write a new migration instead."""


def read_migrations(directory: Path = MIGRATIONS_DIR) -> list[tuple[str, str]]:
    """The migration files in the order they apply: their names and SQL."""
    return [(path.name, path.read_text()) for path in sorted(directory.glob("*.sql"))]


async def migrate(dsn: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Returns the names of the migrations applied by this call."""
    files = read_migrations(directory)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK)
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   name text PRIMARY KEY,
                   checksum text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        applied = {
            row["name"]: row["checksum"]
            for row in await conn.fetch("SELECT name, checksum FROM schema_migrations")
        }
        done: list[str] = []
        for name, sql in files:
            checksum = hashlib.sha256(sql.encode()).hexdigest()
            if name in applied:
                if applied[name] != checksum:
                    raise MigrationChanged(f"{name} changed after it was applied")
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)",
                    name,
                    checksum,
                )
            done.append(name)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK)
        await conn.close()
