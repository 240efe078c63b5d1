from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest
from prometheus_client import REGISTRY

from entrypoints.http.rate_limiter import Limit, RateLimiter, RouteClass, key_caller
from entrypoints.http.rate_limits import limiter_from, route_class
from entrypoints.settings import Settings
from entrypoints.workers.nats_keys import KeyRefused, nats_route_class, spend
from ports.api_keys import ApiKey, Role


class StoppedClock:
    """Monotonic seconds that move only when told."""

    def __init__(self) -> None:
        self.seconds = 1_000.0

    def __call__(self) -> float:
        return self.seconds


def limiter(clock: StoppedClock, per_minute: int = 60, burst: int = 3) -> RateLimiter:
    return RateLimiter({RouteClass.SEND: Limit(per_minute, burst)}, clock=clock)


class TestOneCallersBucket:
    def test_a_full_bucket_lets_a_burst_through_then_refuses(self) -> None:
        clock = StoppedClock()
        limits = limiter(clock)
        assert [limits.wait(RouteClass.SEND, "a") for _ in range(3)] == [0.0, 0.0, 0.0]
        assert limits.wait(RouteClass.SEND, "a") == pytest.approx(1.0)

    def test_the_wait_is_the_time_until_one_more_request_fits(self) -> None:
        clock = StoppedClock()
        limits = limiter(clock)
        for _ in range(3):
            limits.wait(RouteClass.SEND, "a")
        clock.seconds += 0.25
        assert limits.wait(RouteClass.SEND, "a") == pytest.approx(0.75)
        clock.seconds += 0.75
        assert limits.wait(RouteClass.SEND, "a") == 0.0

    def test_a_refused_request_spends_nothing(self) -> None:
        clock = StoppedClock()
        limits = limiter(clock)
        for _ in range(3):
            limits.wait(RouteClass.SEND, "a")
        for _ in range(100):
            assert limits.wait(RouteClass.SEND, "a") > 0
        clock.seconds += 1.0
        assert limits.wait(RouteClass.SEND, "a") == 0.0

    def test_it_sustains_the_rate_a_minute(self) -> None:
        clock = StoppedClock()
        limits = limiter(clock, per_minute=120, burst=1)
        admitted = 0
        for _ in range(600):  # a minute in tenths of a second
            admitted += limits.wait(RouteClass.SEND, "a") == 0.0
            clock.seconds += 0.1
        assert admitted == 120

    def test_retry_after_is_whole_seconds_and_at_least_one(self) -> None:
        assert RateLimiter.retry_after(0.001) == 1
        assert RateLimiter.retry_after(1.0) == 1
        assert RateLimiter.retry_after(1.2) == 2


class TestCallersAndClassesApart:
    def test_a_limited_caller_leaves_the_others_full(self) -> None:
        clock = StoppedClock()
        limits = limiter(clock)
        for _ in range(10):
            limits.wait(RouteClass.SEND, "noisy")
        assert [limits.wait(RouteClass.SEND, "quiet") for _ in range(3)] == [0.0, 0.0, 0.0]

    def test_each_route_class_has_its_own_bucket_and_limit(self) -> None:
        clock = StoppedClock()
        limits = RateLimiter(
            {RouteClass.SEND: Limit(60, 1), RouteClass.READ: Limit(60, 2)}, clock=clock
        )
        assert limits.wait(RouteClass.SEND, "a") == 0.0
        assert limits.wait(RouteClass.SEND, "a") > 0
        assert [limits.wait(RouteClass.READ, "a") for _ in range(2)] == [0.0, 0.0]
        assert limits.wait(RouteClass.READ, "a") > 0

    def test_a_class_without_a_limit_is_not_limited(self) -> None:
        limits = limiter(StoppedClock())
        assert all(limits.wait(RouteClass.ADMIN, "a") == 0.0 for _ in range(1_000))


