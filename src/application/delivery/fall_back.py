"""Channel fallback: a message not delivered in time, or failed, is requested on the next channel."""

from __future__ import annotations

from typing import TYPE_CHECKING

from application.conflicts import retry_on_conflict
from domain.message.aggregate import Message, MessageStatus
from domain.policy.decision import Outcome
from domain.shared.errors import DomainError

if TYPE_CHECKING:
    from application.messages.request_message import MessageDecided, RequestMessage
    from ports.clock import Clock
    from ports.delivery import DueFallback
    from ports.unit_of_work import UnitsOfWork

__all__ = ["FallBackDue"]

_WITHDRAWN = frozenset({MessageStatus.SUPERSEDED, MessageStatus.EXPIRED})


def _goes_instead(decided: MessageDecided, queued: bool) -> bool:
    """Whether the fallback message goes in the first one's stead: queued now (allowed, with
    content for its channel) or deferred to later. A suppressed fallback replaces nothing, so
    the first message keeps its chance: the customer is better served late than never."""
    if queued:
        return True
    return decided.decision is not None and decided.decision.outcome is Outcome.DEFER


class FallBackDue:
    """Each due fallback is a new send request, decided by the rules like any other (so a
    fallback never bypasses consent, quiet hours or caps), idempotent by the first message's id:
    a crash between the request and the bookkeeping repeats nothing.

    A fallback that goes (now or deferred) replaces the first message: if no provider has it
    yet, it is withdrawn (`superseded`, naming the fallback message) in the same commit as
    `FellBack`, or, if a dispatcher holds it at that moment, by that dispatcher when its round
    ends without an acceptance. A message a provider accepted cannot be taken back: the
    customer may then get both."""

    def __init__(
        self,
        uows: UnitsOfWork,
        request_message: RequestMessage,
        clock: Clock,
        *,
        lease_seconds: float = 30.0,
    ) -> None:
        self.uows = uows
        self.request_message = request_message
        self.clock = clock
        self.lease_seconds = lease_seconds

    async def __call__(self, limit: int = 100) -> int:
        """Returns how many fallbacks were handled (sent on, or dropped as delivered)."""
        async with self.uows() as uow:
            due = await uow.outbox.claim_fallbacks(self.clock.now(), limit, self.lease_seconds)
        for item in due:
            await self._fall_back(item)
        return len(due)

    async def _fall_back(self, due: DueFallback) -> None:
        async with self.uows() as uow:
            message = (await uow.repository(Message).get([due.message_id])).get(due.message_id)
            if (
                message is None
                or message.reached_customer
                or message.fell_back_to is not None
                or message.status in _WITHDRAWN
            ):
                uow.outbox.forget_fallback(due.message_id)
                return
        if message.failure is not None or due.status in ("failed", "bounced"):
            reason = f"{message.channel.value} message {due.status}"
        else:
            reason = f"{message.channel.value} message not delivered by {message.fallback_due}"
        try:
            decided = await self.request_message(
                due.customer_id,
                due.plan_request,
                idempotency_key=f"fallback:{due.message_id}",
                origin="fallback",
                delivery=due.plan_delivery,
            )
        except DomainError:
            # The customer is gone (merged away and unknown); nothing to fall back to.
            async with self.uows() as uow:
                uow.outbox.forget_fallback(due.message_id)
            return

        async def record() -> None:
            async with self.uows() as uow:
                messages = uow.repository(Message)
                now = self.clock.now()
                fresh = (await messages.get([due.message_id])).get(due.message_id)
                if fresh is not None:
                    queued = bool(await messages.existing([decided.message_id]))
                    replaced = _goes_instead(decided, queued)
                    fresh.fall_back(decided.message_id, reason, now, replaced=replaced)
                    if fresh.must_not_go(now) and await uow.outbox.withdraw(fresh.id, now):
                        fresh.withdraw(now)
                    messages.add(fresh)
                uow.outbox.forget_fallback(due.message_id)

        await retry_on_conflict(record)
