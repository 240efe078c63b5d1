"""Builds the Litestar application; one place configures every plugin."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dishka.integrations.litestar import setup_dishka
from litestar import Litestar
from litestar.middleware.base import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from entrypoints.http.auth import PUBLIC_PATHS, ApiKeyAuthentication
from entrypoints.http.controllers.admin import ClockController
from entrypoints.http.controllers.agents import AgentsController
from entrypoints.http.controllers.approvals import ApprovalsController
from entrypoints.http.controllers.audit import AuditController
from entrypoints.http.controllers.audit_messages import AuditMessagesController
from entrypoints.http.controllers.campaign_dry_run import CampaignDryRunController
from entrypoints.http.controllers.campaign_history import CampaignHistoryController
from entrypoints.http.controllers.campaign_stats import CampaignStatsController
from entrypoints.http.controllers.campaigns import CampaignsController
from entrypoints.http.controllers.conversation_assignments import ConversationAssignmentsController
from entrypoints.http.controllers.conversation_commands import ConversationCommandsController
from entrypoints.http.controllers.conversations import ConversationsController
from entrypoints.http.controllers.customer_context import CustomerContextController
from entrypoints.http.controllers.customers import CustomersController
from entrypoints.http.controllers.enrollment_journal import EnrollmentJournalController
from entrypoints.http.controllers.enrollments import EnrollmentsController
from entrypoints.http.controllers.events import EventsController
from entrypoints.http.controllers.health import HealthController
from entrypoints.http.controllers.keys import KeysController
from entrypoints.http.controllers.messages import MessagesController
from entrypoints.http.controllers.providers import ProvidersController
from entrypoints.http.controllers.routing import RoutingController
from entrypoints.http.controllers.rules import RulesController
from entrypoints.http.controllers.segments import SegmentsController
from entrypoints.http.controllers.suggestions import (
    SuggestionsController,
    TemplateVariantsController,
)
from entrypoints.http.controllers.teams import TeamsController
from entrypoints.http.controllers.templates import TemplatesController
from entrypoints.http.controllers.triggers import TriggersController
from entrypoints.http.controllers.unsubscribe import UnsubscribeController
from entrypoints.http.controllers.webhooks import WebhooksController
from entrypoints.http.correlation import correlation_middleware
from entrypoints.http.edge import (
    MAX_BODY_BYTES,
    EdgeRequest,
    drain_before_answering,
    edge_middleware,
)
from entrypoints.http.problems import document_responses, exception_handlers
from entrypoints.http.rate_limits import (
    RateLimited,
    limiter_from,
    rate_limit_middleware,
    refuse_over_limit,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from dishka import AsyncContainer
    from litestar.types import ControllerRouterHandler

    from entrypoints.http.rate_limiter import RateLimiter
    from entrypoints.settings import Settings

__all__ = ["create_app"]


def create_app(
    container: AsyncContainer,
    settings: Settings,
    *,
    nats: object | None = None,
    workers: Mapping[str, object] | None = None,
    limiter: RateLimiter | None = None,
) -> Litestar:
    """The API; `workers` (anything with a `running` flag) count towards /ready. `limiter`: the
    process's rate limiter, shared with its NATS workers (else one from the settings)."""
    handlers: list[ControllerRouterHandler] = [
        HealthController,
        ApprovalsController,
        AuditController,
        AuditMessagesController,
        EventsController,
        CampaignsController,
        CampaignDryRunController,
        CampaignStatsController,
        ConversationAssignmentsController,
        ConversationsController,
        CustomersController,
        CustomerContextController,
        EnrollmentsController,
        EnrollmentJournalController,
        CampaignHistoryController,
        MessagesController,
        ProvidersController,
        RulesController,
        SegmentsController,
        TemplatesController,
        TemplateVariantsController,
        SuggestionsController,
        TriggersController,
        UnsubscribeController,
        WebhooksController,
        AgentsController,
        TeamsController,
        RoutingController,
        ConversationCommandsController,
        KeysController,
    ]
    if settings.clock == "manual":
        handlers.append(ClockController)
    # Limits count per key, so they run inside authentication (ADR 0015).
    if limiter is None:
        limiter = limiter_from(settings)
    limits = [] if limiter is None else [rate_limit_middleware(limiter)]
    app = Litestar(
        route_handlers=handlers,
        exception_handlers={**exception_handlers, RateLimited: refuse_over_limit},
        request_class=EdgeRequest,
        request_max_body_size=MAX_BODY_BYTES,
        before_send=[drain_before_answering],
        middleware=[
            correlation_middleware,
            edge_middleware,
            DefineMiddleware(
                ApiKeyAuthentication,
                exclude=[f"^{p}" for p in PUBLIC_PATHS],
                # OPTIONS too: a controller's guards run on it, and they need the key.
                exclude_http_methods=[],
            ),
            *limits,
        ],
        openapi_config=OpenAPIConfig(
            title="Chorus",
            version="1.0.0",
            path="/schema",
            render_plugins=[JsonRenderPlugin(), SwaggerRenderPlugin(path="/swagger")],
            components=Components(
                security_schemes={"ApiKey": SecurityScheme(type="http", scheme="bearer")},
            ),
            security=[{"ApiKey": []}],
        ),
        debug=False,
        logging_config=None,  # entrypoints.logs configures JSON logging for everything
    )
    document_responses(app.openapi_schema, public_paths=PUBLIC_PATHS)
    if nats is not None:
        app.state.nats = nats
    app.state.workers = dict(workers or {})
    setup_dishka(container, app)
    return app
