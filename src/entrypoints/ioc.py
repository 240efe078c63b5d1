"""Dishka providers, by layer: adapters at APP scope, use cases built on them.

Dishka reads the annotations at run time, so nothing here is imported only for type checking.
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager
from uuid import UUID

import asyncpg
import structlog
from dishka import (
    AsyncContainer,
    Provider,
    Scope,
    from_context,
    make_async_container,
    provide,
)

from adapters.assistant.keywords import KeywordClassifier
from adapters.crypto.envelope import DEV_MASTER_KEY, MasterKey
from adapters.postgres.api_keys import PostgresApiKeyStore
from adapters.postgres.approvals import PostgresApprovalsRead
from adapters.postgres.audit_log import PostgresAuditLog
from adapters.postgres.campaign_enrollments import EnrollmentTimers, PostgresEnrollmentCounts
from adapters.postgres.campaign_schedules import ScheduleTimers
from adapters.postgres.campaign_stats import CampaignStatsProjection, PostgresCampaignStats
from adapters.postgres.campaigns import PostgresCampaigns, PostgresJourneyReferences
from adapters.postgres.conversation_roster import PostgresRoster
from adapters.postgres.customer_directory import CustomerDirectory
from adapters.postgres.customer_keys import CUSTOMER_KEYS
from adapters.postgres.customer_records import PostgresCustomerRecords
from adapters.postgres.directory_queries import PostgresDirectory
from adapters.postgres.enrollments import EnrollmentListing, PostgresEnrollments
from adapters.postgres.event_store import PostgresEventStore
from adapters.postgres.history import PostgresHistory
from adapters.postgres.journey_history import PostgresJourneyHistory
from adapters.postgres.manual_clock import PostgresClockStore
from adapters.postgres.messages import PostgresDeliveryStore
from adapters.postgres.process_ports import ProcessPortsOn
from adapters.postgres.rule_sets import PostgresRuleSets
from adapters.postgres.segment_evaluator import SegmentTimers
from adapters.postgres.segments import PostgresSegments, SegmentMembers
from adapters.postgres.sent_requests import PostgresSentRequests
from adapters.postgres.signal_activity import SignalActivity
from adapters.postgres.signal_intake import PostgresSignalIntake
from adapters.postgres.signal_traces import PostgresSignalTraces
from adapters.postgres.templates import PostgresTemplates
from adapters.postgres.triggers import PostgresTriggers, TriggerFirings
from adapters.postgres.unit_of_work import PostgresUnitsOfWork
from adapters.postgres.write_answers import PostgresWriteAnswers
from adapters.providers.config import ProviderConfigError, load_provider_config
from adapters.providers.directory import ConfiguredProviderDirectory
from adapters.providers.guarded import BreakerState
from adapters.system.clock import ManualClock, SystemClock
from adapters.system.ids import RandomIds
from adapters.system.unsubscribe_tokens import SignedUnsubscribeTokens
from adapters.templates.jinja import JinjaRenderer, JinjaTemplates, RenderBudget
from application.approvals.settle_approval import SettleApproval
from application.audit.customer_as_of import CustomerAsOf
from application.audit.decisions import AuditDecisions
from application.audit.event_log import ReadAuditLog
from application.audit.message_story import ReadMessageStory
from application.campaigns.change_status import ChangeCampaignStatus
from application.campaigns.define_campaign import CreateCampaign, EditCampaign
from application.campaigns.dry_run import DryRunCampaign
from application.conversations.assign import AssignConversation
from application.conversations.departures import ReleaseDeparted
from application.conversations.drain_queues import DrainQueues
from application.conversations.receive_inbound import ReceiveInbound
from application.conversations.transfer import TransferConversation
from application.customer.change_consent import ChangeConsent
from application.customer.change_suppression import ChangeSuppression
from application.customer.erase_customer import EraseCustomer
from application.customer.signals import AcceptSignals, AttributeSignals, IngestSignals
from application.customer.update_profile import UpdateProfile
from application.customer.upsert_customer import UpsertCustomer
from application.delivery.dispatch import DispatchMessages
from application.delivery.fall_back import FallBackDue
from application.delivery.give_up import GiveUpMessage
from application.delivery.webhooks import ApplyParkedStatuses, HandleWebhook
from application.enrollments.enroll_customer import EnrollCustomer
from application.idempotent_writes import IdempotentWrites
from application.messages.redecide_due import RedecideDueMessages
from application.messages.request_message import RequestMessage
from application.processes.campaign_enrollments import CampaignEnrollments
from application.processes.conversation_threads import ConversationThreads
from application.processes.outbound_events import OutboundEvents
from application.processes.segment_evaluator import SegmentEvaluator
from application.processes.trigger_matcher import TriggerMatcher
from application.queries.campaign_history import CampaignHistoryQueries
from application.queries.campaign_stats import CampaignStatsQueries
from application.queries.campaign_teams import CampaignTeams
from application.queries.campaigns import CampaignQueries
from application.queries.customer_timeline import CustomerTimeline
from application.queries.customers import CustomerQueries
from application.queries.decisions import DecisionQueries
from application.queries.enrollment_journal import EnrollmentJournals
from application.queries.enrollments import EnrollmentQueries
from application.queries.messages import MessageQueries
from application.queries.templates import TemplateQueries
from application.queries.triggers import TriggerQueries
from application.rules.publish_rules import PublishRules
from application.rules.simulate_rules import SimulateRules
from application.segments.define_segment import DefineSegment, DeleteSegment
from application.templates.publish_template import PublishTemplate
from application.triggers.define_trigger import DefineTrigger, DeleteTrigger
from domain.customer.identities import IdentityNormalizer
from domain.signals.document import SignalReader
from entrypoints.context_providers import CustomerContextProvider
from entrypoints.desk_ioc import DeskProvider
from entrypoints.inbox_providers import InboxProvider
from entrypoints.metrics import PROVIDER_BREAKER_STATE, SIGNALS
from entrypoints.send_deciders import ProcessDeciders
from entrypoints.settings import Settings
from entrypoints.suggestion_providers import SuggestionsProvider
from entrypoints.text_checks import wire_fault
from entrypoints.workers.bell import CommitBell, OutboxBell
from ports.api_keys import ApiKeyStore
from ports.approvals import ApprovalsRead
from ports.audit import AuditLog
from ports.bus import EventPublisher
from ports.campaign_enrollments import EnrollmentCounts
from ports.campaign_stats import CampaignStatsReadModel
from ports.campaigns import CampaignReadModel, JourneyReferences
from ports.classifier import Classifier
from ports.clock import Clock, ClockStore
from ports.conversation_roster import Roster
from ports.customers import CustomerRecords
from ports.delivery import DeliveryStore
from ports.directory import Directory
from ports.enrollments import EnrollmentReadModel
from ports.history import History
from ports.ids import IdGenerator
from ports.inbox import InboxReadModel
from ports.intake import SignalIntake
from ports.journey_history import JourneyHistory
from ports.providers import ProviderDirectory
from ports.rules import RuleSets
from ports.segments import SegmentReadModel
from ports.sent_requests import SentRequests
from ports.signal_traces import SignalTraces
from ports.templates import PublishedTemplates, Templates, TemplateSyntax
from ports.triggers import TriggerReadModel
from ports.unit_of_work import UnitsOfWork
from ports.unsubscribe import UnsubscribeTokens
from ports.write_answers import WriteAnswers

__all__ = [
    "AdaptersProvider",
    "AuditProvider",
    "BusProvider",
    "CampaignsProvider",
    "UseCasesProvider",
    "make_container",
    "with_bus",
]


async def _keep_session(conn: asyncpg.Connection) -> None:
    """asyncpg still rolls back a forgotten transaction; we keep no other session state, so
    the default RESET ALL round trip on every release is pure cost."""


def _refused_at_attribution(intake_id: UUID, reason: str) -> None:
    SIGNALS.labels("attribution", "refused").inc()
    structlog.get_logger("chorus.attribution").error(
        "received signal refused at attribution", intake_id=str(intake_id), reason=reason
    )


_BREAKER_GAUGE = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


def _breaker_gauge(provider: str, state: BreakerState) -> None:
    PROVIDER_BREAKER_STATE.labels(provider).set(_BREAKER_GAUGE[state])


class AdaptersProvider(Provider):
    """Connections and the adapters behind each port; one of each per process."""

    scope = Scope.APP

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings

    @provide
    def settings_(self) -> Settings:
        return self.settings

    @provide
    async def pool(self) -> AsyncIterator[asyncpg.Pool]:
        assert self.settings.database_url, "DATABASE_URL is not set"
        CUSTOMER_KEYS.use(MasterKey(self.settings.master_key or DEV_MASTER_KEY))
        pool = await asyncpg.create_pool(
            self.settings.database_url, min_size=2, max_size=20, reset=_keep_session
        )
        try:
            yield pool
        finally:
            await pool.close()

    @provide
    def clock_store(self, pool: asyncpg.Pool) -> ClockStore:
        return PostgresClockStore(pool)

    @provide
    async def clock(self, store: ClockStore) -> Clock:
        if self.settings.clock != "manual":
            return SystemClock()
        # Where it stood before a restart, or the wall's time at its first start, kept in the
        # database so that every process and `chorus` command reads the same time.
        return ManualClock(await store.start(SystemClock().now()))

    ids = provide(RandomIds, provides=IdGenerator)

    @provide
    def outbox_bell(self) -> OutboxBell:
        return OutboxBell()

    @provide
    def commit_bell(self) -> CommitBell:
        return CommitBell()

    @provide
    def units_of_work(
        self, pool: asyncpg.Pool, bell: OutboxBell, commits: CommitBell
    ) -> UnitsOfWork:
        return PostgresUnitsOfWork(pool, on_enqueued=bell.ring, on_committed=commits.ring)

    @provide
    def customers(self, pool: asyncpg.Pool) -> CustomerRecords:
        return PostgresCustomerRecords(pool)

    @provide
    def signal_intake(self, pool: asyncpg.Pool, commits: CommitBell) -> SignalIntake:
        return PostgresSignalIntake(pool, on_committed=commits.ring)

    @provide
    def signal_traces(self, pool: asyncpg.Pool) -> SignalTraces:
        return PostgresSignalTraces(pool)

    @provide
    def api_keys(self, pool: asyncpg.Pool, clock: Clock, ids: IdGenerator) -> ApiKeyStore:
        return PostgresApiKeyStore(pool, clock, ids)

    @provide
    async def providers(self) -> AsyncIterator[ProviderDirectory]:
        source = self.settings.providers
        try:
            config = load_provider_config(source, name="CHORUS_PROVIDERS") if source else None
        except ProviderConfigError as error:
            raise SystemExit(f"chorus: bad setting {error}") from None
        directory = (
            ConfiguredProviderDirectory(())
            if config is None
            else ConfiguredProviderDirectory.from_config(config, on_breaker=_breaker_gauge)
        )
        try:
            yield directory
        finally:
            await directory.close()

    @provide
    def segment_evaluator(self, clock: Clock) -> SegmentEvaluator:
        return SegmentEvaluator(clock)

    @provide
    def process_ports(self) -> ProcessPortsOn:
        return ProcessPortsOn(PostgresEventStore())

    @provide
    def segment_timers(
        self, pool: asyncpg.Pool, evaluator: SegmentEvaluator, ports: ProcessPortsOn
    ) -> SegmentTimers:
        return SegmentTimers(pool, evaluator, ports)

    @provide
    def customer_directory(self) -> CustomerDirectory:
        return CustomerDirectory()

    @provide
    def signal_activity(self) -> SignalActivity:
        return SignalActivity()

    @provide
    def segment_members(self) -> SegmentMembers:
        return SegmentMembers()

    @provide
    def trigger_matcher(self, clock: Clock, traces: SignalTraces) -> TriggerMatcher:
        return TriggerMatcher(clock, traces)

    @provide
    def trigger_firings(self) -> TriggerFirings:
        return TriggerFirings()

    @provide
    def directory(self, pool: asyncpg.Pool) -> Directory:
        return PostgresDirectory(pool)

    @provide
    def segment_read_model(self, pool: asyncpg.Pool) -> SegmentReadModel:
        return PostgresSegments(pool)

    @provide
    def trigger_read_model(self, pool: asyncpg.Pool) -> TriggerReadModel:
        return PostgresTriggers(pool)

    @provide
    def delivery_store(self, pool: asyncpg.Pool) -> DeliveryStore:
        return PostgresDeliveryStore(pool)

    @provide
    def approvals_read(self, pool: asyncpg.Pool) -> ApprovalsRead:
        return PostgresApprovalsRead(pool)

    @provide
    def history(self, pool: asyncpg.Pool) -> History:
        return PostgresHistory(pool)

    @provide
    def rule_sets(self, pool: asyncpg.Pool, clock: Clock) -> RuleSets:
        return PostgresRuleSets(pool, clock)

    @provide
    def published_templates(self, pool: asyncpg.Pool) -> PublishedTemplates:
        return PostgresTemplates(pool)

    @provide
    def template_renderer(self) -> Iterator[JinjaRenderer]:
        # A render thread holds the GIL for up to the switch interval while the event loop
        # waits for it: 1 ms instead of 5 keeps /health and every request quick meanwhile.
        sys.setswitchinterval(min(sys.getswitchinterval(), 0.001))
        settings = self.settings
        renderer = JinjaRenderer(
            budget=RenderBudget(settings.render_operations, settings.render_seconds),
            threads=settings.render_threads,
        )
        try:
            yield renderer
        finally:
            renderer.close()

    @provide
    def template_syntax(self, renderer: JinjaRenderer) -> TemplateSyntax:
        return renderer

    @provide
    def templates(self, published: PublishedTemplates, renderer: JinjaRenderer) -> Templates:
        return JinjaTemplates(published, renderer)

    @provide
    def unsubscribe_tokens(self) -> UnsubscribeTokens:
        secret = self.settings.secret
        if not secret:
            secret = secrets.token_urlsafe(32)
            structlog.get_logger("chorus").warning(
                "CHORUS_SECRET is not set: unsubscribe links stop working when this process stops"
            )
        return SignedUnsubscribeTokens(secret.encode())

    @provide
    def normalizer(self) -> IdentityNormalizer:
        return IdentityNormalizer(self.settings.default_region)


class UseCasesProvider(Provider):
    """Interactors and queries; stateless, so one each per process."""

    scope = Scope.APP

    @provide
    def ingest_signals(self, uows: UnitsOfWork, clock: Clock, ids: IdGenerator) -> IngestSignals:
        return IngestSignals(uows, clock, ids)

    @provide
    def accept_signals(
        self, intake: SignalIntake, clock: Clock, ingest: IngestSignals
    ) -> AcceptSignals:
        return AcceptSignals(intake, clock, ingest)

    @provide
    def attribute_signals(
        self, ingest: IngestSignals, reader: SignalReader, intake: SignalIntake, clock: Clock
    ) -> AttributeSignals:
        return AttributeSignals(ingest, reader, intake, clock, _refused_at_attribution)

    @provide
    def upsert_customer(self, uows: UnitsOfWork, clock: Clock, ids: IdGenerator) -> UpsertCustomer:
        return UpsertCustomer(uows, clock, ids)

    @provide
    def update_profile(self, uows: UnitsOfWork, clock: Clock) -> UpdateProfile:
        return UpdateProfile(uows, clock)

    @provide
    def define_segment(self, uows: UnitsOfWork, clock: Clock) -> DefineSegment:
        return DefineSegment(uows, clock)

    @provide
    def delete_segment(self, uows: UnitsOfWork, clock: Clock) -> DeleteSegment:
        return DeleteSegment(uows, clock)

    @provide
    def define_trigger(self, uows: UnitsOfWork, clock: Clock) -> DefineTrigger:
        return DefineTrigger(uows, clock)

    @provide
    def delete_trigger(self, uows: UnitsOfWork, clock: Clock) -> DeleteTrigger:
        return DeleteTrigger(uows, clock)

    @provide
    def trigger_queries(self, triggers: TriggerReadModel) -> TriggerQueries:
        return TriggerQueries(triggers)

    @provide
    def customer_queries(self, customers: CustomerRecords) -> CustomerQueries:
        return CustomerQueries(customers)

    @provide
    def customer_timeline(
        self,
        customers: CustomerQueries,
        deliveries: DeliveryStore,
        approvals: ApprovalsRead,
        inbox: InboxReadModel,
    ) -> CustomerTimeline:
        return CustomerTimeline(customers, deliveries, approvals, inbox)

    @provide
    def redecide_due(
        self, uows: UnitsOfWork, rule_sets: RuleSets, clock: Clock, ids: IdGenerator, roster: Roster
    ) -> RedecideDueMessages:
        return RedecideDueMessages(uows, rule_sets, clock, ids, roster)

    @provide
    def simulate_rules(self, history: History) -> SimulateRules:
        return SimulateRules(history)

    @provide
    def publish_rules(self, uows: UnitsOfWork, rule_sets: RuleSets, clock: Clock) -> PublishRules:
        return PublishRules(uows, rule_sets, clock)

    @provide
    def publish_template(
        self,
        uows: UnitsOfWork,
        templates: PublishedTemplates,
        clock: Clock,
        syntax: TemplateSyntax,
    ) -> PublishTemplate:
        return PublishTemplate(uows, templates, clock, syntax)

    @provide
    def template_queries(self, templates: PublishedTemplates) -> TemplateQueries:
        return TemplateQueries(templates)

    @provide
    def decision_queries(
        self, customers: CustomerRecords, unsubscribe: UnsubscribeTokens, settings: Settings
    ) -> DecisionQueries:
        return DecisionQueries(customers, unsubscribe, settings.base_url)

    @provide
    def change_consent(
        self, uows: UnitsOfWork, clock: Clock, customers: CustomerRecords
    ) -> ChangeConsent:
        return ChangeConsent(uows, clock, customers)

    @provide
    def change_suppression(
        self, uows: UnitsOfWork, clock: Clock, customers: CustomerRecords
    ) -> ChangeSuppression:
        return ChangeSuppression(uows, clock, customers)

    @provide
    def erase_customer(
        self,
        uows: UnitsOfWork,
        clock: Clock,
        customers: CustomerRecords,
        rule_sets: RuleSets,
        ids: IdGenerator,
    ) -> EraseCustomer:
        return EraseCustomer(uows, clock, customers, rule_sets, ids)

    @provide
    def request_message(
        self,
        uows: UnitsOfWork,
        rule_sets: RuleSets,
        clock: Clock,
        ids: IdGenerator,
        templates: Templates,
        customers: CustomerRecords,
    ) -> RequestMessage:
        return RequestMessage(uows, rule_sets, clock, ids, templates, customers=customers)

    @provide
    def dispatch_messages(
        self,
        uows: UnitsOfWork,
        providers: ProviderDirectory,
        clock: Clock,
        unsubscribe: UnsubscribeTokens,
        settings: Settings,
    ) -> DispatchMessages:
        return DispatchMessages(
            uows,
            providers,
            clock,
            unsubscribe=unsubscribe,
            public_url=settings.base_url,
            lease_seconds=settings.dispatch_lease_seconds,
        )

    @provide
    def fall_back_due(
        self, uows: UnitsOfWork, request_message: RequestMessage, clock: Clock
    ) -> FallBackDue:
        return FallBackDue(uows, request_message, clock)

    @provide
    def handle_webhook(
        self,
        providers: ProviderDirectory,
        uows: UnitsOfWork,
        store: DeliveryStore,
        suppress: ChangeSuppression,
        ingest: IngestSignals,
        normalizer: IdentityNormalizer,
        clock: Clock,
    ) -> HandleWebhook:
        return HandleWebhook(providers, uows, store, suppress, ingest, normalizer, clock)

    @provide
    def apply_parked_statuses(
        self, store: DeliveryStore, webhooks: HandleWebhook
    ) -> ApplyParkedStatuses:
        return ApplyParkedStatuses(store, webhooks)

    @provide
    def message_queries(
        self, store: DeliveryStore, decisions: DecisionQueries, approvals: ApprovalsRead
    ) -> MessageQueries:
        return MessageQueries(store, decisions, approvals)

    @provide
    def settle_approval(
        self,
        uows: UnitsOfWork,
        rule_sets: RuleSets,
        clock: Clock,
        ids: IdGenerator,
        templates: Templates,
        roster: Roster,
    ) -> SettleApproval:
        return SettleApproval(uows, rule_sets, clock, ids, templates, roster)

    @provide
    def signal_reader(self, normalizer: IdentityNormalizer) -> SignalReader:
        return SignalReader(normalizer, refuse=wire_fault)

    # campaign enrollments: the process, its timers, and the API's entry

    @provide
    def campaign_enrollments(
        self,
        clock: Clock,
        request_message: RequestMessage,
        update_profile: UpdateProfile,
        uows: UnitsOfWork,
        rule_sets: RuleSets,
        ids: IdGenerator,
        traces: SignalTraces,
        deciders: ProcessDeciders,
    ) -> CampaignEnrollments:
        give_up = GiveUpMessage(uows, clock, rule_sets, ids)
        return CampaignEnrollments(
            clock, request_message, update_profile, give_up, traces, deciders
        )

    @provide
    def send_deciders(
        self, settings: Settings, request_message: RequestMessage, clock: Clock
    ) -> Iterator[ProcessDeciders]:
        deciders = ProcessDeciders(settings, request_message, clock, settings.broadcast_processes)
        yield deciders
        deciders.close()

    @provide
    def enrollment_timers(
        self, pool: asyncpg.Pool, process: CampaignEnrollments, ports: ProcessPortsOn
    ) -> EnrollmentTimers:
        return EnrollmentTimers(pool, process, ports)

    @provide
    def schedule_timers(
        self, pool: asyncpg.Pool, process: CampaignEnrollments, ports: ProcessPortsOn
    ) -> ScheduleTimers:
        return ScheduleTimers(pool, process, ports)

    @provide
    def enrollment_counts(self) -> EnrollmentCounts:
        return PostgresEnrollmentCounts()

    @provide
    def enroll_customer(
        self, uows: UnitsOfWork, clock: Clock, counts: EnrollmentCounts
    ) -> EnrollCustomer:
        return EnrollCustomer(uows, clock, counts)


class CampaignsProvider(Provider):
    """Campaign definitions: their listing, the keys journeys may name, and their use cases."""

    scope = Scope.APP

    @provide
    def campaign_read_model(self, pool: asyncpg.Pool) -> CampaignReadModel:
        return PostgresCampaigns(pool)

    @provide
    def journey_references(self, pool: asyncpg.Pool) -> JourneyReferences:
        return PostgresJourneyReferences(pool)

    @provide
    def create_campaign(
        self, uows: UnitsOfWork, clock: Clock, references: JourneyReferences
    ) -> CreateCampaign:
        return CreateCampaign(uows, clock, references)

    @provide
    def edit_campaign(
        self, uows: UnitsOfWork, clock: Clock, references: JourneyReferences
    ) -> EditCampaign:
        return EditCampaign(uows, clock, references)

    @provide
    def change_campaign_status(self, uows: UnitsOfWork, clock: Clock) -> ChangeCampaignStatus:
        return ChangeCampaignStatus(uows, clock)

    @provide
    def campaign_queries(self, campaigns: CampaignReadModel) -> CampaignQueries:
        return CampaignQueries(campaigns)

    @provide
    def campaign_teams(self, campaigns: CampaignReadModel, history: History) -> CampaignTeams:
        return CampaignTeams(campaigns, history)

    # the dry run: the journey played over recorded history

    @provide
    def journey_history(self, pool: asyncpg.Pool) -> JourneyHistory:
        return PostgresJourneyHistory(pool)

    @provide
    def dry_run_campaign(
        self,
        uows: UnitsOfWork,
        history: History,
        journeys: JourneyHistory,
        templates: Templates,
        published: PublishedTemplates,
    ) -> DryRunCampaign:
        return DryRunCampaign(uows, history, journeys, templates, published)

    # campaign stats: the projection, its read model and the query

    @provide
    def campaign_stats_projection(self) -> CampaignStatsProjection:
        return CampaignStatsProjection()

    @provide
    def campaign_stats_read_model(self, pool: asyncpg.Pool) -> CampaignStatsReadModel:
        return PostgresCampaignStats(pool)

    @provide
    def campaign_stats_queries(
        self, campaigns: CampaignReadModel, stats: CampaignStatsReadModel
    ) -> CampaignStatsQueries:
        return CampaignStatsQueries(campaigns, stats)

    # enrollments as the read side lists them: the projection and its queries

    @provide
    def enrollment_listing(self) -> EnrollmentListing:
        return EnrollmentListing()

    @provide
    def enrollment_read_model(self, pool: asyncpg.Pool) -> EnrollmentReadModel:
        return PostgresEnrollments(pool)

    @provide
    def enrollment_queries(
        self, enrollments: EnrollmentReadModel, campaigns: CampaignReadModel
    ) -> EnrollmentQueries:
        return EnrollmentQueries(enrollments, campaigns)

    # a campaign's history and an enrollment's journal, from their streams; writes a client may
    # retry, answered once per idempotency key

    @provide
    def campaign_history_queries(
        self, campaigns: CampaignReadModel, history: History
    ) -> CampaignHistoryQueries:
        return CampaignHistoryQueries(campaigns, history)

    @provide
    def sent_requests(self, pool: asyncpg.Pool) -> SentRequests:
        return PostgresSentRequests(pool)

    @provide
    def enrollment_journals(
        self, campaigns: CampaignReadModel, history: History, sends: SentRequests
    ) -> EnrollmentJournals:
        return EnrollmentJournals(campaigns, history, sends)

    @provide
    def write_answers(self, pool: asyncpg.Pool) -> WriteAnswers:
        return PostgresWriteAnswers(pool)

    @provide
    def idempotent_writes(self, answers: WriteAnswers) -> IdempotentWrites:
        return IdempotentWrites(answers)


class AuditProvider(Provider):
    """The audit API's reads: the event log itself, never a read model."""

    scope = Scope.APP

    @provide
    def audit_log(self, pool: asyncpg.Pool) -> AuditLog:
        return PostgresAuditLog(pool)

    @provide
    def customer_as_of(self, log: AuditLog, clock: Clock) -> CustomerAsOf:
        return CustomerAsOf(log, clock)

    @provide
    def message_story(self, log: AuditLog) -> ReadMessageStory:
        return ReadMessageStory(log)

    @provide
    def read_audit_log(self, log: AuditLog) -> ReadAuditLog:
        return ReadAuditLog(log)

    @provide
    def audit_decisions(self, log: AuditLog) -> AuditDecisions:
        return AuditDecisions(log)


