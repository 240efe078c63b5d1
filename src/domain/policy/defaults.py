"""A first rule set that honours what each channel's regulation demands; teams refine it."""

from __future__ import annotations

from datetime import time, timedelta

from domain.policy.rules import (
    ChannelPolicy,
    ConsentMode,
    DedupRule,
    FrequencyCap,
    QuietHours,
    QuietWindow,
    RuleSet,
)
from domain.policy.vocabulary import Channel, Purpose

__all__ = ["default_rule_set"]

_OPT_IN_FOR_MARKETING = {Purpose.MARKETING: ConsentMode.OPT_IN}


def default_rule_set(version: int = 1) -> RuleSet:
    """Marketing needs opt-in everywhere; SMS and WhatsApp honour STOP absolutely."""
    return RuleSet(
        version=version,
        default_time_zone="UTC",
        channels={
            Channel.EMAIL: ChannelPolicy(Channel.EMAIL, dict(_OPT_IN_FOR_MARKETING), cost=0.0008),
            Channel.SMS: ChannelPolicy(
                Channel.SMS,
                {Purpose.MARKETING: ConsentMode.OPT_IN, Purpose.SERVICE: ConsentMode.OPT_IN},
                hard_opt_out=True,
                cost=0.0079,
            ),
            Channel.WHATSAPP: ChannelPolicy(
                Channel.WHATSAPP,
                {Purpose.MARKETING: ConsentMode.OPT_IN, Purpose.SERVICE: ConsentMode.OPT_IN},
                session_window=timedelta(hours=24),
                hard_opt_out=True,
                cost=0.0147,
            ),
            Channel.PUSH: ChannelPolicy(Channel.PUSH, {}, cost=0.0),
            Channel.VOICE: ChannelPolicy(
                Channel.VOICE, dict(_OPT_IN_FOR_MARKETING), hard_opt_out=True
            ),
            Channel.CHAT: ChannelPolicy(Channel.CHAT, {}),
        },
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
