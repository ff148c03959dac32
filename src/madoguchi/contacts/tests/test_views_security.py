"""Contact screens keep workspaces apart: lists, search, timelines, merges and their undo."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from madoguchi.accounts.models import AuditLog
from madoguchi.conftest import csrf_post
from madoguchi.contacts.models import Contact

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def contact_a(cast) -> Contact:
    return cast.inbound(
        "hi", customer="acme-secret-handle", name="Akiko Acme"
    ).message.conversation.contact


@pytest.fixture
def contact_b(cast) -> Contact:
    msg = cast.inbound(
        "hi", account=cast.account_b, customer="beta-handle", name="Bob Beta"
    ).message
    return msg.conversation.contact


def test_contact_list_and_search_of_b_show_nothing_of_a(cast, contact_a, contact_b, client_for):
    client = client_for(cast.agent_b)
    for params in ({}, {"q": "Akiko"}, {"q": "acme-secret"}, {"q": "a"}):
        body = client.get("/contacts/", params).content.decode()
        assert "Akiko Acme" not in body
        assert "No contacts found." in body or "Bob Beta" in body
        assert reverse("contacts:detail", args=[contact_a.pk]) not in body
    assert "Bob Beta" in client.get("/contacts/").content.decode()
    assert (
        "Akiko Acme"
        in client_for(cast.agent).get("/contacts/", {"q": "acme-secret"}).content.decode()
    )


def test_contact_detail_of_a_is_404_for_b(cast, contact_a, client_for):
    assert client_for(cast.agent_b).get(f"/contacts/{contact_a.pk}/").status_code == 404
    body = client_for(cast.agent).get(f"/contacts/{contact_a.pk}/").content.decode()
    assert "Akiko Acme" in body


def test_b_cannot_merge_contacts_of_a_in_either_direction(cast, contact_a, contact_b, client_for):
    other_a = cast.inbound("hey", customer="acme-2", name="Other Acme").message.conversation.contact
    client = client_for(cast.agent_b)
    assert (
        csrf_post(client, f"/contacts/{contact_a.pk}/merge/", {"source": other_a.pk}).status_code
        == 404
    )
    assert (
        csrf_post(client, f"/contacts/{contact_b.pk}/merge/", {"source": contact_a.pk}).status_code
        == 404
    )
    assert (
        csrf_post(client, f"/contacts/{contact_a.pk}/merge/", {"source": contact_b.pk}).status_code
        == 404
    )
    assert not AuditLog.objects.filter(action="contact.merge").exists()
    assert Contact.objects.filter(merged_into__isnull=False).count() == 0


def test_a_cannot_merge_a_contact_of_b_into_its_own(cast, contact_a, contact_b, client_for):
    client = client_for(cast.admin)
    assert (
        csrf_post(client, f"/contacts/{contact_a.pk}/merge/", {"source": contact_b.pk}).status_code
        == 404
    )
    contact_b.refresh_from_db()
    assert contact_b.merged_into_id is None


def test_undo_of_a_merge_of_a_is_404_for_b(cast, contact_a, client_for):
    other_a = cast.inbound("hey", customer="acme-2", name="Other Acme").message.conversation.contact
    response = csrf_post(
        client_for(cast.agent), f"/contacts/{contact_a.pk}/merge/", {"source": other_a.pk}
    )
    assert response.status_code == 302
    log = AuditLog.objects.get(action="contact.merge")
    assert (
        csrf_post(client_for(cast.agent_b), f"/contacts/merges/{log.pk}/undo/").status_code == 404
    )
    log.refresh_from_db()
    assert log.undone_at is None
    assert csrf_post(client_for(cast.agent), f"/contacts/merges/{log.pk}/undo/").status_code == 302
    log.refresh_from_db()
    assert log.undone_at is not None


def test_merge_with_bad_input_gets_a_clear_error(cast, contact_a, client_for):
    client = client_for(cast.agent)
    response = csrf_post(client, f"/contacts/{contact_a.pk}/merge/", {"source": "abc"}, follow=True)
    assert "Enter the number of the contact to merge." in response.content.decode()
    response = csrf_post(
        client, f"/contacts/{contact_a.pk}/merge/", {"source": contact_a.pk}, follow=True
    )
    assert "cannot be merged into itself" in response.content.decode()


def test_contact_posts_need_the_csrf_token(cast, contact_a, client_for):
    other_a = cast.inbound("hey", customer="acme-2").message.conversation.contact
    client = client_for(cast.agent)
    assert (
        client.post(f"/contacts/{contact_a.pk}/merge/", {"source": other_a.pk}).status_code == 403
    )
    assert not AuditLog.objects.exists()


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/contacts/"),
        ("get", "/contacts/{c}/"),
        ("post", "/contacts/{c}/merge/"),
        ("post", "/contacts/merges/1/undo/"),
    ],
)
def test_anonymous_users_are_sent_to_login(cast, contact_a, method, path):
    response = getattr(Client(), method)(path.format(c=contact_a.pk))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_contact_names_are_escaped(cast, client_for):
    contact = cast.inbound(
        "hi", customer="x1", name="<script>alert(1)</script>"
    ).message.conversation.contact
    client = client_for(cast.agent)
    for url in ("/contacts/", f"/contacts/{contact.pk}/"):
        body = client.get(url).content.decode()
        assert "<script>alert(1)" not in body
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