class TestForgettingIdleCallers:
    def test_refilled_buckets_are_forgotten_past_the_bound_and_draining_ones_kept(self) -> None:
        clock = StoppedClock()
        limits = RateLimiter({RouteClass.READ: Limit(60, 2)}, clock=clock, keep_at_most=10)
        for caller in range(10):
            limits.wait(RouteClass.READ, f"idle-{caller}")
        clock.seconds += 60
        limits.wait(RouteClass.READ, "busy")
        limits.wait(RouteClass.READ, "busy")
        assert len(limits) == 1
        assert limits.wait(RouteClass.READ, "busy") > 0


class TestRouteClasses:
    @pytest.mark.parametrize(
        ("method", "path", "expected"),
        [
            ("POST", "/v1/events", RouteClass.INGEST),
            ("PUT", "/v1/customers", RouteClass.INGEST),
            ("POST", "/v1/customers/0b7c/consents", RouteClass.INGEST),
            ("POST", "/v1/customers/0b7c/suppressions", RouteClass.INGEST),
            ("POST", "/v1/webhooks/twilio", RouteClass.INGEST),
            ("POST", "/v1/messages", RouteClass.SEND),
            ("POST", "/v1/messages/", RouteClass.SEND),
            ("POST", "/v1/conversations/9a1f/replies", RouteClass.SEND),
            ("GET", "/v1/messages/9a1f", RouteClass.READ),
            ("GET", "/v1/audit/events", RouteClass.READ),
            ("HEAD", "/v1/customers", RouteClass.READ),
            ("PUT", "/v1/rules", RouteClass.ADMIN),
            ("POST", "/v1/rules/simulate", RouteClass.ADMIN),
            ("PUT", "/v1/templates/welcome", RouteClass.ADMIN),
            ("DELETE", "/v1/segments/vip", RouteClass.ADMIN),
            ("POST", "/v1/campaigns/spring/activate", RouteClass.ADMIN),
            ("POST", "/v1/conversations/9a1f/resolve", RouteClass.ADMIN),
            ("POST", "/v1/keys", RouteClass.ADMIN),
        ],
    )
    def test_each_route_counts_against_its_class(
        self, method: str, path: str, expected: RouteClass
    ) -> None:
        assert route_class(method, path) is expected

    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("GET", "/health"),
            ("GET", "/ready"),
            ("GET", "/metrics"),
            ("GET", "/schema/openapi.json"),
            ("GET", "/v1/unsubscribe/abc"),
            ("POST", "/v1/unsubscribe/abc"),
        ],
    )
    def test_probes_metrics_schema_and_opt_outs_are_never_limited(
        self, method: str, path: str
    ) -> None:
        assert route_class(method, path) is None


class TestConfiguredLimits:
    def test_each_class_reads_its_limit_and_burst_from_the_environment(self) -> None:
        settings = Settings.from_env(
            {
                "CHORUS_RATE_LIMIT_INGEST": "600",
                "CHORUS_RATE_LIMIT_INGEST_BURST": "50",
                "CHORUS_RATE_LIMIT_SEND": "60",
                "CHORUS_RATE_LIMIT_SEND_BURST": "5",
                "CHORUS_RATE_LIMIT_READ": "300",
                "CHORUS_RATE_LIMIT_READ_BURST": "30",
                "CHORUS_RATE_LIMIT_ADMIN": "6",
                "CHORUS_RATE_LIMIT_ADMIN_BURST": "2",
            }
        )
        limits = limiter_from(settings)
        assert limits is not None
        assert limits.limits == {
            RouteClass.INGEST: Limit(600, 50),
            RouteClass.SEND: Limit(60, 5),
            RouteClass.READ: Limit(300, 30),
            RouteClass.ADMIN: Limit(6, 2),
        }

    def test_limits_are_on_by_default_and_can_be_turned_off(self) -> None:
        assert limiter_from(Settings.from_env({})) is not None
        assert limiter_from(Settings.from_env({"CHORUS_RATE_LIMITS": "false"})) is None

    def test_a_limit_below_one_is_refused_at_start_up(self) -> None:
        with pytest.raises(SystemExit, match="CHORUS_RATE_LIMIT_SEND_BURST"):
            Settings.from_env({"CHORUS_RATE_LIMIT_SEND_BURST": "0"})


