"""The Django admin: workspace admins enter, see and change only their own workspace."""

from __future__ import annotations

import pytest
from django.test import Client

from madoguchi.accounts import actions
from madoguchi.accounts.models import Brand, Role, Team, User
from madoguchi.conftest import PASSWORD, csrf_post
from madoguchi.connectors.models import ChannelAccount
from madoguchi.inbox import actions as inbox_actions
from madoguchi.inbox.models import Label
from madoguchi.ingest.actions import do_quarantine

pytestmark = pytest.mark.django_db

CHANGELISTS = [
    "accounts/workspace",
    "accounts/user",
    "accounts/team",
    "accounts/brand",
    "accounts/apitoken",
    "connectors/channelaccount",
    "contacts/contact",
    "contacts/identity",
    "inbox/conversation",
    "inbox/message",
    "inbox/label",
    "ingest/quarantine",
]


@pytest.fixture(autouse=True)
def fast_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def world(cast):
    """Rows in both workspaces whose names say which workspace they belong to."""
    admin_b = actions.do_create_user(
        "admin@beta.example", workspace=cast.ws_b, role=Role.ADMIN, password=PASSWORD
    )
    for ws, account, tag in (
        (cast.ws, cast.account, "alpha"),
        (cast.ws_b, cast.account_b, "bravo"),
    ):
        conv = cast.inbound(
            f"{tag}-message", account=account, customer=f"{tag}-handle", name=f"{tag}-contact"
        ).message.conversation
        inbox_actions.do_set_labels(conv, [f"{tag}-label"])
        Team.objects.create(workspace=ws, name=f"{tag}-team")
        Brand.objects.create(workspace=ws, name=f"{tag}-brand")
        do_quarantine(account, f"{tag}-reason", "{}")
    actions.do_create_token(cast.agent, "alpha-token")
    actions.do_create_token(cast.agent_b, "bravo-token")
    ChannelAccount.objects.filter(pk=cast.account_b.pk).update(handle="bravo-handle-acct")
    ChannelAccount.objects.filter(pk=cast.account.pk).update(
        handle="alpha-handle-acct", secrets={"api_key": "sk-alpha-very-secret"}
    )
    return admin_b


