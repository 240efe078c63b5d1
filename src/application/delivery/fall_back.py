"""Channel fallback: a message not delivered in time, or failed, is requested on the next channel."""

from __future__ import annotations

from typing import TYPE_CHECKING

from application.conflicts import retry_on_conflict
from application.messages.request_message import SendAsked
from domain.message.aggregate import Message, MessageStatus
from domain.policy.decision import Outcome
from domain.shared.errors import DomainError

if TYPE_CHECKING:
    from application.messages.request_message import MessageDecided, RequestMessage
    from domain.policy.rules import RuleSet
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
    fallback never bypasses consent, quiet hours or caps), idempotent by the first message's id.

    The fallback's decision (and its message, if it goes now) and the first message's
    `FellBack`, naming it, commit together, in one unit of work, on the first message as read
    there: no fallback is ever decided that its first message does not name, so its campaign
    send, its enrollment and the first message's story always hear of it; and none is decided
    for a first message delivered (a status recorded on it before that commit makes the commit
    conflict, and it is tried again). A crash before that commit leaves nothing of it: the
    fallback row is tried again when its lease runs out. A fallback found decided under its key without
    the `FellBack` (committed apart by an earlier version) is linked whatever became of the
    first message since.

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
        if due:
            rules = await self.request_message.rule_sets.current()
            for item in due:
                await self._fall_back(item, rules)
        return len(due)

    async def _fall_back(self, due: DueFallback, rules: RuleSet) -> None:
        key = f"fallback:{due.message_id}"

        async def attempt() -> None:
            async with self.uows() as uow:
                messages = uow.repository(Message)
                message = (await messages.get([due.message_id])).get(due.message_id)
                if message is None or message.fell_back_to is not None:
                    uow.outbox.forget_fallback(due.message_id)
                    return
                if await uow.requests.earlier(key) is None and (
                    message.reached_customer or message.status in _WITHDRAWN
                ):
                    uow.outbox.forget_fallback(due.message_id)
                    return
                asked = SendAsked(
                    due.customer_id,
                    due.plan_request,
                    idempotency_key=key,
                    origin="fallback",
                    delivery=due.plan_delivery,
                )
                decided = await self.request_message.within(uow, asked, rules)
                if decided.repeated:
                    queued = bool(await messages.existing([decided.message_id]))
                else:
                    queued = decided.queued
                now = self.clock.now()
                replaced = _goes_instead(decided, queued)
                message.fall_back(decided.message_id, _reason(message, due), now, replaced=replaced)
                if message.must_not_go(now) and await uow.outbox.withdraw(message.id, now):
                    message.withdraw(now)
                messages.add(message)
                uow.outbox.forget_fallback(due.message_id)

        try:
            await retry_on_conflict(attempt)
        except DomainError:
            # The customer is gone (merged away and unknown); nothing to fall back to.
            async with self.uows() as uow:
                uow.outbox.forget_fallback(due.message_id)


def _reason(message: Message, due: DueFallback) -> str:
    if message.failure is not None or due.status in ("failed", "bounced"):
        return f"{message.channel.value} message {due.status}"
    return f"{message.channel.value} message not delivered by {message.fallback_due}"
