"""The demo's approvals, loaded through the service's container: one refund answer waits."""

from __future__ import annotations

import msgspec
import pytest

from application.customer.upsert_customer import UpsertCustomer
from domain.customer.identities import Identity, IdentityClaim, Verification
from entrypoints.demo_approvals import load_demo_approvals
from entrypoints.ioc import make_container
from entrypoints.settings import Settings
from ports.approvals import ApprovalFilter, ApprovalsRead, ApprovalStatus

pytestmark = pytest.mark.integration

MARIA = IdentityClaim(Identity("email", "maria@example.org"), Verification.VERIFIED)


class TestTheDemoApprovals:
    async def test_loading_it_twice_leaves_one_refund_answer_waiting(
        self, database_url: str
    ) -> None:
        settings = msgspec.structs.replace(Settings.from_env(), database_url=database_url)
        container = make_container(settings)
        try:
            await (await container.get(UpsertCustomer))((MARIA,), {"first_name": "Maria"}, {})
            await load_demo_approvals(container)
            await load_demo_approvals(container)
            page = await (await container.get(ApprovalsRead)).page(
                ApprovalFilter(status=ApprovalStatus.PENDING), 10, None
            )
        finally:
            await container.close()
        (waiting,) = page.approvals
        assert (waiting.rule_id, waiting.team, waiting.channel) == (
            "approval.refund",
            "billing",
            "email",
        )
