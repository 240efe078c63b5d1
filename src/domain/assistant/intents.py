"""The intents the classifiers know: Banking77's 77 (the model's, the default;
data/banking77/categories.json, CC BY 4.0) and the keyword classifier's six
(`CHORUS_CLASSIFIER=keywords`).

An intent has one key, everywhere: classifications, routing, approvals, segments, template tags.
The key is the dataset's label in lower case without its `?` (`canonical_intent`): Banking77 spells
two labels otherwise (`Refund_not_showing_up`, `reverted_card_payment?`), and those spellings
are read as their keys wherever they are given."""

from __future__ import annotations

from domain.shared.errors import InvalidValue

__all__ = ["BANKING77_INTENTS", "INTENTS", "KEYWORD_INTENTS", "canonical_intent", "check_intents"]

BANKING77_INTENTS = frozenset(
    {
        "activate_my_card",
        "age_limit",
        "apple_pay_or_google_pay",
        "atm_support",
        "automatic_top_up",
        "balance_not_updated_after_bank_transfer",
        "balance_not_updated_after_cheque_or_cash_deposit",
        "beneficiary_not_allowed",
        "cancel_transfer",
        "card_about_to_expire",
        "card_acceptance",
        "card_arrival",
        "card_delivery_estimate",
        "card_linking",
        "card_not_working",
        "card_payment_fee_charged",
        "card_payment_not_recognised",
        "card_payment_wrong_exchange_rate",
        "card_swallowed",
        "cash_withdrawal_charge",
        "cash_withdrawal_not_recognised",
        "change_pin",
        "compromised_card",
        "contactless_not_working",
        "country_support",
        "declined_card_payment",
        "declined_cash_withdrawal",
        "declined_transfer",
        "direct_debit_payment_not_recognised",
        "disposable_card_limits",
        "edit_personal_details",
        "exchange_charge",
        "exchange_rate",
        "exchange_via_app",
        "extra_charge_on_statement",
        "failed_transfer",
        "fiat_currency_support",
        "get_disposable_virtual_card",
        "get_physical_card",
        "getting_spare_card",
        "getting_virtual_card",
        "lost_or_stolen_card",
        "lost_or_stolen_phone",
        "order_physical_card",
        "passcode_forgotten",
        "pending_card_payment",
        "pending_cash_withdrawal",
        "pending_top_up",
        "pending_transfer",
        "pin_blocked",
        "receiving_money",
        "refund_not_showing_up",
        "request_refund",
        "reverted_card_payment",
        "supported_cards_and_currencies",
        "terminate_account",
        "top_up_by_bank_transfer_charge",
        "top_up_by_card_charge",
        "top_up_by_cash_or_cheque",
        "top_up_failed",
        "top_up_limits",
        "top_up_reverted",
        "topping_up_by_card",
        "transaction_charged_twice",
        "transfer_fee_charged",
        "transfer_into_account",
        "transfer_not_received_by_recipient",
        "transfer_timing",
        "unable_to_verify_identity",
        "verify_my_identity",
        "verify_source_of_funds",
        "verify_top_up",
        "virtual_card_not_working",
        "visa_or_mastercard",
        "why_verify_identity",
        "wrong_amount_of_cash_received",
        "wrong_exchange_rate_for_cash_withdrawal",
    }
)
"""The model's intents (the default, `CHORUS_CLASSIFIER=model`), by their keys."""
KEYWORD_INTENTS = frozenset({"refund", "cancel", "billing", "delivery", "account", "complaint"})
"""The keyword classifier's intents (`CHORUS_CLASSIFIER=keywords`)."""
INTENTS = BANKING77_INTENTS | KEYWORD_INTENTS
"""Every intent a message can be classified with, beside `unknown`."""


def canonical_intent(label: str) -> str:
    """The intent's key: `refund_not_showing_up` for Banking77's `Refund_not_showing_up`,
    `reverted_card_payment` for its `reverted_card_payment?`."""
    return label.lower().replace("?", "")


def check_intents(
    intents: tuple[str, ...] | list[str] | frozenset[str], field: str = "intents"
) -> tuple[str, ...]:
    """The intents' keys, each once in the order given, if the classifiers know every one."""
    keys = []
    for n, intent in enumerate(intents):
        key = canonical_intent(intent)
        if key not in INTENTS:
            raise InvalidValue(
                f"{field}[{n}]",
                f"{intent!r} is not an intent a classifier knows, such as 'request_refund' "
                "(data/banking77/categories.json) or 'refund'",
            )
        keys.append(key)
    return tuple(dict.fromkeys(keys))
