from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from domain.policy.decision import ConsentState, Effect, Outcome
from domain.policy.defaults import default_rule_set
from domain.policy.engine import decide
from domain.policy.rules import FrequencyCap, OnExceed, QuietHours, QuietWindow, RuleSet
from domain.policy.vocabulary import Channel, Purpose
from tests.unit.policy.builders import NOON, customer, opted_in, request, sent

RULES = default_rule_set(version=7)


def rule_ids(decision) -> list[str]:  # type: ignore[no-untyped-def]
    return [rule.rule_id for rule in decision.fired]


class TestConsent:
    def test_marketing_without_opt_in_is_suppressed_and_says_why(self) -> None:
        decision = decide(request(Channel.EMAIL), customer(consents={}), [], RULES, NOON)
        assert decision.outcome is Outcome.SUPPRESS
        assert "consent.email.marketing" in rule_ids(decision)
        assert decision.rule_set_version == 7

    def test_the_opt_in_relied_on_is_cited_as_evidence(self) -> None:
        decision = decide(request(Channel.EMAIL), customer(), [], RULES, NOON)
        assert decision.outcome is Outcome.SEND
        (evidence,) = decision.fired
        assert evidence.effect is Effect.ALLOWED
        assert "signup form" in evidence.reason

    def test_a_withdrawal_blocks_even_where_opt_out_is_the_default(self) -> None:
        withdrawn = {
            (Channel.EMAIL, Purpose.SERVICE): ConsentState(False, "preference centre", NOON)
        }
        decision = decide(
            request(Channel.EMAIL, purpose=Purpose.SERVICE),
            customer(consents=withdrawn),
            [],
            RULES,
            NOON,
        )
        assert decision.outcome is Outcome.SUPPRESS

    def test_transactional_needs_no_marketing_consent(self) -> None:
        decision = decide(
            request(Channel.EMAIL, purpose=Purpose.TRANSACTIONAL),
            customer(consents={}),
            [],
            RULES,
            NOON,
        )
        assert decision.outcome is Outcome.SEND

    def test_sms_stop_blocks_even_transactional(self) -> None:
        stopped = customer(opted_out={Channel.SMS: ConsentState(False, "inbound STOP", NOON)})
        decision = decide(
            request(Channel.SMS, purpose=Purpose.TRANSACTIONAL), stopped, [], RULES, NOON
        )
        assert decision.outcome is Outcome.SUPPRESS
        assert "opt_out.sms" in rule_ids(decision)

    def test_an_email_unsubscribe_still_lets_a_receipt_through(self) -> None:
        unsubscribed = customer(
            opted_out={Channel.EMAIL: ConsentState(False, "List-Unsubscribe", NOON)}
        )
        receipt = decide(
            request(Channel.EMAIL, purpose=Purpose.TRANSACTIONAL), unsubscribed, [], RULES, NOON
        )
        promo = decide(request(Channel.EMAIL), unsubscribed, [], RULES, NOON)
        assert receipt.outcome is Outcome.SEND
        assert promo.outcome is Outcome.SUPPRESS


