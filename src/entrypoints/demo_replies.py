"""The demo's reply templates, tagged with intents, so its conversations show suggestions:
Maria's double charge (`refund`, then `billing`) and Sam's parcel (`delivery`). Each is tagged
with the keyword classifier's intent (the default) and Banking77's (`CHORUS_CLASSIFIER=model`),
as the demo's routing is (demo_desk)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from application.templates.publish_template import PublishTemplate, TemplateDraft
from domain.policy.vocabulary import Channel
from domain.templates.aggregate import Variant

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
            "refund",
            "billing",
            "request_refund",
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
        intents=("delivery", "card_arrival", "card_delivery_estimate"),
    ),
}
"""Reply templates by key; `GET /v1/conversations/{id}/suggestions` offers them."""


async def load_demo_replies(container: AsyncContainer) -> None:
    """Publishes the reply templates; the same version again publishes nothing."""
    publish = await container.get(PublishTemplate)
    for key, draft in DEMO_REPLIES.items():
        await publish(key, draft, "demo")
