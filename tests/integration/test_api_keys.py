"""API keys on PostgreSQL: scope and expiry stored, rotation and revocation logged, and every
process refusing a revoked key once its cache (at most `CACHE_SECONDS`) has lapsed."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from adapters.postgres.api_keys import CACHE_SECONDS, PostgresApiKeyStore
from adapters.postgres.migrations import MIGRATIONS_DIR
from adapters.system.clock import ManualClock
from adapters.system.ids import RandomIds
from ports.api_keys import Role

pytestmark = pytest.mark.integration

AT = datetime(2026, 12, 5, 12, tzinfo=UTC)


def store(pool: asyncpg.Pool, clock: ManualClock | None = None) -> PostgresApiKeyStore:
    return PostgresApiKeyStore(pool, clock or ManualClock(AT), RandomIds())


class TestKeyScope:
    async def test_teams_and_expiry_are_kept(self, pool: asyncpg.Pool) -> None:
        made = await store(pool).create(
            Role.SERVICE, "growth", teams=["growth", "billing"], expires_at=AT + timedelta(days=1)
        )
        found = await store(pool).get(made.key.id)
        assert found is not None
        assert found.teams == frozenset({"growth", "billing"})
        assert found.expires_at == AT + timedelta(days=1)
        assert [k.id for k in await store(pool).all_keys()] == [made.key.id]

    async def test_an_expired_key_is_identified_but_not_authenticated(
        self, pool: asyncpg.Pool
    ) -> None:
        clock = ManualClock(AT)
        keys = store(pool, clock)
        made = await keys.create(Role.SERVICE, "s", expires_at=AT + timedelta(minutes=1))
        clock.advance(timedelta(minutes=1))
        assert await keys.authenticate(made.secret) is None
        identified = await keys.identify(made.secret)
        assert identified is not None
        assert identified.refusal(clock.now()) == "expired"


class TestKeyChanges:
    async def test_every_change_is_logged_with_the_acting_key(self, pool: asyncpg.Pool) -> None:
        keys = store(pool)
        made = await keys.create(Role.MARKETER, "m", by="root (admin key 1)")
        await keys.rotate(made.key.id, by="root (admin key 1)")
        await keys.revoke(made.key.id, by="ops (admin key 2)")
        await keys.revoke(made.key.id, by="ops (admin key 2)")  # already: nothing logged
        changes = await keys.changes(made.key.id)
        assert [(c.change, c.by) for c in changes] == [
            ("created", "root (admin key 1)"),
            ("rotated", "root (admin key 1)"),
            ("revoked", "ops (admin key 2)"),
        ]
        assert changes[0].detail["role"] == "marketer"

    async def test_every_change_is_an_event_naming_the_acting_key_never_the_secret(
        self, pool: asyncpg.Pool
    ) -> None:
        keys = store(pool)
        made = await keys.create(Role.MARKETER, "m", by="root (admin key 1)")
        rotated = await keys.rotate(made.key.id, by="root (admin key 1)")
        await keys.revoke(made.key.id, by="ops (admin key 2)")
        assert rotated is not None
        rows = await pool.fetch(
            "SELECT version, topic, payload FROM events WHERE stream_id = $1 ORDER BY version",
            made.key.id,
        )
        assert [(r["version"], r["topic"]) for r in rows] == [
            (1, "ApiKey.Created"),
            (2, "ApiKey.Rotated"),
            (3, "ApiKey.Revoked"),
        ]
        documents = [json.loads(r["payload"]) for r in rows]
        assert [d["by"] for d in documents] == [
            "root (admin key 1)",
            "root (admin key 1)",
            "ops (admin key 2)",
        ]
        assert documents[0]["key_id"] == str(made.key.id)
        assert documents[0]["role"] == "marketer"
        stored = b"".join(r["payload"] for r in rows)
        for secret in (made.secret, rotated.secret):
            assert secret.encode() not in stored
            assert hashlib.sha256(secret.encode()).hexdigest().encode() not in stored

    async def test_a_secret_created_again_is_a_change_in_its_stream(
        self, pool: asyncpg.Pool
    ) -> None:
        keys = store(pool)
        made = await keys.create(Role.ADMIN, "demo", secret="chorus_demo_again", by="demo")
        again = await keys.create(Role.AUDITOR, "demo", secret="chorus_demo_again", by="demo")
        assert again.key.id == made.key.id
        assert [c.change for c in await keys.changes(made.key.id)] == ["created", "changed"]
        topics = await pool.fetch(
            "SELECT topic FROM events WHERE stream_id = $1 ORDER BY version", made.key.id
        )
        assert [r["topic"] for r in topics] == ["ApiKey.Created", "ApiKey.Changed"]

    async def test_changes_logged_before_the_events_are_copied_into_the_log_once(
        self, pool: asyncpg.Pool
    ) -> None:
        key_id = uuid.uuid4()
        await pool.execute(
            """INSERT INTO api_keys (id, name, role, key_hash, created_at)
               VALUES ($1, 'old', 'service', $2, $3)""",
            key_id,
            hashlib.sha256(b"old-secret").digest(),
            AT,
        )
        for change, by in (("created", "cli (ops)"), ("revoked", "root (admin key 1)")):
            await pool.execute(
                """INSERT INTO api_key_changes (key_id, change, by_key, at, detail)
                   VALUES ($1, $2, $3, $4, '{}')""",
                key_id,
                change,
                by,
                AT,
            )
        copy = (MIGRATIONS_DIR / "0055_key_changes_in_the_event_log.sql").read_text()
        await pool.execute(copy)
        await pool.execute(copy)  # once: a key with events is left alone
        rows = await pool.fetch(
            "SELECT version, topic, payload FROM events WHERE stream_id = $1 ORDER BY version",
            key_id,
        )
        assert [(r["version"], r["topic"]) for r in rows] == [
            (1, "ApiKey.Created"),
            (2, "ApiKey.Revoked"),
        ]
        assert json.loads(rows[1]["payload"]) == {"key_id": str(key_id), "by": "root (admin key 1)"}

    async def test_the_change_log_cannot_be_rewritten(self, pool: asyncpg.Pool) -> None:
        made = await store(pool).create(Role.MARKETER, "m")
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await pool.execute("DELETE FROM api_key_changes WHERE key_id = $1", made.key.id)

    async def test_an_admin_key_cannot_be_limited_to_teams_even_in_sql(
        self, pool: asyncpg.Pool
    ) -> None:
        made = await store(pool).create(Role.SERVICE, "s", teams=["growth"])
        with pytest.raises(asyncpg.CheckViolationError):
            await pool.execute("UPDATE api_keys SET role = 'admin' WHERE id = $1", made.key.id)


class TestRevocationReachesEveryProcess:
    async def test_rotation_retires_the_old_secret_at_once_here(self, pool: asyncpg.Pool) -> None:
        keys = store(pool)
        made = await keys.create(Role.SERVICE, "s")
        assert await keys.authenticate(made.secret) is not None  # now cached
        rotated = await keys.rotate(made.key.id, by="admin")
        assert rotated is not None
        assert await keys.authenticate(made.secret) is None
        assert await keys.authenticate(rotated.secret) is not None

    async def test_another_process_refuses_a_revoked_key_once_its_cache_lapses(
        self, pool: asyncpg.Pool
    ) -> None:
        here, there = store(pool), store(pool)
        made = await here.create(Role.SERVICE, "s")
        assert await there.authenticate(made.secret) is not None  # cached over there
        await here.revoke(made.key.id, by="admin")
        assert await here.authenticate(made.secret) is None
        await asyncio.sleep(CACHE_SECONDS + 0.05)
        assert await there.authenticate(made.secret) is None
