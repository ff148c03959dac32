"""Users and teams through the API: admins only, always in the admin's own workspace."""

import pytest

from madoguchi.accounts.models import Team, User
from madoguchi.accounts.tests.api_client import api_fixture  # noqa: F401

pytestmark = pytest.mark.django_db


def test_agents_and_managers_cannot_list_or_create_users(cast, api):
    for user in (cast.agent, cast.manager):
        assert api(user, "get", "/api/v1/users").status_code == 403
        assert api(user, "post", "/api/v1/users", {"email": "new@acme.example", "role": "admin"}).status_code == 403
        assert api(user, "post", "/api/v1/teams", {"name": "Ours"}).status_code == 403
    assert not User.objects.filter(email="new@acme.example").exists()


def test_admin_creates_a_user_in_their_own_workspace(cast, api):
    response = api(cast.admin, "post", "/api/v1/users", {"email": "Kenji@Acme.example", "name": "Kenji", "role": "manager", "password": "a long enough passphrase"})
    assert response.status_code == 201
    assert response.json()["email"] == "kenji@acme.example" and response.json()["role"] == "manager"
    user = User.objects.get(email="kenji@acme.example")
    assert user.workspace == cast.ws and user.check_password("a long enough passphrase")
    assert api(cast.admin, "post", "/api/v1/users", {"email": "kenji@acme.example"}).status_code == 409


@pytest.mark.parametrize(
    "body",
    [{"email": "not-an-email"}, {"email": "x@acme.example", "role": "owner"}, {"email": "x@acme.example", "password": "short"}],
)
def test_invalid_users_are_refused_with_a_clear_error(cast, api, body):
    response = api(cast.admin, "post", "/api/v1/users", body)
    assert response.status_code == 422 and response.json()["detail"]


def test_users_and_teams_lists_show_only_our_workspace(cast, api):
    emails = {u["email"] for u in api(cast.admin, "get", "/api/v1/users").json()}
    assert "admin@acme.example" in emails and "agent@beta.example" not in emails
    created = api(cast.admin, "post", "/api/v1/teams", {"name": "Billing", "members": [cast.agent.pk]})
    assert created.status_code == 201 and created.json()["members"] == [cast.agent.pk]
    assert api(cast.admin, "post", "/api/v1/teams", {"name": "Billing"}).status_code == 409
    assert api(cast.admin, "post", "/api/v1/teams", {"name": "Mixed", "members": [cast.agent_b.pk]}).status_code == 422
    assert {t["name"] for t in api(cast.admin, "get", "/api/v1/teams").json()} == {"Billing", "Tier 1"}
    assert not Team.objects.filter(name="Mixed").exists()
