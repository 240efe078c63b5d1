"""A few customers and signals, templates, segments and a running campaign, so a first look at
Chorus has something to show."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from application.campaigns.change_status import ChangeCampaignStatus, StatusChange
from application.campaigns.define_campaign import CampaignDraft, CreateCampaign
from application.customer.change_consent import ChangeConsent
from application.customer.signals import IngestSignals
from application.segments.define_segment import DefineSegment, SegmentDraft
from application.templates.publish_template import TemplateDraft
from domain.customer.contact import ConsentRecord
from domain.customer.identities import Identity
from domain.policy.vocabulary import Channel, Purpose
from domain.segments.conditions import decode_condition
from domain.signals.document import InvalidSignal, SignalReader
from domain.templates.aggregate import Variant
from entrypoints.demo_approvals import load_demo_approvals
from entrypoints.demo_conversations import DEMO_CUSTOMERS, demo_inbound
from entrypoints.demo_desk import load_demo_desk
from entrypoints.demo_publishing import publish_demo_template
from entrypoints.demo_replies import load_demo_replies
from ports.clock import Clock
from ports.customers import CustomerRecords

if TYPE_CHECKING:
    from dishka import AsyncContainer

__all__ = [
    "DEMO_CAMPAIGN",
    "DEMO_FOLLOW_UP",
    "DEMO_OFFERS",
    "DEMO_SIGNALS",
    "DEMO_TEMPLATE",
    "DEMO_WHATSAPP_CONSENT",
    "load_demo_data",
]

DEMO_TEMPLATE = TemplateDraft(
    variants=(
        Variant(
            Channel.EMAIL,
            "en",
            subject="Your order {{ vars.order_id }} has shipped",
            body="Hi {{ customer.first_name }}, order {{ vars.order_id }} is on its way.",
        ),
        Variant(
            Channel.EMAIL,
            "pt",
            subject="A sua encomenda {{ vars.order_id }} foi enviada",
            body="Olá {{ customer.first_name }}, a encomenda {{ vars.order_id }} está a caminho.",
        ),
        Variant(
            Channel.SMS,
            "en",
            body="Hi {{ customer.first_name }}, order {{ vars.order_id }} has shipped.",
        ),
        Variant(
            Channel.WHATSAPP,
            "en",
            body="Hi {{ customer.first_name }} 👋 order {{ vars.order_id }} has shipped.",
        ),
        Variant(
            Channel.PUSH,
            "en",
            title="Order shipped",
            body="Order {{ vars.order_id }} is on its way.",
        ),
    ),
    default_locale="en",
    description="Sent when an order leaves the warehouse",
)
"""`order-shipped`, in English for every channel and in Portuguese for email."""

_HOW_WAS_IT = "Hi {{ customer.first_name }}, how is your order? Just reply if anything is wrong."

DEMO_FOLLOW_UP = TemplateDraft(
    variants=(
        # A day after the order is outside WhatsApp's 24-hour window: only a template Meta
        # approved may go then, so the WhatsApp variant names it (docs/templates.md).
        Variant(
            Channel.WHATSAPP,
            "en",
            whatsapp_template="order_follow_up",
            whatsapp_language="en",
            whatsapp_parameters=("{{ customer.first_name }}",),
        ),
        Variant(Channel.SMS, "en", body=_HOW_WAS_IT),
        Variant(Channel.EMAIL, "en", subject="How was your order?", body=_HOW_WAS_IT),
    ),
    default_locale="en",
    description="The day after an order: how was it?",
)
"""`order-follow-up`, the demo campaign's message: the profile alone fills it; on WhatsApp the
approved template `order_follow_up`, with the first name as its parameter."""

DEMO_OFFERS: dict[str, TemplateDraft] = {
    "ten-off": TemplateDraft(
        variants=(
            Variant(
                Channel.EMAIL,
                "en",
                subject="10% off your next order",
                body="Hi {{ customer.first_name | default('there') }}, here is 10% off: TEN-OFF.",
            ),
        ),
        default_locale="en",
        description="An offer: a coupon",
    ),
    "free-shipping": TemplateDraft(
        variants=(
            Variant(
                Channel.EMAIL,
                "en",
                subject="Free shipping on your next order",
                body="Hi {{ customer.first_name | default('there') }}, your next order ships free.",
            ),
            Variant(Channel.SMS, "en", body="Your next order ships free. Reply STOP to opt out."),
        ),
        default_locale="en",
        description="An offer: free shipping",
    ),
}
"""The offers of the worked example in docs/campaigns.md, so it can be created in the demo."""


def _follow_up(channel: str, then: str = "reply", **more: Any) -> dict[str, Any]:
    return {
        "type": "send",
        "channels": [channel],
        "template": "order-follow-up",
        "purpose": "service",
        "team": "orders",
        "next": then,
        **more,
    }


DEMO_CAMPAIGN: dict[str, Any] = {
    "entry": {"type": "signal", "signal": "order.placed"},
    "start": "a-day-later",
    "steps": {
        "a-day-later": {"type": "wait", "for": "1d", "next": "by-channel"},
        "by-channel": {
            "type": "branch",
            "cases": [{"in_segment": "on-whatsapp", "next": "whatsapp"}],
            "else": "email",
        },
        "whatsapp": _follow_up("whatsapp", on_not_delivered={"within": "10m", "next": "sms"}),
        "sms": _follow_up("sms"),
        "email": _follow_up("email"),
        "reply": {
            "type": "wait_for_signal",
            "signal": "message.received",
            "timeout": "3d",
            "on_signal": "replied",
            "on_timeout": "no-reply",
        },
        "replied": {"type": "exit", "reason": "replied"},
        "no-reply": {"type": "exit", "reason": "no reply within 3 days"},
    },
    "goal": {"signal": "purchase", "within": "7d"},
    "policies": {"re_entry": "after_cool_down", "cool_down": "30d"},
}
"""`order-follow-up`: a day after an order, WhatsApp for customers on it (SMS if it is not
delivered in 10 minutes), email for the others; a reply ends it, a purchase within 7 days is
its goal."""

DEMO_WHATSAPP_CONSENT = (
    Identity("whatsapp_id", "447700900123"),
    ConsentRecord(Channel.WHATSAPP, Purpose.SERVICE, True, "demo: opted in at sign-up"),
)
"""Sam took service messages on WhatsApp when he signed up, so the campaign may reach him there."""

DEMO_SIGNALS: list[dict[str, object]] = [
    {
        "id": "demo-crm-1",
        "type": "customer.imported",
        "occurred_at": "2026-11-01T09:00:00Z",
        "source": "crm",
        "identities": [
            {"type": "email", "value": "ana@example.org", "verification": "verified"},
            {"type": "crm_id", "value": "CRM-1001"},
        ],
        "profile": {
            "first_name": "Ana",
            "last_name": "Silva",
            "time_zone": "Europe/Lisbon",
            "locale": "pt-PT",
        },
        "attributes": {"tier": "gold"},
    },
    {
        "id": "demo-orders-1",
        "type": "order.placed",
        "occurred_at": "2026-11-02T10:15:00Z",
        "source": "orders",
        "identities": [{"type": "email", "value": "Ana@Example.org"}],
        "properties": {"order_id": "A-1", "total": 42.5, "currency": "EUR"},
    },
    {
        "id": "demo-crm-2",
        "type": "customer.imported",
        "occurred_at": "2026-11-01T09:00:00Z",
        "source": "crm",
        "identities": [
            {"type": "phone", "value": "+81 3-1234-5678"},
            {"type": "crm_id", "value": "CRM-1002"},
        ],
        "profile": {"first_name": "Kenji", "time_zone": "Asia/Tokyo", "locale": "ja-JP"},
        "attributes": {"tier": "silver"},
    },
    {
        "id": "demo-app-1",
        "type": "app.opened",
        "occurred_at": "2026-11-03T08:00:00Z",
        "source": "mobile",
        "identities": [
            {"type": "account_id", "value": "u-77"},
            {"type": "device_token", "value": "dvc-77"},
        ],
    },
    {
        "id": "demo-login-1",
        "type": "account.logged_in",
        "occurred_at": "2026-11-03T09:00:00Z",
        "source": "auth",
        "identities": [
            {"type": "account_id", "value": "u-77", "verification": "authenticated"},
            {"type": "phone", "value": "+44 7700 900123", "verification": "verified"},
            {"type": "whatsapp_id", "value": "447700900123"},
        ],
        "profile": {"first_name": "Sam", "time_zone": "Europe/London"},
    },
]
"""Customers and what they did; the last links Sam's app account, phone and WhatsApp."""


