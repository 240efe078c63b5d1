"""One-click unsubscribe headers (RFC 2369, RFC 8058) for the emails that must carry them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from domain.policy.vocabulary import Channel, Purpose
from ports.unsubscribe import UnsubscribeTarget

if TYPE_CHECKING:
    from uuid import UUID

    from ports.unsubscribe import UnsubscribeTokens

__all__ = ["list_unsubscribe_headers"]


def list_unsubscribe_headers(
    tokens: UnsubscribeTokens | None,
    public_url: str,
    customer_id: UUID,
    channel: Channel,
    purpose: Purpose,
) -> dict[str, str] | None:
    """Every non-transactional email carries a one-click unsubscribe for its purpose."""
    if tokens is None or channel is not Channel.EMAIL or purpose is Purpose.TRANSACTIONAL:
        return None
    token = tokens.issue(UnsubscribeTarget(customer_id, Channel.EMAIL, purpose))
    return {
        "List-Unsubscribe": f"<{public_url.rstrip('/')}/v1/unsubscribe/{token}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
