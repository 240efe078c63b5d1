"""The demo's reply templates, tagged with the intent model's intents (by their keys), so its
conversations show suggestions: Maria's double charge (`transaction_charged_twice`) and Sam's
parcel (`card_arrival`: the model learnt from a bank's messages), as the demo's routing
(demo_desk) sends them to billing and to support."""

from __future__ import annotations

from typing import TYPE_CHECKING

from application.templates.publish_template import TemplateDraft
from domain.policy.vocabulary import Channel
from domain.templates.aggregate import Variant
from entrypoints.demo_publishing import publish_demo_template

if TYPE_CHECKING:
    from dishka import AsyncContainer

__all__ = ["DEMO_REPLIES", "load_demo_replies"]

_HELLO = "Hi {{ customer.first_name | default('there') }}"

DEMO_REPLIES: dict[str, TemplateDraft] = {
    "reply.refund": TemplateDraft(
        variants=(
            Variant(
                Channel.EMAIL,
                "en",
                subject="Your refund",
                body=f"{_HELLO},\n\nSorry about the double charge. We have asked for the second "
                "payment to be refunded: you will see it within 5 working days.\n\nHow refunds "
                "work: https://help.example/refunds",
            ),
            Variant(
                Channel.WHATSAPP,
                "en",
                body=f"{_HELLO}, sorry about the double charge 🙏 The second payment is being "
                "refunded and will show within 5 working days. https://help.example/refunds",
            ),
        ),
        default_locale="en",
        description="Reply: a refund is under way",
        intents=(
            "request_refund",
            "refund_not_showing_up",
            "transaction_charged_twice",
            "extra_charge_on_statement",
        ),
    ),
    "reply.delivery": TemplateDraft(
        variants=(
            Variant(
                Channel.EMAIL,
                "en",
                subject="Your parcel",
                body=f"{_HELLO},\n\nYour parcel is with the courier; tracking can lag a day or "
                "two. We will write as soon as it moves.",
            ),
            Variant(
                Channel.WHATSAPP,
                "en",
                body=f"{_HELLO}, your parcel is with the courier 📦 Tracking can lag a day or "
                "two; we will message you as soon as it moves.",
            ),
        ),
        default_locale="en",
        description="Reply: where a parcel is",
        intents=("card_arrival", "card_delivery_estimate", "transfer_not_received_by_recipient"),
    ),
}
"""Reply templates by key; `GET /v1/conversations/{id}/suggestions` offers them."""


async def load_demo_replies(container: AsyncContainer) -> None:
    """Publishes the reply templates; the same version again publishes nothing, nor over an
    operator's newer version."""
    for key, draft in DEMO_REPLIES.items():
        await publish_demo_template(container, key, draft)