class TestChannels:
    def test_a_blocked_first_choice_reroutes_to_the_next(self) -> None:
        facts = customer(consents=opted_in((Channel.EMAIL, Purpose.MARKETING)))
        decision = decide(request(Channel.SMS, Channel.EMAIL), facts, [], RULES, NOON)
        assert decision.outcome is Outcome.REROUTE
        assert decision.channel is Channel.EMAIL
        assert rule_ids(decision)[0] == "consent.sms.marketing"

    def test_no_identity_for_a_channel_blocks_it(self) -> None:
        facts = customer(reachable=frozenset({Channel.SMS}))
        decision = decide(request(Channel.EMAIL), facts, [], RULES, NOON)
        assert decision.outcome is Outcome.SUPPRESS
        assert "reachability.email" in rule_ids(decision)

    def test_the_suppression_list_wins_over_consent(self) -> None:
        bounced = customer(suppressed={Channel.EMAIL: "hard bounce"})
        decision = decide(
            request(Channel.EMAIL, purpose=Purpose.TRANSACTIONAL), bounced, [], RULES, NOON
        )
        assert decision.outcome is Outcome.SUPPRESS
        assert "hard bounce" in decision.fired[0].reason

    def test_whatsapp_outside_the_service_window_needs_an_approved_template(self) -> None:
        wrote_yesterday = customer(last_inbound={Channel.WHATSAPP: NOON - timedelta(hours=30)})
        free_text = decide(
            request(Channel.WHATSAPP, purpose=Purpose.SERVICE), wrote_yesterday, [], RULES, NOON
        )
        template = decide(
            request(Channel.WHATSAPP, purpose=Purpose.SERVICE, approved_template=True),
            wrote_yesterday,
            [],
            RULES,
            NOON,
        )
        assert free_text.outcome is Outcome.SUPPRESS
        assert "session_window.whatsapp" in rule_ids(free_text)
        assert template.outcome is Outcome.SEND

    def test_whatsapp_inside_the_service_window_may_send_free_text(self) -> None:
        wrote_an_hour_ago = customer(last_inbound={Channel.WHATSAPP: NOON - timedelta(hours=1)})
        decision = decide(
            request(Channel.WHATSAPP, purpose=Purpose.SERVICE), wrote_an_hour_ago, [], RULES, NOON
        )
        assert decision.outcome is Outcome.SEND

    def test_a_sensitive_message_needs_a_verified_identity(self) -> None:
        unverified = customer(verified=frozenset())
        decision = decide(
            request(Channel.SMS, purpose=Purpose.TRANSACTIONAL, sensitive=True),
            unverified,
            [],
            RULES,
            NOON,
        )
        assert decision.outcome is Outcome.SUPPRESS
        assert "verification.sms" in rule_ids(decision)


class TestCaps:
    def test_the_global_budget_is_shared_by_all_teams(self) -> None:
        ledger = [sent(1, team="growth"), sent(2, team="billing"), sent(3, team="support")]
        decision = decide(request(Channel.EMAIL, team="retention"), customer(), ledger, RULES, NOON)
        assert decision.outcome is Outcome.DEFER
        assert decision.defer_until == NOON + timedelta(hours=21)  # when the oldest leaves the day

    def test_transactional_messages_neither_count_nor_are_capped(self) -> None:
        ledger = [sent(1, purpose=Purpose.TRANSACTIONAL)] * 5 + [sent(2), sent(3)]
        assert (
            decide(request(Channel.EMAIL), customer(), ledger, RULES, NOON).outcome is Outcome.SEND
        )
        receipt = request(Channel.EMAIL, purpose=Purpose.TRANSACTIONAL)
        assert (
            decide(receipt, customer(), [sent(1), sent(2), sent(3)], RULES, NOON).outcome
            is Outcome.SEND
        )

    def test_a_cap_may_suppress_instead_of_defer(self) -> None:
        rules = RuleSet(
            version=1,
            caps=(FrequencyCap("cap.hard", 1, timedelta(days=1), on_exceed=OnExceed.SUPPRESS),),
        )
        decision = decide(request(Channel.EMAIL), customer(), [sent(1)], rules, NOON)
        assert decision.outcome is Outcome.SUPPRESS

    def test_reserved_slots_go_to_higher_priorities(self) -> None:
        rules = RuleSet(
            version=1,
            caps=(FrequencyCap("cap.day", 3, timedelta(days=1), reserved=1, reserved_priority=50),),
        )
        ledger = [sent(1), sent(2)]
        low = decide(request(Channel.EMAIL, priority=10), customer(), ledger, rules, NOON)
        high = decide(request(Channel.EMAIL, priority=80), customer(), ledger, rules, NOON)
        assert low.outcome is Outcome.DEFER
        assert "kept for priority 50" in low.fired[-1].reason
        assert high.outcome is Outcome.SEND

    def test_a_per_team_cap_counts_only_that_team(self) -> None:
        rules = RuleSet(
            version=1, caps=(FrequencyCap("cap.team", 1, timedelta(days=1), per_team=True),)
        )
        ledger = [sent(1, team="billing")]
        assert (
            decide(request(Channel.EMAIL, team="growth"), customer(), ledger, rules, NOON).outcome
            is Outcome.SEND
        )
        assert (
            decide(request(Channel.EMAIL, team="billing"), customer(), ledger, rules, NOON).outcome
            is Outcome.DEFER
        )

    def test_a_deferral_past_expiry_suppresses(self) -> None:
        ledger = [sent(1), sent(2), sent(3)]
        soon = request(Channel.EMAIL, expires_at=NOON + timedelta(hours=1))
        decision = decide(soon, customer(), ledger, RULES, NOON)
        assert decision.outcome is Outcome.SUPPRESS
        assert rule_ids(decision)[-1] == "expiry"