class ConversationThreadsProvider(Provider):
    """Inbound messages into threads, routing, queues, assignment and transfer."""

    scope = Scope.APP

    @provide
    def roster(self, pool: asyncpg.Pool) -> Roster:
        return PostgresRoster(pool)

    @provide
    def classifier(self, settings: Settings) -> Classifier:
        # The model loads (or trains, the first time) on first use, off the event loop; messages
        # wait for it, and the keywords never stand in. They serve only when chosen.
        if settings.classifier == "keywords":
            return KeywordClassifier()
        # Imported only when used: scikit-learn costs a process seconds to import.
        from adapters.assistant.classifier import LazyClassifier

        return LazyClassifier(settings.intent_model_dir)

    @provide
    def receive_inbound(
        self, uows: UnitsOfWork, classifier: Classifier, roster: Roster, clock: Clock
    ) -> ReceiveInbound:
        return ReceiveInbound(uows, classifier, roster, clock)

    @provide
    def drain_queues(self, uows: UnitsOfWork, roster: Roster, clock: Clock) -> DrainQueues:
        return DrainQueues(uows, roster, clock)

    @provide
    def release_departed(self, uows: UnitsOfWork, roster: Roster, clock: Clock) -> ReleaseDeparted:
        return ReleaseDeparted(uows, roster, clock)

    @provide
    def conversation_threads(
        self, receive: ReceiveInbound, drain: DrainQueues, release: ReleaseDeparted
    ) -> ConversationThreads:
        return ConversationThreads(receive, drain, release)

    @provide
    def assign_conversation(
        self, uows: UnitsOfWork, roster: Roster, clock: Clock
    ) -> AssignConversation:
        return AssignConversation(uows, roster, clock)

    @provide
    def transfer_conversation(
        self, uows: UnitsOfWork, roster: Roster, clock: Clock
    ) -> TransferConversation:
        return TransferConversation(uows, roster, clock)


class BusProvider(Provider):
    """What publishes to the bus: given per connection (`with_bus`), as only the processes that
    publish connect to NATS."""

    scope = Scope.REQUEST

    publisher = from_context(provides=EventPublisher, scope=Scope.REQUEST)

    @provide
    def outbound_events(
        self, publisher: EventPublisher, settings: Settings, traces: SignalTraces
    ) -> OutboundEvents:
        return OutboundEvents(publisher, prefix=settings.nats_prefix, traces=traces)


def make_container(settings: Settings, *extra: Provider) -> AsyncContainer:
    return make_async_container(
        AdaptersProvider(settings),
        UseCasesProvider(),
        CampaignsProvider(),
        AuditProvider(),
        ConversationThreadsProvider(),
        BusProvider(),
        InboxProvider(),
        DeskProvider(),
        CustomerContextProvider(),
        SuggestionsProvider(),
        *extra,
    )


def with_bus(
    container: AsyncContainer, publisher: EventPublisher
) -> AbstractAsyncContextManager[AsyncContainer]:
    """The container, with `publisher` as the bus of what it builds inside the block."""
    return container(context={EventPublisher: publisher})
