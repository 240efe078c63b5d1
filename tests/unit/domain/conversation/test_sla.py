"""Service levels: first- and next-response targets per channel kind and tier, in working hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from domain.conversation.sla import SlaFacts, SlaKind, SlaPolicy, next_breach
from domain.conversation.vocabulary import ChannelKind
from domain.conversation.working_hours import decode_working_hours

T0 = datetime(2026, 12, 4, 17, tzinfo=UTC)  # a Friday, 17:00 in Lisbon
POLICY = msgspec.convert(
    {
        "first_response": {"chat": "2m", "email": "4h"},
        "next_response": {"chat": "5m", "email": "8h"},
        "tiers": {"vip": {"first_response": {"email": "1h"}}},
    },
    SlaPolicy,
)
HOURS = decode_working_hours(
    {
        "time_zone": "Europe/Lisbon",
        "windows": [
            {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "18:00"}
        ],
    }
)


def waiting(kind: ChannelKind, answered: bool = False, tier: str | None = None) -> SlaFacts:
    return SlaFacts(kind, T0, answered, tier)


class TestTargets:
    def test_the_first_answer_is_held_to_the_first_response_target_of_the_kind(self) -> None:
        deadline = next_breach(waiting(ChannelKind.CHAT), POLICY)
        assert deadline is not None
        assert (deadline.sla, deadline.due) == (SlaKind.FIRST_RESPONSE, T0 + timedelta(minutes=2))

    def test_later_answers_are_held_to_the_next_response_target(self) -> None:
        deadline = next_breach(waiting(ChannelKind.EMAIL, answered=True), POLICY)
        assert deadline is not None
        assert (deadline.sla, deadline.due) == (SlaKind.NEXT_RESPONSE, T0 + timedelta(hours=8))

    def test_a_tier_with_its_own_target_uses_it_and_falls_back_for_the_rest(self) -> None:
        vip_first = next_breach(waiting(ChannelKind.EMAIL, tier="vip"), POLICY)
        vip_next = next_breach(waiting(ChannelKind.EMAIL, answered=True, tier="vip"), POLICY)
        assert vip_first is not None
        assert vip_next is not None
        assert vip_first.allowed == timedelta(hours=1)
        assert vip_next.allowed == timedelta(hours=8)

    def test_no_clock_runs_when_nobody_waits_on_us_or_the_kind_has_no_target(self) -> None:
        assert next_breach(SlaFacts(ChannelKind.CHAT, None, False), POLICY) is None
        assert next_breach(waiting(ChannelKind.VOICE), POLICY) is None

    def test_with_working_hours_only_open_time_counts(self) -> None:
        policy = msgspec.structs.replace(POLICY, working_hours=True)
        deadline = next_breach(waiting(ChannelKind.EMAIL), policy, HOURS)
        assert deadline is not None
        assert deadline.due == datetime(2026, 12, 7, 12, tzinfo=UTC)  # 1h Friday, 3h Monday
        assert deadline.left_at(T0) == deadline.due - T0

    def test_working_hours_are_ignored_unless_the_document_says_so(self) -> None:
        deadline = next_breach(waiting(ChannelKind.EMAIL), POLICY, HOURS)
        assert deadline is not None
        assert deadline.due == T0 + timedelta(hours=4)

    def test_a_target_that_is_no_duration_is_refused(self) -> None:
        with pytest.raises(msgspec.ValidationError, match=r"first_response\.chat: 'soon'"):
            msgspec.convert({"first_response": {"chat": "soon"}}, SlaPolicy)

    def test_a_target_longer_than_30_days_is_refused(self) -> None:
        msgspec.convert({"first_response": {"email": "30d"}}, SlaPolicy)
        with pytest.raises(msgspec.ValidationError, match=r"first_response\.email: '31d'"):
            msgspec.convert({"first_response": {"email": "31d"}}, SlaPolicy)
        with pytest.raises(msgspec.ValidationError, match=r"tiers\.vip\.next_response\.chat"):
            msgspec.convert({"tiers": {"vip": {"next_response": {"chat": "200d"}}}}, SlaPolicy)

    def test_a_team_not_open_long_enough_in_the_time_ahead_has_no_deadline(self) -> None:
        policy = msgspec.convert(
            {"first_response": {"email": "30d"}, "working_hours": True}, SlaPolicy
        )
        rarely = decode_working_hours(
            {"time_zone": "UTC", "windows": [{"days": ["mon"], "start": "09:00", "end": "10:00"}]}
        )
        assert next_breach(waiting(ChannelKind.EMAIL), policy, rarely) is None
        assert next_breach(waiting(ChannelKind.EMAIL), policy, HOURS) is not None
