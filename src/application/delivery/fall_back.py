"""Channel fallback: a message not delivered in time, or failed, is requested on the next channel."""

from __future__ import annotations

from typing import TYPE_CHECKING

from application.conflicts import retry_on_conflict
from domain.message.aggregate import Message
from domain.shared.errors import DomainError

if TYPE_CHECKING:
    from application.messages.request_message import RequestMessage
    from ports.clock import Clock
    from ports.delivery import DueFallback
    from ports.unit_of_work import UnitsOfWork

__all__ = ["FallBackDue"]


class FallBackDue:
    """Each due fallback is a new send request, decided by the rules like any other (so a
    fallback never bypasses consent, quiet hours or caps), idempotent by the first message's id:
    a crash between the request and the bookkeeping repeats nothing."""

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
            if message is None or message.reached_customer or message.fell_back_to is not None:
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
                fresh = (await messages.get([due.message_id])).get(due.message_id)
                if fresh is not None:
                    fresh.fall_back(decided.message_id, reason, self.clock.now())
                    messages.add(fresh)
                uow.outbox.forget_fallback(due.message_id)

        await retry_on_conflict(record)