class TestNatsRouteClasses:
    """A NATS message counts against the class its HTTP route counts against."""

    @pytest.mark.parametrize(
        ("subject", "expected"),
        [
            ("chorus.cmd.messages.send", RouteClass.SEND),  # POST /v1/messages
            ("chorus.signals.orders", RouteClass.INGEST),  # POST /v1/events
            ("chorus.signals.crm.customers", RouteClass.INGEST),
            ("chorus.cmd.conversations.reply", RouteClass.SEND),  # .../replies
            ("chorus.cmd.conversations.note", RouteClass.ADMIN),
            ("chorus.cmd.conversations.snooze", RouteClass.ADMIN),
            ("chorus.cmd.conversations.resolve", RouteClass.ADMIN),
            ("chorus.cmd.conversations.reopen", RouteClass.ADMIN),
            ("chorus.cmd.conversations.assign", RouteClass.ADMIN),
            ("chorus.cmd.conversations.transfer", RouteClass.ADMIN),
        ],
    )
    def test_each_subject_counts_against_its_routes_class(
        self, subject: str, expected: RouteClass
    ) -> None:
        assert nats_route_class(subject) is expected

    def test_the_prefix_is_the_deployments(self) -> None:
        assert nats_route_class("e2e.cmd.messages.send", "e2e") is RouteClass.SEND
        assert nats_route_class("e2e.signals.x", "e2e") is RouteClass.INGEST
        assert nats_route_class("chorus.cmd.messages.send", "e2e") is None

    @pytest.mark.parametrize(
        "subject",
        ["chorus.dlq.signals", "chorus.out.segments.entered", "chorus.cmd.conversations.", "x"],
    )
    def test_other_subjects_are_not_limited(self, subject: str) -> None:
        assert nats_route_class(subject) is None


def a_key(role: Role = Role.SERVICE) -> ApiKey:
    return ApiKey(id=uuid4(), role=role, name="k", created_at=datetime(2026, 1, 1, tzinfo=UTC))


def refused_count(route: RouteClass) -> float:
    return REGISTRY.get_sample_value("chorus_rate_limited_total", {"route_class": route}) or 0.0


class TestOneBudgetForHttpAndNats:
    def test_a_key_spent_over_http_is_refused_over_nats_with_the_wait(self) -> None:
        clock = StoppedClock()
        limits = limiter(clock)
        key, other = a_key(), a_key()
        # Three sends over HTTP, as the middleware counts them: the key's send budget is gone.
        assert [limits.wait(RouteClass.SEND, key_caller(key.id)) for _ in range(3)] == [0.0] * 3
        before = refused_count(RouteClass.SEND)
        with pytest.raises(KeyRefused) as refused:
            spend(limits, RouteClass.SEND, key)
        assert refused.value.status == 429
        assert refused.value.slug == "rate-limited"
        assert refused.value.extra == {"route_class": "send", "retry_after": 1}
        assert refused.value.headers == {"Retry-After": "1"}
        assert "try again in 1 s" in refused.value.detail
        assert refused.value.reason.startswith("429 rate-limited: ")
        assert refused_count(RouteClass.SEND) == before + 1
        spend(limits, RouteClass.SEND, other)  # another key is untouched
        clock.seconds += 1.0
        spend(limits, RouteClass.SEND, key)  # and this one goes on once the wait is over

    def test_nats_spends_the_bucket_http_then_finds_empty(self) -> None:
        limits = limiter(StoppedClock())
        key = a_key()
        for _ in range(3):
            spend(limits, RouteClass.SEND, key)
        assert limits.wait(RouteClass.SEND, key_caller(key.id)) > 0

    def test_without_a_limiter_or_a_class_nothing_is_spent(self) -> None:
        key = a_key()
        for _ in range(100):
            spend(None, RouteClass.SEND, key)
            spend(limiter(StoppedClock()), None, key)
