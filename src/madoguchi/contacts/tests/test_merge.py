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
