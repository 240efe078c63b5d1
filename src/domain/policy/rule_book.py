"""The rule book: every published rule set, in order. Publishing a version is an event."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.policy.defaults import default_rule_set
from domain.policy.rules import ConsentMode, RuleSet
from domain.policy.vocabulary import Channel, Purpose
from domain.shared.topics import StoredAs

__all__ = ["RULE_BOOK_ID", "RuleBook"]

RULE_BOOK_ID = UUID("5c1d2f0e-7b3a-4c59-9a4e-2d1f8e6b7a10")
"""One rule book per installation."""


class RuleBook(Aggregate):
    """Holds the rule set in force; old versions stay, so old decisions keep their meaning."""

    stored_as = StoredAs("domain.policy.rule_book:RuleBook")

    @event("Opened")
    def __init__(self, id: UUID, timestamp: datetime) -> None:
        self.current: RuleSet = default_rule_set()
        self.published_at: datetime | None = None
        self.author: str | None = None

    @classmethod
    def open(cls, at: datetime) -> RuleBook:
        return cls(id=RULE_BOOK_ID, timestamp=at)

    def publish(self, rules: RuleSet, author: str, at: datetime) -> RuleSet:
        """Publishes `rules` as the next version (the built-in rules are version 1)."""
        published = replace(rules, version=self.current.version + 1)
        self._published(timestamp=at, rules=published, author=author)
        return published

    class Published(Aggregate.Event):
        """A rule set published. Since version 2, each channel it names holds only the fields
        it gives (`ChannelOverride`), each over the channel's built-in policy; before, each held
        the channel's whole policy, which governed the channel alone."""

        class_version = 2
        rules: RuleSet
        author: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            # A channel stored whole gives every field and every purpose (one it left out of
            # its consent was opt_out), so it means over the built-in policy what it meant. A
            # channel it left out had no policy then (`ChannelPolicy(channel)`: consent opt_out
            # for every purpose, no window, no absolute opt-out, no cost), and keeps that: the
            # decisions made under it are decided again alike (`chorus audit verify`).
            channels: dict[str, dict[str, Any]] = state["rules"].get("channels") or {}
            for left_out in Channel:
                channels.setdefault(str(left_out), {})
            state["rules"]["channels"] = channels
            for channel, policy in channels.items():
                consent = policy.get("consent") or {}
                channels[channel] = {
                    "consent": {
                        str(purpose): consent.get(str(purpose), str(ConsentMode.OPT_OUT))
                        for purpose in Purpose
                    },
                    "session_window": policy.get("session_window"),
                    "requires_verified_identity": policy.get("requires_verified_identity", False),
                    "hard_opt_out": policy.get("hard_opt_out", False),
                    "cost": policy.get("cost", 0.0),
                    "tone": policy.get("tone"),
                }

    @event(Published)
    def _published(self, timestamp: datetime, rules: RuleSet, author: str) -> None:
        self.current = rules
        self.published_at = timestamp
        self.author = author