class TestDedup:
    def test_the_same_dedup_key_within_the_window_is_suppressed(self) -> None:
        ledger = [sent(5, dedup_key="order-1-shipped")]
        decision = decide(
            request(Channel.EMAIL, dedup_key="order-1-shipped"), customer(), ledger, RULES, NOON
        )
        assert decision.outcome is Outcome.SUPPRESS
        assert rule_ids(decision) == ["dedup"]

    def test_the_same_key_after_the_window_goes(self) -> None:
        ledger = [sent(30, dedup_key="order-1-shipped")]
        decision = decide(
            request(Channel.EMAIL, dedup_key="order-1-shipped"), customer(), ledger, RULES, NOON
        )
        assert decision.outcome is Outcome.SEND


class TestQuietHours:
    def test_tokyo_is_asleep_while_new_york_is_awake(self) -> None:
        at = datetime(2026, 11, 27, 14, tzinfo=UTC)  # 23:00 in Tokyo, 09:00 in New York
        sms = request(Channel.SMS, purpose=Purpose.SERVICE)
        tokyo = decide(sms, customer(time_zone="Asia/Tokyo"), [], RULES, at)
        new_york = decide(sms, customer(time_zone="America/New_York"), [], RULES, at)
        assert tokyo.outcome is Outcome.DEFER
        assert tokyo.defer_until == datetime(2026, 11, 27, 23, tzinfo=UTC)  # 08:00 in Tokyo
        assert new_york.outcome is Outcome.SEND

    def test_the_window_ends_at_local_eight_across_a_dst_change(self) -> None:
        at = datetime(2026, 3, 8, 6, tzinfo=UTC)  # 01:00 EST; clocks jump to EDT at 02:00
        decision = decide(
            request(Channel.SMS, purpose=Purpose.SERVICE),
            customer(time_zone="America/New_York"),
            [],
            RULES,
            at,
        )
        assert decision.defer_until == datetime(2026, 3, 8, 12, tzinfo=UTC)  # 08:00 EDT

    def test_urgent_transactional_bypasses_when_the_rule_allows_it(self) -> None:
        rules = RuleSet(
            version=1,
            quiet_hours=(
                QuietHours(
                    "quiet.all",
                    (QuietWindow(time(21), time(8)),),
                    bypass_purposes=frozenset({Purpose.TRANSACTIONAL}),
                    bypass_min_priority=90,
                ),
            ),
        )
        at = datetime(2026, 11, 27, 23, tzinfo=UTC)
        urgent = request(Channel.SMS, purpose=Purpose.TRANSACTIONAL, priority=95)
        routine = request(Channel.SMS, purpose=Purpose.TRANSACTIONAL, priority=10)
        facts = customer(time_zone="UTC")
        assert decide(urgent, facts, [], rules, at).outcome is Outcome.SEND
        assert decide(routine, facts, [], rules, at).outcome is Outcome.DEFER

    def test_weekday_windows_apply_only_on_their_days(self) -> None:
        weekend = RuleSet(
            version=1,
            quiet_hours=(
                QuietHours(
                    "quiet.weekend", (QuietWindow(time(0), time(23, 59), frozenset({5, 6})),)
                ),
            ),
        )
        saturday = datetime(2026, 11, 28, 12, tzinfo=UTC)
        friday = datetime(2026, 11, 27, 12, tzinfo=UTC)
        facts = customer(time_zone="UTC")
        assert decide(request(Channel.EMAIL), facts, [], weekend, saturday).outcome is Outcome.DEFER
        assert decide(request(Channel.EMAIL), facts, [], weekend, friday).outcome is Outcome.SEND

    def test_without_a_time_zone_the_rule_sets_default_is_used(self) -> None:
        at = datetime(2026, 11, 27, 23, tzinfo=UTC)
        decision = decide(
            request(Channel.SMS, purpose=Purpose.SERVICE), customer(time_zone=None), [], RULES, at
        )
        assert decision.outcome is Outcome.DEFER
        assert "UTC" in decision.fired[-1].reason


class TestExpiry:
    def test_an_expired_request_is_suppressed(self) -> None:
        decision = decide(request(Channel.EMAIL, expires_at=NOON), customer(), [], RULES, NOON)
        assert decision.outcome is Outcome.SUPPRESS
        assert rule_ids(decision) == ["expiry"]