DEMO_SEGMENTS: dict[str, tuple[str, dict[str, Any]]] = {
    "on-whatsapp": ("Reachable on WhatsApp", {"type": "identity", "identity_type": "whatsapp_id"}),
    "pricing-viewers": (
        "Viewed pricing in the last 30 days",
        {
            "type": "signal_count",
            "signal": "page.viewed",
            "where": [{"property": "path", "op": "eq", "value": "/pricing"}],
            "within": "30d",
            "op": "gte",
            "value": 1,
        },
    ),
}


async def load_demo_data(container: AsyncContainer) -> int:
    """Ingests the demo signals; idempotent, so a second demo changes nothing. Returns how many were new."""
    # The same version again is a no-op; an operator's newer version stays (demo_publishing).
    await publish_demo_template(container, "order-shipped", DEMO_TEMPLATE)
    await publish_demo_template(container, "order-follow-up", DEMO_FOLLOW_UP)
    for key, offer in DEMO_OFFERS.items():
        await publish_demo_template(container, key, offer)
    define = await container.get(DefineSegment)
    for key, (name, condition) in DEMO_SEGMENTS.items():
        draft = SegmentDraft(name, "a demo segment", decode_condition(condition))
        await define(key, draft, "demo", replace=False)  # the same definition again is a no-op
    # Live before the signals, so the demo's order enters its customer.
    create = await container.get(CreateCampaign)
    campaign = CampaignDraft("Order follow-up", DEMO_CAMPAIGN)
    await create("order-follow-up", campaign, "demo")  # the same draft again is a no-op
    change = await container.get(ChangeCampaignStatus)
    await change("order-follow-up", StatusChange.ACTIVATE, "demo")
    await load_demo_desk(container)  # agents, teams and routing (demo_desk)
    await load_demo_replies(container)  # reply templates tagged with intents (demo_replies)
    reader = await container.get(SignalReader)
    ingest = await container.get(IngestSignals)
    reports = []
    # The conversations' customers, then their messages: each message finds its customer by
    # the identity it came from, so Maria's email and WhatsApp are one thread (demo_conversations).
    now = (await container.get(Clock)).now()
    signals = [*DEMO_SIGNALS, *DEMO_CUSTOMERS, *demo_inbound(now)]
    for index, signal in enumerate(signals):
        mapped = reader.read(index, msgspec.json.encode(signal))
        if isinstance(mapped, InvalidSignal):
            raise ValueError(f"demo signal {index} is invalid: {mapped}")
        reports.append(mapped)
    outcomes = []
    for one in reports:  # one at a time, so later signals see the customers earlier ones made
        outcomes.extend(await ingest([one]))
    identity, consent = DEMO_WHATSAPP_CONSENT
    sam = await (await container.get(CustomerRecords)).find(identity)
    if sam is not None:  # the same consent again changes nothing
        await (await container.get(ChangeConsent))(sam, [consent])
    await load_demo_approvals(container)  # after Maria is known: her refund answer waits
    return sum(1 for o in outcomes if o.status == "recorded")
