"""The contacts API: a contact with its identities, merge and undo, inside one workspace only."""

import pytest

from madoguchi.accounts.tests.api_client import api_fixture  # noqa: F401

pytestmark = pytest.mark.django_db


def contact_of(cast, customer, **kw):
    return cast.inbound("hello", customer=customer, **kw).message.conversation.contact


def test_get_contact_with_identities(cast, api):
    contact = contact_of(cast, "yui-x", name="Yui")
    body = api(cast.agent, "get", f"/api/v1/contacts/{contact.pk}").json()
    assert body["name"] == "Yui" and body["merged_into_id"] is None
    assert [(i["kind"], i["external_id"]) for i in body["identities"]] == [("internal", "yui-x")]


def test_another_workspace_gets_404_on_our_contacts(cast, api):
    ours = contact_of(cast, "a1")
    theirs = contact_of(cast, "b1", account=cast.account_b)
    assert api(cast.agent_b, "get", f"/api/v1/contacts/{ours.pk}").status_code == 404
    assert api(cast.agent_b, "post", f"/api/v1/contacts/{theirs.pk}/merge", {"source": ours.pk}).status_code == 404
    assert api(cast.agent_b, "post", f"/api/v1/contacts/{ours.pk}/merge", {"source": theirs.pk}).status_code == 404
    assert ours.identities.count() == 1 and theirs.identities.count() == 1


def test_merge_and_undo(cast, api):
    target = contact_of(cast, "on-x", name="Yui")
    source = contact_of(cast, "by-mail", name="Yui S.")
    merged = api(cast.agent, "post", f"/api/v1/contacts/{target.pk}/merge", {"source": source.pk})
    assert merged.status_code == 200
    body = merged.json()
    assert {i["external_id"] for i in body["contact"]["identities"]} == {"on-x", "by-mail"}
    assert api(cast.agent, "post", f"/api/v1/contacts/{target.pk}/merge", {"source": source.pk}).status_code == 400
    undone = api(cast.agent, "post", f"/api/v1/contacts/merges/{body['merge_id']}/undo")
    assert undone.status_code == 200 and undone.json()["id"] == source.pk
    assert [i["external_id"] for i in undone.json()["identities"]] == ["by-mail"]
    again = api(cast.agent, "post", f"/api/v1/contacts/merges/{body['merge_id']}/undo")
    assert again.status_code == 400 and "undone" in again.json()["detail"]
    assert api(cast.agent_b, "post", f"/api/v1/contacts/merges/{body['merge_id']}/undo").status_code == 404


def test_merge_into_itself_is_refused(cast, api):
    contact = contact_of(cast, "self")
    response = api(cast.agent, "post", f"/api/v1/contacts/{contact.pk}/merge", {"source": contact.pk})
    assert response.status_code == 400 and response.json()["detail"]
    assert api(cast.agent, "post", f"/api/v1/contacts/{contact.pk}/merge", {"source": "x"}).status_code == 422