@pytest.mark.parametrize("changelist", CHANGELISTS)
def test_admin_of_a_sees_only_rows_of_a(cast, world, client_for, changelist):
    response = client_for(cast.admin).get(f"/admin/{changelist}/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "bravo" not in body and "beta.example" not in body and "Beta" not in body
    result_count = response.context["cl"].result_count
    assert result_count >= 1


@pytest.mark.parametrize("changelist", CHANGELISTS)
def test_admin_of_b_sees_only_rows_of_b(cast, world, client_for, changelist):
    body = client_for(world).get(f"/admin/{changelist}/").content.decode()
    assert "alpha" not in body and "acme.example" not in body and "Acme" not in body


def test_admin_index_lists_the_models_for_a_workspace_admin(cast, world, client_for):
    response = client_for(cast.admin).get("/admin/")
    assert response.status_code == 200
    names = {m["object_name"] for app in response.context["app_list"] for m in app["models"]}
    assert {
        "Conversation",
        "Message",
        "Label",
        "Contact",
        "ChannelAccount",
        "User",
        "Team",
        "Quarantine",
    } <= names


@pytest.mark.parametrize("role", ["manager", "agent", "agent2"])
def test_managers_and_agents_are_kept_out(cast, world, client_for, role):
    client = client_for(getattr(cast, role))
    for url in [
        "/admin/",
        "/admin/inbox/conversation/",
        "/admin/accounts/user/",
        f"/admin/accounts/user/{cast.agent.pk}/change/",
    ]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/admin/login/")


def test_anonymous_users_are_sent_to_the_admin_login(cast):
    response = Client().get("/admin/inbox/conversation/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_a_workspace_admin_can_log_in_to_the_admin_without_is_staff(cast):
    assert not cast.admin.is_staff
    client = Client()
    response = client.post(
        "/admin/login/?next=/admin/", {"username": cast.admin.email, "password": PASSWORD}
    )
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200


def test_an_agent_cannot_log_in_to_the_admin(cast):
    client = Client()
    response = client.post("/admin/login/", {"username": cast.agent.email, "password": PASSWORD})
    assert response.status_code == 200  # the form again, with an error
    assert client.get("/admin/").status_code == 302


def _objects_of_b(cast, world):
    from madoguchi.inbox.models import Conversation, Message
    from madoguchi.ingest.models import Quarantine

    conv_b = Conversation.objects.get(workspace=cast.ws_b)
    return {
        "accounts/workspace": cast.ws_b.pk,
        "accounts/user": cast.agent_b.pk,
        "accounts/team": Team.objects.get(name="bravo-team").pk,
        "accounts/brand": Brand.objects.get(name="bravo-brand").pk,
        "accounts/apitoken": cast.agent_b.api_tokens.get().pk,
        "connectors/channelaccount": cast.account_b.pk,
        "contacts/contact": conv_b.contact_id,
        "inbox/conversation": conv_b.pk,
        "inbox/message": Message.objects.filter(workspace=cast.ws_b).first().pk,
        "inbox/label": Label.objects.get(name="bravo-label").pk,
        "ingest/quarantine": Quarantine.objects.get(workspace=cast.ws_b).pk,
    }


def test_admin_of_a_cannot_open_change_or_delete_rows_of_b(cast, world, client_for):
    client = client_for(cast.admin)
    for changelist, pk in _objects_of_b(cast, world).items():
        for action in ("change", "delete", "history"):
            response = client.get(f"/admin/{changelist}/{pk}/{action}/")
            # Outside the queryset: a redirect to the index (or 403 where deleting is not allowed).
            assert response.status_code in (302, 403, 404), (changelist, action)
            assert "bravo" not in response.content.decode()
        response = csrf_post(client, f"/admin/{changelist}/{pk}/delete/", {"post": "yes"})
        assert response.status_code in (302, 403, 404)
    assert Team.objects.filter(name="bravo-team").exists()
    assert Label.objects.filter(name="bravo-label").exists()
    assert client.get(f"/admin/accounts/user/{cast.agent_b.pk}/password/").status_code == 404


def test_bulk_delete_of_a_skips_rows_of_b(cast, world, client_for):
    bravo = Label.objects.get(name="bravo-label")
    alpha = Label.objects.get(name="alpha-label")
    data = {"action": "delete_selected", "_selected_action": [bravo.pk, alpha.pk], "post": "yes"}
    csrf_post(client_for(cast.admin), "/admin/inbox/label/", data)
    assert Label.objects.filter(pk=bravo.pk).exists()
    assert not Label.objects.filter(pk=alpha.pk).exists()


def test_new_rows_land_in_the_admins_workspace(cast, world, client_for):
    client = client_for(cast.admin)
    response = csrf_post(
        client,
        "/admin/inbox/label/add/",
        {"name": "created-in-admin", "color": "#ff0000", "workspace": cast.ws_b.pk},
    )
    assert response.status_code == 302
    assert Label.objects.get(name="created-in-admin").workspace_id == cast.ws.pk


def test_choices_only_offer_rows_of_the_own_workspace(cast, world, client_for):
    from madoguchi.inbox.models import Conversation

    conv_a = Conversation.objects.get(workspace=cast.ws)
    client = client_for(cast.admin)
    body = client.get(f"/admin/inbox/conversation/{conv_a.pk}/change/").content.decode()
    assert "bravo" not in body and "beta.example" not in body
    assert "alpha-label" in body and "Agent Two" in body
    body = client.get("/admin/accounts/team/add/").content.decode()
    assert "beta.example" not in body and "Agent Two" in body


def test_choices_of_another_workspace_are_rejected(cast, world, client_for):
    from madoguchi.inbox.models import Conversation

    conv_a = Conversation.objects.get(workspace=cast.ws)
    client = client_for(cast.admin)
    data = {
        "subject": "",
        "status": "open",
        "priority": "1",
        "assignee": cast.agent_b.pk,
        "team": "",
        "language": "",
    }
    response = csrf_post(client, f"/admin/inbox/conversation/{conv_a.pk}/change/", data)
    assert response.status_code == 200  # the form again, with an error
    assert response.context["adminform"].form.errors["assignee"]
    conv_a.refresh_from_db()
    assert conv_a.assignee_id is None
    response = csrf_post(
        client,
        "/admin/accounts/team/add/",
        {"name": "mixed", "members": [cast.agent.pk, cast.agent_b.pk]},
    )
    assert response.status_code == 200
    assert not Team.objects.filter(name="mixed").exists()


def test_workspace_admin_cannot_grant_superuser_or_move_users(cast, world, client_for):
    client = client_for(cast.admin)
    data = {
        "email": cast.agent.email,
        "name": "Agent",
        "role": "agent",
        "language": "",
        "is_active": "on",
        "is_superuser": "on",
        "is_staff": "on",
        "workspace": cast.ws_b.pk,
    }
    response = csrf_post(client, f"/admin/accounts/user/{cast.agent.pk}/change/", data)
    assert response.status_code == 302
    agent = User.objects.get(pk=cast.agent.pk)
    assert not agent.is_superuser and not agent.is_staff and agent.workspace_id == cast.ws.pk
    body = client.get(f"/admin/accounts/user/{cast.agent.pk}/change/").content.decode()
    assert 'name="is_superuser"' not in body and 'name="user_permissions"' not in body


def test_workspace_admin_adds_a_user_to_the_own_workspace(cast, world, client_for):
    data = {
        "email": "new@acme.example",
        "name": "New",
        "role": "agent",
        "password1": "a-long-pass-phrase-1",
        "password2": "a-long-pass-phrase-1",
    }
    response = csrf_post(client_for(cast.admin), "/admin/accounts/user/add/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    new = User.objects.get(email="new@acme.example")
    assert new.workspace_id == cast.ws.pk and new.check_password("a-long-pass-phrase-1")
    assert not new.is_superuser


def test_workspaces_and_tokens_and_messages_are_read_only(cast, world, client_for):
    client = client_for(cast.admin)
    response = csrf_post(
        client,
        f"/admin/accounts/workspace/{cast.ws.pk}/change/",
        {"name": "Renamed", "slug": "renamed"},
    )
    assert response.status_code == 403
    cast.ws.refresh_from_db()
    assert cast.ws.name == "Acme"
    assert client.get(f"/admin/accounts/workspace/{cast.ws.pk}/change/").status_code == 200
    assert client.get("/admin/accounts/workspace/add/").status_code == 403
    assert client.get("/admin/accounts/apitoken/add/").status_code == 403
    assert client.get("/admin/inbox/message/add/").status_code == 403
    assert client.get("/admin/ingest/quarantine/add/").status_code == 403


def test_channel_account_secrets_are_masked_and_can_be_replaced(cast, world, client_for):
    client = client_for(cast.admin)
    url = f"/admin/connectors/channelaccount/{cast.account.pk}/change/"
    body = client.get(url).content.decode()
    assert "sk-alpha-very-secret" not in body
    assert "api_key: ••••••••" in body
    data = {
        "brand": cast.brand.pk,
        "kind": "internal",
        "name": "Acme internal",
        "handle": "h",
        "config": "{}",
        "is_active": "on",
        "replace_secrets": "",
    }
    assert csrf_post(client, url, data).status_code == 302
    cast.account.refresh_from_db()
    assert cast.account.secrets == {"api_key": "sk-alpha-very-secret"}  # empty keeps them
    data["replace_secrets"] = '{"api_key": "sk-new"}'
    assert csrf_post(client, url, data).status_code == 302
    cast.account.refresh_from_db()
    assert cast.account.secrets == {"api_key": "sk-new"}
    assert "sk-new" not in client.get(url).content.decode()
    assert "sk-new" not in client.get("/admin/connectors/channelaccount/").content.decode()


def test_superuser_sees_every_workspace(cast, world):
    root = User.objects.create_superuser("root@example.com", PASSWORD)
    client = Client()
    client.force_login(root)
    body = client.get("/admin/inbox/label/").content.decode()
    assert "alpha-label" in body and "bravo-label" in body


@pytest.mark.parametrize(
    "changelist",
    ["inbox/conversation", "inbox/message", "connectors/channelaccount", "ingest/quarantine"],
)
def test_admin_changelists_run_the_same_queries_for_few_and_many_rows(cast, client_for, changelist):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = client_for(cast.admin)

    def add(start: int, stop: int) -> None:
        for i in range(start, stop):
            cast.inbound(f"msg {i}", customer=f"c{i}")
            do_quarantine(cast.account, f"reason {i}", "{}")

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(f"/admin/{changelist}/").status_code == 200
        return len(ctx.captured_queries)

    add(0, 2)
    few = count()
    add(2, 12)
    assert count() == few
