"""Personal settings and API tokens: each user sees and revokes only their own."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from madoguchi.accounts import actions
from madoguchi.accounts.models import ApiToken
from madoguchi.conftest import csrf_post

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_settings_list_only_the_own_tokens(cast, client_for):
    mine, _raw = actions.do_create_token(cast.agent, "my-integration")
    theirs, _raw = actions.do_create_token(cast.agent2, "colleague-integration")
    foreign, _raw = actions.do_create_token(cast.agent_b, "beta-integration")
    body = client_for(cast.agent).get("/settings/").content.decode()
    assert "my-integration" in body and mine.prefix in body
    assert "colleague-integration" not in body and "beta-integration" not in body
    assert theirs.prefix not in body and foreign.prefix not in body


def test_creating_a_token_shows_it_once_and_stores_only_its_hash(cast, client_for):
    client = client_for(cast.agent)
    response = csrf_post(client, "/settings/", {"form": "token", "name": "ci"})
    token = ApiToken.objects.get(user=cast.agent)
    raw = response.context["new_token"]
    assert raw in response.content.decode()
    assert token.digest == ApiToken.hash(raw) and raw not in (token.digest, token.prefix)
    assert raw not in client.get("/settings/").content.decode()


@pytest.mark.parametrize("owner", ["agent2", "agent_b", "admin"])
def test_a_token_of_someone_else_cannot_be_revoked(cast, client_for, owner):
    token, _raw = actions.do_create_token(getattr(cast, owner), "theirs")
    response = csrf_post(client_for(cast.agent), f"/settings/tokens/{token.pk}/revoke/")
    assert response.status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_the_own_token_is_revoked(cast, client_for):
    token, _raw = actions.do_create_token(cast.agent, "mine")
    assert (
        csrf_post(client_for(cast.agent), f"/settings/tokens/{token.pk}/revoke/").status_code == 302
    )
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_settings_posts_need_the_csrf_token(cast, client_for):
    token, _raw = actions.do_create_token(cast.agent, "mine")
    client = client_for(cast.agent)
    assert client.post(f"/settings/tokens/{token.pk}/revoke/").status_code == 403
    assert client.post("/settings/", {"form": "token", "name": "x"}).status_code == 403
    assert client.post("/settings/", {"form": "language", "language": "ja"}).status_code == 403
    token.refresh_from_db()
    cast.agent.refresh_from_db()
    assert token.revoked_at is None and cast.agent.language == ""
    assert ApiToken.objects.filter(user=cast.agent).count() == 1


def test_revoke_needs_post(cast, client_for):
    token, _raw = actions.do_create_token(cast.agent, "mine")
    assert client_for(cast.agent).get(f"/settings/tokens/{token.pk}/revoke/").status_code == 405


def test_anonymous_users_are_sent_to_login(cast):
    token, _raw = actions.do_create_token(cast.agent, "mine")
    for method, url in (("get", "/settings/"), ("post", f"/settings/tokens/{token.pk}/revoke/")):
        response = getattr(Client(), method)(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    token.refresh_from_db()
    assert token.revoked_at is None


def test_an_unknown_language_is_not_stored(cast, client_for):
    csrf_post(client_for(cast.agent), "/settings/", {"form": "language", "language": "xx-evil"})
    cast.agent.refresh_from_db()
    assert cast.agent.language in ("", "en", "ja")
