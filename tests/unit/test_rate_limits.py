from __future__ import annotations

import pytest

from entrypoints.http.rate_limiter import Limit, RateLimiter, RouteClass
from entrypoints.http.rate_limits import limiter_from, route_class
from entrypoints.settings import Settings


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
