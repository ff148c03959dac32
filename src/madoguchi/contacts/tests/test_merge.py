import pytest

from madoguchi.accounts.models import AuditLog
from madoguchi.contacts import actions
from madoguchi.contacts.models import Contact
from madoguchi.ingest.models import Post

pytestmark = pytest.mark.django_db


def test_merge_moves_everything_and_undo_restores_it(cast):
    a = cast.inbound("on x", customer="x-user", public=True).message.conversation.contact
    b = cast.inbound("by mail", customer="mail-user").message.conversation.contact
    log = actions.do_merge_contacts(b, a, cast.agent)
    assert a.identities.count() == 2 and a.conversations.count() == 2
    assert Contact.objects.get(pk=b.pk).merged_into_id == a.pk
    actions.do_undo_merge(log, cast.agent)
    assert a.identities.count() == 1 and b.conversations.count() == 1
    assert Post.objects.get().contact_id == a.pk
    assert AuditLog.objects.get(pk=log.pk).undone_at is not None
    with pytest.raises(actions.MergeError):
        actions.do_undo_merge(log, cast.agent)


def test_cannot_merge_across_workspaces(cast):
    a = cast.inbound("a", customer="1").message.conversation.contact
    b = cast.inbound("b", customer="2", account=cast.account_b).message.conversation.contact
    with pytest.raises(actions.MergeError):
        actions.do_merge_contacts(b, a, cast.agent)


def test_the_contact_page_offers_contacts_that_may_be_the_same_person(cast, client_for):
    from madoguchi.conftest import csrf_post
    from madoguchi.connectors.base import InboundAuthor
    from madoguchi.contacts.actions import do_add_identity

    line = cast.inbound("hi", customer="U-line-1", name="Liam Johnson").message.conversation.contact
    x = cast.inbound("hello", customer="U-x-2", name="liam johnson").message.conversation.contact
    email = cast.inbound("hey", customer="U-mail-3", name="L. J.").message.conversation.contact
    Contact.objects.filter(pk=email.pk).update(email="liam@example.com")
    Contact.objects.filter(pk=line.pk).update(email="LIAM@example.com")
    handle = cast.inbound("yo", customer="U-ig-4", name="LJ").message.conversation.contact
    do_add_identity(handle, "instagram", InboundAuthor(external_id="ig-9", handle="liamj"))
    do_add_identity(line, "x", InboundAuthor(external_id="x-9", handle="liamj"))
    stranger = cast.inbound("hi", customer="U-5", name="Mia Garcia").message.conversation.contact
    elsewhere = cast.inbound("hi", account=cast.account_b, customer="U-6", name="Liam Johnson").message.conversation.contact

    client = client_for(cast.agent)
    page = client.get(f"/contacts/{line.pk}/").content.decode()
    assert "Possibly the same person" in page
    for other, why in ((x, "same name"), (email, "same email"), (handle, "same handle")):
        assert f'name="source" value="{other.pk}"' in page and why in page
    assert f'value="{stranger.pk}"' not in page and f'value="{elsewhere.pk}"' not in page  # nor another workspace's

    csrf_post(client, f"/contacts/{line.pk}/merge/", {"source": x.pk})
    page = client.get(f"/contacts/{line.pk}/").content.decode()
    assert f'name="source" value="{x.pk}"' not in page  # merged: no longer offered
    assert "Possibly the same person" not in client.get(f"/contacts/{stranger.pk}/").content.decode()
