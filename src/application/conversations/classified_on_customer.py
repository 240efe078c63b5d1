"""An inbound message's classification, recorded on its customer too (`MessageClassified`).

Called by `ReceiveInbound` in the unit of work that receives the message into its
conversation: a message seen twice is received once, so its customer's event is recorded
once. Intent, confidence, sentiment with its score, urgency and channel go in; the text never
does. A customer merged since attribution has it recorded on the survivor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from domain.assistant.classification import UNKNOWN_INTENT
from domain.customer.aggregate import ClassifiedMessage, Customer
from domain.customer.classified import urgency_name

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime
    from uuid import UUID

    from application.conversations.receive_inbound import Inbound
    from domain.assistant.classification import Classification
    from ports.unit_of_work import UnitOfWork

__all__ = ["MERGE_HOPS", "classified_message", "record_on_customer", "record_on_customers"]

MERGE_HOPS = 8
"""How many merges are followed to the survivor; a longer chain is a corrupt log."""


def classified_message(inbound: Inbound, classified: Classification) -> ClassifiedMessage:
    """What the customer's event says of a classified message."""
    return ClassifiedMessage(
        message_id=inbound.message_id,
        channel=inbound.channel,
        received_at=inbound.received_at,
        intent=classified.intent.lower() if classified.known else UNKNOWN_INTENT,
        confidence=classified.confidence,
        sentiment=classified.sentiment.value,
        score=classified.sentiment_score,
        urgency=urgency_name(classified.urgency),
        unknown_reason=(
            None if classified.unknown_reason is None else classified.unknown_reason.value
        ),
    )


async def record_on_customer(
    uow: UnitOfWork, inbound: Inbound, classified: Classification, now: datetime
) -> bool:
    """Records the classification on the message's customer (or their survivor), in `uow`;
    False when the customer is not in the store."""
    return bool(await record_on_customers(uow, [(inbound, classified)], now))


async def record_on_customers(
    uow: UnitOfWork, messages: Sequence[tuple[Inbound, Classification]], now: datetime
) -> int:
    """Records each message's classification on its customer (or their survivor), in `uow`,
    each customer loaded once however many of the batch's messages are theirs; how many were
    recorded (a customer not in the store has none)."""
    customers = uow.repository(Customer)
    # The batch's customers in one read; a survivor of a merge is read when it is met. Read
    # from the store, not a copy this process keeps: the API recorded each message on its
    # customer (`InboundReceived`) just before, so a kept copy is stale, and its commit a
    # conflict that would thread the whole batch again.
    wanted = list(dict.fromkeys(inbound.customer_id for inbound, _ in messages))
    found = await customers.get(wanted, cached=False) if wanted else {}
    loaded: dict[UUID, Customer | None] = {each: found.get(each) for each in wanted}
    noted: dict[UUID, Customer] = {}
    recorded = 0
    for inbound, classified in messages:
        customer_id = inbound.customer_id
        for _ in range(MERGE_HOPS):
            if customer_id not in loaded:
                survivor = await customers.get([customer_id], cached=False)
                loaded[customer_id] = survivor.get(customer_id)
            customer = loaded[customer_id]
            if customer is None:
                break
            if customer.merged_into is None:
                customer.note_classified(classified_message(inbound, classified), now)
                noted[customer.id] = customer
                recorded += 1
                break
            customer_id = customer.merged_into
    if noted:
        customers.add(*noted.values())
    return recorded
