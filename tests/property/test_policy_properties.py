"""The invariants of the rules, for any customer, ledger and interleaving hypothesis finds."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.policy.decision import ConsentState, ContactRecord, CustomerFacts, SendRequest
from domain.policy.defaults import default_rule_set
from domain.policy.engine import decide
from domain.policy.quiet_hours import quiet_until
from domain.policy.rule_document import decode_rule_set, rule_set_document
from domain.policy.rules import BUILT_IN_CHANNELS, ConsentMode
from domain.policy.tone import ChannelTone
from domain.policy.vocabulary import Channel, Purpose
from domain.shared.durations import parse_duration

RULES = default_rule_set()
START = datetime(2026, 1, 1, tzinfo=UTC)
ZONES = [
    "Asia/Tokyo",
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",
    "America/Sao_Paulo",
    "UTC",
]

channels = st.sampled_from(list(Channel))
purposes = st.sampled_from(list(Purpose))
moments = st.integers(min_value=0, max_value=366 * 24 * 60).map(
    lambda m: START + timedelta(minutes=m)
)
consent_states = st.builds(
    ConsentState, st.booleans(), st.sampled_from(["form", "STOP", "import"]), moments
)
facts = st.builds(
    CustomerFacts,
    time_zone=st.sampled_from([*ZONES, None]),
    reachable=st.frozensets(channels),
    verified=st.frozensets(channels),
    consents=st.dictionaries(st.tuples(channels, purposes), consent_states, max_size=12),
    opted_out=st.dictionaries(channels, consent_states, max_size=3),
    suppressed=st.dictionaries(st.one_of(st.none(), channels), st.just("hard bounce"), max_size=2),
    last_inbound=st.dictionaries(channels, moments, max_size=3),
)
requests = st.builds(
    SendRequest,
    team=st.sampled_from(["growth", "billing", "support", "retention", "product"]),
    purpose=purposes,
    channels=st.lists(channels, min_size=1, max_size=3, unique=True).map(tuple),
    priority=st.integers(0, 100),
    dedup_key=st.one_of(st.none(), st.sampled_from(["a", "b", "c"])),
    approved_template=st.booleans(),
    sensitive=st.booleans(),
)
ledgers = st.lists(
    st.builds(
        ContactRecord,
        moments,
        channels,
        purposes,
        st.sampled_from(["growth", "billing"]),
        st.integers(0, 100),
    ),
    max_size=8,
)


@given(requests, facts, ledgers, moments)
def test_the_same_inputs_always_give_the_same_decision(
    request: SendRequest, customer: CustomerFacts, ledger: list[ContactRecord], now: datetime
) -> None:
    assert decide(request, customer, ledger, RULES, now) == decide(
        request, customer, ledger, RULES, now
    )


@given(requests, facts, ledgers, moments)
def test_no_marketing_goes_without_opt_in_or_after_an_opt_out(
    request: SendRequest, customer: CustomerFacts, ledger: list[ContactRecord], now: datetime
) -> None:
    decision = decide(request, customer, ledger, RULES, now)
    if not decision.allows_send and decision.channel is None:
        return
    if decision.outcome.value == "suppress":
        return
    channel = decision.channel
    assert channel is not None
    policy = RULES.channel_policy(channel)
    if request.purpose is Purpose.MARKETING:
        consent = customer.consents.get((channel, Purpose.MARKETING))
        assert policy.consent_mode(Purpose.MARKETING) is not ConsentMode.OPT_IN or (
            consent is not None and consent.granted
        )
    if channel in customer.opted_out:
        assert request.purpose is Purpose.TRANSACTIONAL
        assert not policy.hard_opt_out
    assert channel in customer.reachable
    assert channel not in customer.suppressed
    assert None not in customer.suppressed


@settings(max_examples=150)
@given(
    st.lists(
        st.tuples(requests, st.integers(min_value=0, max_value=90)),
        min_size=1,
        max_size=40,
    ),
)
def test_no_interleaving_of_teams_exceeds_a_cap(arrivals: list[tuple[SendRequest, int]]) -> None:
    customer = CustomerFacts(
        time_zone="UTC",
        reachable=frozenset(Channel),
        verified=frozenset(Channel),
        consents={(c, p): ConsentState(True, "form", START) for c in Channel for p in Purpose},
        last_inbound={Channel.WHATSAPP: START + timedelta(days=400)},
    )
    now = START + timedelta(hours=12)
    ledger: list[ContactRecord] = []
    for request, minutes_later in arrivals:
        now += timedelta(minutes=minutes_later)
        decision = decide(request, customer, ledger, RULES, now)
        if decision.allows_send:
            assert decision.channel is not None
            ledger.append(
                ContactRecord(
                    now,
                    decision.channel,
                    request.purpose,
                    request.team,
                    request.priority,
                    request.dedup_key,
                )
            )
    for cap in RULES.caps:
        counted = sorted(
            r.at
            for r in ledger
            if r.purpose not in cap.exempt_purposes
            and (cap.purpose is None or r.purpose == cap.purpose)
        )
        for i, start in enumerate(counted):
            in_window = [t for t in counted[i:] if t < start + cap.window]
            assert len(in_window) <= cap.limit, cap.id


@given(requests, st.sampled_from(ZONES), moments)
def test_nothing_arrives_in_quiet_hours_and_deferrals_land_outside_them(
    request: SendRequest, zone: str, now: datetime
) -> None:
    customer = CustomerFacts(
        time_zone=zone,
        reachable=frozenset(Channel),
        verified=frozenset(Channel),
        consents={(c, p): ConsentState(True, "form", START) for c in Channel for p in Purpose},
        last_inbound={Channel.WHATSAPP: now},
    )
    decision = decide(request, customer, [], RULES, now)
    if decision.channel is None:
        return
    for quiet in RULES.quiet_hours:
        if not quiet.applies(decision.channel, request.purpose, request.priority):
            continue
        if decision.allows_send:
            assert quiet_until(quiet.windows, now, zone) is None
        if decision.defer_until is not None:
            assert decision.defer_until > now
            assert quiet_until(quiet.windows, decision.defer_until, zone) is None


channel_documents = st.fixed_dictionaries(
    {},
    optional={
        "consent": st.dictionaries(
            st.sampled_from([str(p) for p in Purpose]),
            st.sampled_from([str(m) for m in ConsentMode]),
        ),
        "session_window": st.one_of(st.none(), st.sampled_from(["1h", "24h", "2d"])),
        "requires_verified_identity": st.booleans(),
        "hard_opt_out": st.booleans(),
        "cost": st.floats(0, 1),
        "tone": st.one_of(
            st.none(),
            st.builds(
                lambda length, emoji: {"max_length": length, "emoji": emoji},
                st.integers(10, 1000),
                st.booleans(),
            ),
        ),
    },
)


def _as_in_force(field: str, value: Any) -> Any:
    """A channel field of a document as a `ChannelPolicy` holds it."""
    if value is None:
        return None
    if field == "session_window":
        return parse_duration(value)
    if field == "tone":
        return ChannelTone(value["max_length"], emoji=value["emoji"])
    return value


@given(st.dictionaries(channels, channel_documents), requests, facts, ledgers, moments)
def test_a_channel_a_published_rule_set_leaves_out_is_decided_as_built_in(
    named: dict[Channel, dict[str, object]],
    request: SendRequest,
    customer: CustomerFacts,
    ledger: list[ContactRecord],
    now: datetime,
) -> None:
    """Whatever channels a document names, and however, a request on channels it leaves out is
    decided as under the built-in channel policies: consent, STOP and the session window hold."""
    partial = decode_rule_set(json.dumps({"channels": {str(c): d for c, d in named.items()}}), 2)
    built_in = replace(partial, channels={})
    left_out = tuple(channel for channel in request.channels if channel not in named)
    if not left_out:
        return
    request = replace(request, channels=left_out)
    assert decide(request, customer, ledger, partial, now) == decide(
        request, customer, ledger, built_in, now
    )
    for channel in left_out:
        assert partial.channel_policy(channel) == BUILT_IN_CHANNELS[channel]


@given(st.dictionaries(channels, channel_documents))
def test_a_named_channel_is_its_built_in_policy_with_the_fields_it_names_replaced(
    named: dict[Channel, dict[str, Any]],
) -> None:
    """A channel named with any subset of its fields is in force as its built-in policy with
    those fields, and only those, replaced (consent purpose by purpose); the document read back
    and published again is the same rule set."""
    rules = decode_rule_set(json.dumps({"channels": {str(c): d for c, d in named.items()}}), 2)
    for channel in Channel:
        given_fields = dict(named.get(channel, {}))
        modes = given_fields.pop("consent", {})
        built_in = BUILT_IN_CHANNELS[channel]
        expected = replace(
            built_in,
            consent={
                **built_in.consent,
                **{Purpose(purpose): ConsentMode(mode) for purpose, mode in modes.items()},
            },
            **{field: _as_in_force(field, value) for field, value in given_fields.items()},
        )
        assert rules.channel_policy(channel) == expected
    again = decode_rule_set(json.dumps(rule_set_document(rules)), 3)
    assert replace(again, version=2) == rules
    assert again.effective_channels() == rules.effective_channels()
