import pytest

from madoguchi.connectors.base import InboundAuthor
from madoguchi.contacts import actions
from madoguchi.contacts.models import Identity

pytestmark = pytest.mark.django_db


def _phone(number: str = "+81312345678") -> InboundAuthor:
    return InboundAuthor(external_id=number, handle=number)


def test_add_identity_attaches_another_channel_to_the_contact(cast):
    contact = cast.inbound("hi", customer="x-1").message.conversation.contact
    identity = actions.do_add_identity(contact, "phone", _phone())
    assert identity.contact_id == contact.pk and identity.workspace_id == cast.ws.pk
    assert identity.handle == "+81312345678"
    assert identity.display_name == contact.name  # a bare number gets the contact's name
    assert sorted(contact.identities.values_list("kind", flat=True)) == ["internal", "phone"]


def test_adding_the_contacts_own_identity_again_changes_nothing(cast):
    contact = cast.inbound("hi", customer="x-1").message.conversation.contact
    first = actions.do_add_identity(contact, "phone", _phone())
    assert actions.do_add_identity(contact, "phone", _phone()).pk == first.pk
    assert Identity.objects.filter(kind="phone").count() == 1


def test_an_identity_of_another_contact_is_refused_not_moved(cast):
    yui = cast.inbound("hi", customer="yui").message.conversation.contact
    ken = cast.inbound("hi", customer="ken").message.conversation.contact
    actions.do_add_identity(yui, "phone", _phone())
    with pytest.raises(actions.IdentityTaken, match="merge the contacts first") as exc:
        actions.do_add_identity(ken, "phone", _phone())
    assert exc.value.identity.contact_id == yui.pk
    assert Identity.objects.get(kind="phone").contact_id == yui.pk


def test_the_same_handle_in_another_workspace_is_someone_else(cast):
    a = cast.inbound("hi", customer="yui").message.conversation.contact
    b = cast.inbound("hi", customer="yui", account=cast.account_b).message.conversation.contact
    actions.do_add_identity(a, "phone", _phone())
    other = actions.do_add_identity(b, "phone", _phone())
    assert other.contact_id == b.pk and other.workspace_id == cast.ws_b.pk


def test_two_first_items_of_a_new_author_at_once_share_one_identity(cast, monkeypatch):
    """The second insert meets the first's unique key (a webhook flood): it takes that identity."""
    from django.db.models.query import QuerySet

    from madoguchi.connectors.base import InboundAuthor
    from madoguchi.contacts.actions import do_get_or_create_identity
    from madoguchi.contacts.models import Contact, Identity

    author = InboundAuthor(external_id="racer", handle="racer")
    first = do_get_or_create_identity(cast.ws.pk, "line", author)
    real_first = QuerySet.first
    calls = {"n": 0}

    def stale_first(self):  # the other request's row is not visible yet at the first look
        calls["n"] += 1
        return None if calls["n"] == 1 else real_first(self)

    monkeypatch.setattr(QuerySet, "first", stale_first)
    again = do_get_or_create_identity(cast.ws.pk, "line", author)
    assert again.pk == first.pk
    assert Identity.objects.filter(external_id="racer").count() == 1
    assert Contact.objects.filter(identities__external_id="racer").count() == 1
