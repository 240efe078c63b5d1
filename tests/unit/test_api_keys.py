"""API keys: what a key may act for, when it is refused, and its life in the in-memory store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from adapters.inmemory.api_keys import InMemoryApiKeyStore
from adapters.inmemory.ids import SequentialIds
from adapters.system.clock import ManualClock
from domain.shared.errors import InvalidValue
from ports.api_keys import ApiKey, Role, check_key_scope

AT = datetime(2026, 12, 5, 12, tzinfo=UTC)


def key(**fields: object) -> ApiKey:
    return ApiKey(uuid4(), "k", Role.SERVICE, AT, **fields)  # type: ignore[arg-type]


class TestRefusal:
    def test_a_usable_key_is_refused_for_nothing(self) -> None:
        assert key().refusal(AT) is None
        assert key(expires_at=AT + timedelta(seconds=1)).refusal(AT) is None

    def test_an_expired_key_says_so_from_its_expiry_on(self) -> None:
        assert key(expires_at=AT).refusal(AT) == "expired"

    def test_revocation_wins_over_expiry(self) -> None:
        assert key(expires_at=AT, revoked_at=AT).refusal(AT) == "revoked"


class TestTeams:
    def test_a_key_without_teams_acts_for_every_team(self) -> None:
        assert key().may_act_for("growth")
        assert key().may_act_for(None)

    def test_a_team_key_acts_for_its_teams_only(self) -> None:
        growth = key(teams=frozenset({"growth"}))
        assert growth.may_act_for("growth")
        assert not growth.may_act_for("billing")
        assert not growth.may_act_for(None)

    @pytest.mark.parametrize("role", [Role.ADMIN, Role.AUDITOR])
    def test_admin_and_auditor_keys_cannot_be_limited_to_teams(self, role: Role) -> None:
        with pytest.raises(InvalidValue, match="sees every team") as refused:
            check_key_scope(role, None, ["growth"])
        assert refused.value.field == "teams"

    def test_a_team_must_be_a_team_key(self) -> None:
        with pytest.raises(InvalidValue, match="not a team key"):
            check_key_scope(Role.SERVICE, None, ["Growth Team"])


class TestInMemoryKeyLife:
    @pytest.fixture
    def clock(self) -> ManualClock:
        return ManualClock(AT)

    @pytest.fixture
    def keys(self, clock: ManualClock) -> InMemoryApiKeyStore:
        return InMemoryApiKeyStore(clock, SequentialIds())

    async def test_a_created_key_authenticates_with_its_scope(
        self, keys: InMemoryApiKeyStore
    ) -> None:
        made = await keys.create(Role.SERVICE, "growth", teams=["growth"], by="admin key")
        found = await keys.authenticate(made.secret)
        assert found is not None
        assert found.teams == frozenset({"growth"})
        assert [c.change for c in await keys.changes(made.key.id)] == ["created"]

    async def test_rotation_retires_the_old_secret_at_once(self, keys: InMemoryApiKeyStore) -> None:
        made = await keys.create(Role.SERVICE, "s")
        rotated = await keys.rotate(made.key.id, by="admin key")
        assert rotated is not None
        assert await keys.authenticate(made.secret) is None
        assert await keys.authenticate(rotated.secret) == made.key

    async def test_a_revoked_key_is_known_but_refused_and_revoked_once(
        self, keys: InMemoryApiKeyStore
    ) -> None:
        made = await keys.create(Role.SERVICE, "s")
        await keys.revoke(made.key.id, by="admin key")
        await keys.revoke(made.key.id, by="admin key")
        assert await keys.authenticate(made.secret) is None
        identified = await keys.identify(made.secret)
        assert identified is not None
        assert identified.refusal(AT) == "revoked"
        assert [c.change for c in await keys.changes(made.key.id)] == ["created", "revoked"]
        assert await keys.rotate(made.key.id, by="admin key") is None

    async def test_a_key_stops_working_when_it_expires(
        self, keys: InMemoryApiKeyStore, clock: ManualClock
    ) -> None:
        made = await keys.create(Role.SERVICE, "s", expires_at=AT + timedelta(hours=1))
        assert await keys.authenticate(made.secret) is not None
        clock.advance(timedelta(hours=1))
        assert await keys.authenticate(made.secret) is None
