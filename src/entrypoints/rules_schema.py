"""Rule-set documents as they come over HTTP: the text the edge refuses, then the domain's reader.

What a rule set's document holds, and every fault it can have, is the domain's
(`domain.policy.rule_document`); the edge adds what no document may hold (`text_checks`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from domain.policy.rule_document import RuleError, RuleSetInvalid, decode_rule_set
from entrypoints.text_checks import raw_fault

if TYPE_CHECKING:
    from domain.policy.rules import RuleSet

__all__ = ["parse_rule_set"]


def parse_rule_set(document: bytes | str, version: int) -> RuleSet:
    """A rule-set document taken over the wire, as the domain `RuleSet` of that version."""
    fault = raw_fault(document.encode() if isinstance(document, str) else document)
    if fault is not None:
        raise RuleSetInvalid([RuleError(fault.path, fault.reason)])
    return decode_rule_set(document, version)
