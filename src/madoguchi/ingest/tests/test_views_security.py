"""The quarantine is for admins only, and only for their own workspace."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from madoguchi.accounts.actions import do_create_user
from madoguchi.accounts.models import Role
from madoguchi.conftest import csrf_post
from madoguchi.ingest.actions import do_ingest_payload
from madoguchi.ingest.models import Quarantine

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def quarantined_a(cast) -> Quarantine:
    result = do_ingest_payload(cast.account, b'{"acme-secret-payload": true')
    assert result.quarantine is not None
    return result.quarantine


@pytest.fixture
def admin_b(cast):
    return do_create_user(
        "admin@beta.example", workspace=cast.ws_b, role=Role.ADMIN, password="pw-12345678"
    )


def test_admin_sees_and_resolves_the_quarantine_of_the_own_workspace(
    cast, quarantined_a, client_for
):
    client = client_for(cast.admin)
    body = client.get("/ingest/quarantine/").content.decode()
    assert "acme-secret-payload" in body and "not valid JSON" in body
    assert csrf_post(client, f"/ingest/quarantine/{quarantined_a.pk}/resolve/").status_code == 302
    quarantined_a.refresh_from_db()
    assert quarantined_a.resolved_at is not None
    assert "acme-secret-payload" not in client.get("/ingest/quarantine/").content.decode()


@pytest.mark.parametrize("role", ["agent", "agent2", "manager"])
def test_agents_and_managers_are_refused_the_quarantine(cast, quarantined_a, client_for, role):
    client = client_for(getattr(cast, role))
    assert client.get("/ingest/quarantine/").status_code == 403
    assert csrf_post(client, f"/ingest/quarantine/{quarantined_a.pk}/resolve/").status_code == 403
    quarantined_a.refresh_from_db()
    assert quarantined_a.resolved_at is None


def test_admin_of_b_sees_nothing_of_a_and_cannot_resolve_it(
    cast, quarantined_a, admin_b, client_for
):
    client = client_for(admin_b)
    response = client.get("/ingest/quarantine/")
    assert response.status_code == 200
    assert "acme-secret-payload" not in response.content.decode()
    assert csrf_post(client, f"/ingest/quarantine/{quarantined_a.pk}/resolve/").status_code == 404
    quarantined_a.refresh_from_db()
    assert quarantined_a.resolved_at is None


def test_resolve_needs_post_and_the_csrf_token(cast, quarantined_a, client_for):
    client = client_for(cast.admin)
    assert client.get(f"/ingest/quarantine/{quarantined_a.pk}/resolve/").status_code == 405
    assert client.post(f"/ingest/quarantine/{quarantined_a.pk}/resolve/").status_code == 403
    quarantined_a.refresh_from_db()
    assert quarantined_a.resolved_at is None


def test_anonymous_users_are_sent_to_login(cast, quarantined_a):
    for method, url in (
        ("get", "/ingest/quarantine/"),
        ("post", f"/ingest/quarantine/{quarantined_a.pk}/resolve/"),
    ):
        response = getattr(Client(), method)(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_quarantined_payload_is_escaped(cast, client_for):
    do_ingest_payload(cast.account, b"<script>alert(1)</script>")
    body = client_for(cast.admin).get("/ingest/quarantine/").content.decode()
    assert "<script>alert(1)" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
