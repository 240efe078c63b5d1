"""Which values of an event are personal data is declared next to the events, and found there."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest
from eventsourcing.domain import Aggregate, event

from domain.catalog import TOPICS, topic_of
from domain.conversation.aggregate import Conversation
from domain.customer.aggregate import Customer, CustomerWasErased, CustomerWasMerged
from domain.customer.contact import ConsentRecord
from domain.customer.identities import Identity, IdentityClaim
from domain.message.aggregate import Message
from domain.policy.vocabulary import Channel, Purpose
from domain.shared.personal import ERASED, PersonalFields, PersonalPath, map_personal
from domain.shared.topics import StoredAs, TopicRegistry, events_of

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def hidden(value: object) -> str:
    return f"<{value}>"


class TestPersonalPaths:
    def test_a_path_names_fields_items_and_every_value_of_a_mapping(self) -> None:
        assert PersonalPath.parse("identities[].identity.value").steps == (
            "identities",
            "[]",
            "identity",
            "value",
        )
        assert PersonalPath.parse("attributes.*").steps == ("attributes", "*")
        assert str(PersonalPath.parse("identities[].identity.value")) == (
            "identities[].identity.value"
        )

    def test_an_empty_step_is_refused(self) -> None:
        with pytest.raises(ValueError, match="empty step"):
            PersonalPath.parse("profile..first_name")

    def test_only_the_values_the_paths_name_change_and_absent_ones_stay_absent(self) -> None:
        fields = {
            "identities": (
                {"identity": {"type": "email", "value": "ana@example.org"}, "verification": "v"},
            ),
            "profile": {"first_name": "Ana", "last_name": None, "time_zone": "Europe/Lisbon"},
            "attributes": {"tier": "gold", "gone": None},
            "reason": "profile upsert",
        }
        paths = (
            PersonalPath.parse("identities[].identity.value"),
            PersonalPath.parse("profile.first_name"),
            PersonalPath.parse("profile.last_name"),
            PersonalPath.parse("attributes.*"),
        )
        assert map_personal(fields, paths, hidden) == {
            "identities": [
                {"identity": {"type": "email", "value": "<ana@example.org>"}, "verification": "v"}
            ],
            "profile": {"first_name": "<Ana>", "last_name": None, "time_zone": "Europe/Lisbon"},
            "attributes": {"tier": "<gold>", "gone": None},
            "reason": "profile upsert",
        }

    def test_a_path_through_a_missing_field_changes_nothing(self) -> None:
        fields = {"channel": "email"}
        assert map_personal(fields, (PersonalPath.parse("profile.first_name"),), hidden) == {
            "channel": "email"
        }


class TestTheCustomersDeclaration:
    def test_identity_values_names_and_attributes_are_personal(self) -> None:
        personal = {
            name: [str(p) for p in TOPICS.personal(topic_of(cls))]
            for name, cls in events_of(Customer).items()
            if TOPICS.personal(topic_of(cls))
        }
        assert personal == {
            "Registered": ["identities[].identity.value"],
            "IdentityLinked": ["identity.identity.value"],
            "ProfileUpdated": ["profile.first_name", "profile.last_name", "attributes.*"],
            "Absorbed": [
                "identities[].identity.value",
                "profile.first_name",
                "profile.last_name",
                "attributes.*",
            ],
            # An operator's edit of a held message: what it said, as held and as approved.
            "ApprovalSettled": [
                f"edit.{side}.contents[].content.{field}"
                for side in ("before", "after")
                for field in ("subject", "body", "html", "title", "whatsapp_parameters[]")
            ],
            # Free text: a bounce notice naming the address, an operator's note.
            "SuppressionAdded": ["reason"],
            # What the classifier inferred from their words; its confidence, the urgency and
            # the channel stay in clear.
            "MessageClassified": ["intent", "sentiment", "score"],
        }

    def test_what_a_message_said_and_what_its_provider_said_of_it_are_personal(self) -> None:
        personal = {
            name: [str(p) for p in TOPICS.personal(topic_of(cls))]
            for name, cls in events_of(Message).items()
            if TOPICS.personal(topic_of(cls))
        }
        assert personal == {
            "Queued": [
                "recipient",
                "content.subject",
                "content.body",
                "content.html",
                "content.title",
                "content.whatsapp_parameters[]",
            ],
            "StatusReported": ["reason"],
        }

    def test_what_the_customer_wrote_and_what_was_inferred_from_it_are_personal(self) -> None:
        personal = {
            name: [str(p) for p in TOPICS.personal(topic_of(cls))]
            for name, cls in events_of(Conversation).items()
            if TOPICS.personal(topic_of(cls))
        }
        assert personal == {
            "MessageReceived": ["message.text", "message.author"],
            "MessageSent": ["message.text"],
            "NoteAdded": ["note.text"],
            # As on the customer: the confidence, the urgency and why no intent stay in clear.
            "Classified": ["intent", "sentiment", "sentiment_score"],
            "Assigned": ["reason"],
            "Transferred": ["reason"],
            "Queued": ["reason"],
            "Unassigned": ["reason"],
            "PriorityChanged": ["reason"],
        }

    def test_decisions_consents_and_the_erasure_hold_no_personal_values(self) -> None:
        for name in ("MessageAllowed", "ConsentChanged", "MergedInto", "Erased"):
            assert TOPICS.personal(topic_of(events_of(Customer)[name])) == ()

    def test_personal_fields_of_an_event_the_aggregate_does_not_have_are_refused(self) -> None:
        class Parcel(Aggregate):
            stored_as = StoredAs("shipping:Parcel")
            personal = PersonalFields({"Lost": ("owner",)})

            @event("Registered")
            def __init__(self, owner: str) -> None:
                self.owner = owner

        with pytest.raises(ValueError, match="'Lost': no such event"):
            TopicRegistry([Parcel])


def ana() -> Customer:
    customer = Customer.register(uuid4(), T0, (IdentityClaim(Identity("email", "a@x.org")),))
    customer.update_profile(T0, {"first_name": "Ana", "time_zone": "Europe/Lisbon"}, {"t": 1})
    return customer


class TestErasingACustomer:
    def test_the_person_is_forgotten_and_what_the_rules_need_stays(self) -> None:
        customer = ana()
        customer.change_consent(ConsentRecord(Channel.EMAIL, Purpose.MARKETING, True, "form"), T0)
        assert customer.erase(T0) is True
        assert customer.erased_at == T0
        assert customer.erased_ids == (customer.id,)
        assert customer.identities == {}
        assert customer.attributes == {}
        assert customer.profile.first_name is None
        assert customer.profile.time_zone == "Europe/Lisbon"
        assert customer.consents  # the proof of what was allowed stays

    def test_erasing_again_records_nothing(self) -> None:
        customer = ana()
        customer.erase(T0)
        customer.collect_events()
        assert customer.erase(T0) is False
        assert customer.pending_events == []

    def test_an_erased_customer_takes_no_more_commands(self) -> None:
        customer = ana()
        customer.erase(T0)
        with pytest.raises(CustomerWasErased):
            customer.link(IdentityClaim(Identity("email", "b@x.org")), T0)
        with pytest.raises(CustomerWasErased):
            customer.update_profile(T0, {"first_name": "Bea"}, {})

    def test_the_survivor_of_a_merge_erases_the_merged_customers_too(self) -> None:
        survivor, merged = ana(), ana()
        survivor.absorb(merged, T0, "same person")
        survivor.erase(T0)
        assert survivor.erased_ids == (survivor.id, merged.id)
        with pytest.raises(CustomerWasMerged):
            merged.erase(T0)

    def test_the_erasure_is_recorded_without_personal_values(self) -> None:
        customer = ana()
        customer.collect_events()
        customer.erase(T0)
        (erased,) = customer.collect_events()
        assert type(erased).__qualname__ == "Customer.Erased"
        assert ERASED not in repr(erased)
        assert "a@x.org" not in repr(erased)
        assert "Ana" not in repr(erased)
