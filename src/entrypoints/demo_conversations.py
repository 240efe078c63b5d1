"""The demo's open conversations: inbound messages as the providers' webhooks record them.

Each is a `message.received` signal shaped as `HandleWebhook` makes one: the id
`<provider>:<provider message id>`, the sender as the identity the channel gives (an email
address; a phone number for SMS and WhatsApp), `channel`, `text` and the provider's `sent_at`.
They are timed a little before the demo starts (on its clock), so the threads are live: their
SLA clocks run and WhatsApp's 24-hour window is open. Run again, their ids make them repeats.

- Sam asks on WhatsApp where his parcel is: `card_arrival` to the intent model (it learnt from a
  bank's messages: a parcel that has not come reads as a card that has not), for support's
  `orders` skill: Ana Silva takes it.
- Maria writes by email about a double charge, then on WhatsApp: one thread, held by Bruno
  Costa of billing (`transaction_charged_twice`), with both channels.
- Lucía writes by SMS in Spanish: the model classifies it as unknown (`not_english`), never
  forcing an intent; the `spanish` rule asks support for an `es` speaker; Carla Mendes, the
  only one, is away, so it waits in support's queue until she comes back.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

__all__ = ["DEMO_CUSTOMERS", "demo_inbound"]

DEMO_CUSTOMERS: list[dict[str, Any]] = [
    {
        "id": "demo-crm-3",
        "type": "customer.imported",
        "occurred_at": "2026-11-01T09:00:00Z",
        "source": "crm",
        "identities": [
            {"type": "email", "value": "maria@example.org", "verification": "verified"},
            {"type": "phone", "value": "+44 7700 900456", "verification": "verified"},
            {"type": "crm_id", "value": "CRM-1003"},
        ],
        "profile": {"first_name": "Maria", "time_zone": "Europe/London", "locale": "en-GB"},
    },
    {
        "id": "demo-crm-4",
        "type": "customer.imported",
        "occurred_at": "2026-11-01T09:00:00Z",
        "source": "crm",
        "identities": [
            {"type": "phone", "value": "+34 612 345 678"},
            {"type": "crm_id", "value": "CRM-1004"},
        ],
        "profile": {"first_name": "Lucía", "time_zone": "Europe/Madrid", "locale": "es-ES"},
    },
]
"""Maria (email and mobile) and Lucía (a Spanish mobile), from the CRM."""

# (provider, provider's message id, channel, sender identity, minutes before the start, text)
_INBOUND: tuple[tuple[str, str, str, dict[str, str], int, str], ...] = (
    (
        "whatsapp_cloud",
        "wamid.demo-sam-1",
        "whatsapp",
        {"type": "phone", "value": "+447700900123"},
        25,
        "Where is my parcel? The tracking page has not changed since Monday.",
    ),
    (
        "email_api",
        "demo-maria-1",
        "email",
        {"type": "email", "value": "maria@example.org"},
        90,
        "Hello, I was charged twice for order M-7. Please refund the second payment.",
    ),
    (
        "whatsapp_cloud",
        "wamid.demo-maria-2",
        "whatsapp",
        {"type": "phone", "value": "+447700900456"},
        15,
        "Hi, I emailed about the double charge on M-7. Any news?",
    ),
    (
        "twilio",
        "SMdemo-lucia-1",
        "sms",
        {"type": "phone", "value": "+34612345678"},
        10,
        "Hola, ¿dónde está mi pedido? Lo pedí hace una semana.",
    ),
)


def demo_inbound(now: datetime) -> list[dict[str, Any]]:
    """The demo's inbound messages, timed before `now`, as webhooks record them."""
    signals = []
    for provider, message_id, channel, sender, minutes, text in _INBOUND:
        at = (now - timedelta(minutes=minutes)).isoformat()
        signals.append(
            {
                "id": f"{provider}:{message_id}",
                "type": "message.received",
                "occurred_at": at,
                "source": provider,
                "identities": [sender],
                "properties": {"channel": channel, "text": text, "sent_at": at},
            }
        )
    return signals
