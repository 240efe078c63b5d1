"""Urgency from the intent, the sentiment and the customer's context: a pure rule."""

from __future__ import annotations

from typing import TYPE_CHECKING

from domain.assistant.classification import UNKNOWN_INTENT, Urgency

if TYPE_CHECKING:
    from domain.assistant.classification import CustomerContext

__all__ = ["ANGRY_SCORE", "CRITICAL_INTENTS", "HIGH_INTENTS", "LOW_INTENTS", "urgency"]

# Money may be leaving the account without the customer: someone must act now.
CRITICAL_INTENTS = frozenset(
    {
        "lost_or_stolen_card",
        "lost_or_stolen_phone",
        "compromised_card",
        "cash_withdrawal_not_recognised",
        "card_payment_not_recognised",
        "direct_debit_payment_not_recognised",
        "card_swallowed",
    }
)
# The customer's money or access is stuck.
HIGH_INTENTS = frozenset(
    {
        "declined_card_payment",
        "declined_cash_withdrawal",
        "declined_transfer",
        "failed_transfer",
        "transfer_not_received_by_recipient",
        "balance_not_updated_after_bank_transfer",
        "balance_not_updated_after_cheque_or_cash_deposit",
        "pending_cash_withdrawal",
        "wrong_amount_of_cash_received",
        "wrong_exchange_rate_for_cash_withdrawal",
        "request_refund",
        "refund_not_showing_up",
        "reverted_card_payment",
        "pin_blocked",
        "passcode_forgotten",
        "card_not_working",
        "extra_charge_on_statement",
        "transaction_charged_twice",
    }
)
# Questions that can wait for the next free agent.
LOW_INTENTS = frozenset(
    {
        "fiat_currency_support",
        "supported_cards_and_currencies",
        "country_support",
        "exchange_rate",
        "age_limit",
        "disposable_card_limits",
        "get_disposable_virtual_card",
        "getting_virtual_card",
        "order_physical_card",
        "visa_or_mastercard",
        "apple_pay_or_google_pay",
        "atm_support",
        "card_delivery_estimate",
    }
)
ANGRY_SCORE = -0.5
_PRIORITY_TIERS = frozenset({"vip", "premium", "gold", "platinum"})
_REPEATED_NEGATIVE = 2


def urgency(intent: str, sentiment_score: float, context: CustomerContext | None) -> Urgency:
    """How soon a person should look: the intent's level, raised once for anger (a score at or
    below ANGRY_SCORE, or repeated negative messages) and once for a priority tier."""
    if intent in CRITICAL_INTENTS:
        level = Urgency.CRITICAL
    elif intent in HIGH_INTENTS:
        level = Urgency.HIGH
    elif intent in LOW_INTENTS:
        level = Urgency.LOW
    else:
        level = Urgency.NORMAL  # unknown intents included: a person reads them
    raised = int(level)
    angry = sentiment_score <= ANGRY_SCORE
    if context is not None and context.recent_negative_messages >= _REPEATED_NEGATIVE:
        angry = angry or sentiment_score < 0
    if angry:
        raised += 1
    if context is not None and (context.tier or "").lower() in _PRIORITY_TIERS:
        raised += 1
    if intent == UNKNOWN_INTENT:
        raised = max(raised, int(Urgency.NORMAL))
    return Urgency(min(raised, int(Urgency.CRITICAL)))
