"""Load, call, save on one customer, following a merge to the survivor, retried on conflict."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from application.conflicts import retry_on_conflict
from domain.customer.aggregate import Customer
from domain.shared.errors import NotFound

if TYPE_CHECKING:
    from collections.abc import Callable
    from uuid import UUID

    from ports.customers import CustomerRecords
    from ports.unit_of_work import UnitsOfWork

__all__ = ["on_customer"]

T = TypeVar("T")


async def on_customer(
    uows: UnitsOfWork,
    customers: CustomerRecords,
    customer_id: UUID,
    call: Callable[[Customer], T],
) -> T:
    """Runs `call` on the customer (or its survivor) and commits what it recorded."""
    survivor = await customers.survivor(customer_id)
    if survivor is None:
        raise NotFound(f"no customer {customer_id}")

    async def attempt() -> T:
        async with uows() as uow:
            repository = uow.repository(Customer)
            customer = (await repository.get([survivor])).get(survivor)
            if customer is None:
                raise NotFound(f"no customer {customer_id}")
            result = call(customer)
            repository.add(customer)
            return result

    return await retry_on_conflict(attempt)
