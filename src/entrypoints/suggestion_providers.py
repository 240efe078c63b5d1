"""Dishka providers of reply suggestions and a template's channel variants."""

from __future__ import annotations

from dishka import Provider, Scope, provide

from adapters.templates.jinja import JinjaRenderer
from application.queries.customer_context import ContextQueries
from application.queries.reply_suggestions import SuggestReplies
from application.templates.channel_variants import ChannelVariants
from ports.rules import RuleSets
from ports.templates import PublishedTemplates, Templates, TemplateVariables
from ports.unit_of_work import UnitsOfWork

__all__ = ["SuggestionsProvider"]


class SuggestionsProvider(Provider):
    """Suggestions and variants, at APP scope: they only read."""

    scope = Scope.APP

    @provide
    def template_variables(self, renderer: JinjaRenderer) -> TemplateVariables:
        return renderer

    @provide
    def suggest_replies(
        self,
        uows: UnitsOfWork,
        published: PublishedTemplates,
        templates: Templates,
        variables: TemplateVariables,
        contexts: ContextQueries,
        rules: RuleSets,
    ) -> SuggestReplies:
        return SuggestReplies(uows, published, templates, variables, contexts, rules)

    @provide
    def channel_variants(
        self,
        published: PublishedTemplates,
        templates: Templates,
        variables: TemplateVariables,
        contexts: ContextQueries,
        rules: RuleSets,
    ) -> ChannelVariants:
        return ChannelVariants(published, templates, variables, contexts, rules)
