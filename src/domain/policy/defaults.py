"""A first rule set that honours what each channel's regulation demands; teams refine it."""

from __future__ import annotations

from datetime import time, timedelta

from domain.policy.rules import (
    BUILT_IN_NAMED,
    DedupRule,
    FrequencyCap,
    QuietHours,
    QuietWindow,
    RuleSet,
)
from domain.policy.vocabulary import Channel, Purpose

__all__ = ["default_rule_set"]


def default_rule_set(version: int = 1) -> RuleSet:
    """Every channel named as built in (`BUILT_IN_CHANNELS`: marketing needs opt-in everywhere,
    SMS and WhatsApp honour STOP absolutely), quiet nights, a daily and a weekly cap, dedup."""
    return RuleSet(
        version=version,
        default_time_zone="UTC",
        channels=dict(BUILT_IN_NAMED),
        quiet_hours=(
            QuietHours(
                id="quiet.night",
                windows=(QuietWindow(time(21), time(8)),),
                purposes=frozenset({Purpose.MARKETING, Purpose.SERVICE}),
                channels=frozenset({Channel.SMS, Channel.WHATSAPP, Channel.VOICE, Channel.PUSH}),
            ),
        ),
        caps=(
            FrequencyCap(id="cap.global.daily", limit=3, window=timedelta(days=1)),
            FrequencyCap(
                id="cap.marketing.weekly",
                limit=5,
                window=timedelta(days=7),
                purpose=Purpose.MARKETING,
            ),
        ),
        dedup=DedupRule(id="dedup", window=timedelta(days=1)),
    )
