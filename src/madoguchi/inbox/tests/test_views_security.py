"""Every inbox screen keeps workspaces apart and refuses what a role may not do."""

from __future__ import annotations

import asyncio

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import AsyncClient, Client
from django.urls import reverse

from madoguchi.accounts.models import Team
from madoguchi.conftest import csrf_post
from madoguchi.inbox import actions
from madoguchi.inbox.live import Hub
from madoguchi.inbox.models import Attachment, Conversation, Delivery, Label, Message, Status

pytestmark = pytest.mark.django_db

# A 1x1 transparent PNG.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)


@pytest.fixture(autouse=True)
def fast_and_isolated(settings, tmp_path):
    """Cheap password hashing and a throwaway media root for every test here."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def conv_a(cast) -> Conversation:
    """A conversation of workspace A with a failed outbound reply and a labelled, searchable message."""
    conv = cast.inbound("secret-acme-order 12345", customer="acme-cust").message.conversation
    actions.do_set_labels(conv, ["vip"])
    return conv


@pytest.fixture
def failed_reply(cast, conv_a) -> Message:
    msg = actions.do_reply(conv_a, author=cast.agent, text="sorry")
    Message.objects.filter(pk=msg.pk).update(delivery=Delivery.FAILED, delivery_error="boom")
    msg.refresh_from_db()
    return msg


# --- workspace B sees nothing of A -----------------------------------------------------------


@pytest.mark.parametrize("view", ["todo", "all", "unassigned", "pending", "resolved"])
def test_inbox_list_of_b_shows_nothing_of_a(cast, conv_a, client_for, view):
    conv_b = cast.inbound(
        "beta hello", account=cast.account_b, customer="beta-cust"
    ).message.conversation
    client = client_for(cast.agent_b)
    for params in ({"view": view}, {"view": view, "partial": "list"}):
        body = client.get("/inbox/", params).content.decode()
        assert f'data-id="{conv_a.pk}"' not in body
        assert "secret-acme-order" not in body
        assert "vip" not in body  # A's labels are not in B's sidebar either
    assert f'data-id="{conv_b.pk}"' in client.get("/inbox/", {"view": "all"}).content.decode()


def test_search_of_b_finds_nothing_of_a(cast, conv_a, client_for):
    body = (
        client_for(cast.agent_b)
        .get("/inbox/", {"view": "all", "q": "secret-acme-order"})
        .content.decode()
    )
    assert f'data-id="{conv_a.pk}"' not in body
    body = (
        client_for(cast.agent)
        .get("/inbox/", {"view": "all", "q": "secret-acme-order"})
        .content.decode()
    )
    assert f'data-id="{conv_a.pk}"' in body


def test_filters_by_a_brand_or_label_show_b_nothing(cast, conv_a, client_for):
    client = client_for(cast.agent_b)
    for params in (
        {"view": "all", "brand": cast.brand.pk},
        {"view": "all", "label": "vip"},
        {"view": "all", "channel": "internal"},
    ):
        assert f'data-id="{conv_a.pk}"' not in client.get("/inbox/", params).content.decode()


def test_conversation_pages_of_a_are_404_for_b(cast, conv_a, client_for):
    client = client_for(cast.agent_b)
    msg_id = conv_a.messages.first().pk
    assert client.get(f"/inbox/c/{conv_a.pk}/").status_code == 404
    assert client.get(f"/inbox/c/{conv_a.pk}/", {"partial": "conversation"}).status_code == 404
    assert client.get(f"/inbox/c/{conv_a.pk}/messages/", {"before": msg_id + 1}).status_code == 404
    conv_a.refresh_from_db()
    assert conv_a.status == Status.NEW  # B looking did not mark it seen


@pytest.mark.parametrize(
    "path, data",
    [
        ("reply", {"text": "hijack"}),
        ("reply", {"text": "hijack", "kind": "note"}),
        ("status", {"status": "resolved"}),
        ("assign", {"assignee": ""}),
        ("priority", {"priority": "3"}),
        ("labels", {"labels": "owned"}),
        ("presence", {"state": "typing"}),
    ],
)
def test_conversation_actions_on_a_are_404_for_b(cast, conv_a, client_for, path, data):
    before = Conversation.objects.get(pk=conv_a.pk)
    response = csrf_post(client_for(cast.agent_b), f"/inbox/c/{conv_a.pk}/{path}/", data)
    assert response.status_code == 404
    after = Conversation.objects.get(pk=conv_a.pk)
    assert (after.status, after.priority, after.message_count) == (
        before.status,
        before.priority,
        before.message_count,
    )
    assert list(after.labels.values_list("name", flat=True)) == ["vip"]
    assert not Label.objects.filter(name="owned").exists()


def test_b_cannot_assign_a_conversation_of_b_to_a_user_or_team_of_a(cast, client_for):
    conv_b = cast.inbound("beta", account=cast.account_b, customer="b1").message.conversation
    client = client_for(cast.agent_b)
    for data in ({"assignee": cast.agent.pk}, {"assignee": cast.agent_b.pk, "team": cast.team.pk}):
        response = csrf_post(
            client, f"/inbox/c/{conv_b.pk}/assign/", data, HTTP_ACCEPT="application/json"
        )
        assert response.status_code == 400
    conv_b.refresh_from_db()
    assert conv_b.assignee_id is None and conv_b.team_id is None


def test_retry_and_move_of_a_message_of_a_are_404_for_b(cast, failed_reply, client_for):
    conv_b = cast.inbound("beta", account=cast.account_b, customer="b1").message.conversation
    client = client_for(cast.agent_b)
    assert csrf_post(client, f"/inbox/m/{failed_reply.pk}/retry/").status_code == 404
    assert (
        csrf_post(client, f"/inbox/m/{failed_reply.pk}/move/", {"target": conv_b.pk}).status_code
        == 404
    )
    failed_reply.refresh_from_db()
    assert failed_reply.delivery == Delivery.FAILED and failed_reply.conversation_id != conv_b.pk


def test_a_message_cannot_be_moved_into_a_conversation_of_b(cast, conv_a, client_for):
    conv_b = cast.inbound("beta", account=cast.account_b, customer="b1").message.conversation
    msg = conv_a.messages.first()
    assert (
        csrf_post(
            client_for(cast.agent), f"/inbox/m/{msg.pk}/move/", {"target": conv_b.pk}
        ).status_code
        == 404
    )
    assert Message.objects.get(pk=msg.pk).conversation_id == conv_a.pk


def test_bulk_actions_of_b_skip_conversations_of_a(cast, conv_a, client_for):
    client = client_for(cast.agent_b)
    for action in ("resolved", "assign_me", "priority:3"):
        response = csrf_post(client, "/inbox/bulk/", {"ids": [conv_a.pk], "action": action})
        assert response.status_code == 302
    conv_a.refresh_from_db()
    assert (conv_a.status, conv_a.assignee_id, conv_a.priority) == (Status.NEW, None, 1)


def test_retry_works_for_the_own_workspace(cast, failed_reply, client_for):
    response = csrf_post(client_for(cast.agent2), f"/inbox/m/{failed_reply.pk}/retry/")
    assert response.status_code == 302
    failed_reply.refresh_from_db()
    assert failed_reply.delivery == Delivery.QUEUED


# --- roles -----------------------------------------------------------------------------------


def test_agent_cannot_reassign_a_colleagues_conversation(cast, conv_a, client_for):
    actions.do_assign(conv_a, assignee=cast.agent2, team=None, actor=cast.manager)
    client = client_for(cast.agent)
    for assignee in (cast.agent.pk, ""):
        assert (
            csrf_post(client, f"/inbox/c/{conv_a.pk}/assign/", {"assignee": assignee}).status_code
            == 403
        )
    conv_a.refresh_from_db()
    assert conv_a.assignee_id == cast.agent2.pk


def test_agent_cannot_give_an_unassigned_conversation_to_a_colleague(cast, conv_a, client_for):
    response = csrf_post(
        client_for(cast.agent), f"/inbox/c/{conv_a.pk}/assign/", {"assignee": cast.agent2.pk}
    )
    assert response.status_code == 403
    conv_a.refresh_from_db()
    assert conv_a.assignee_id is None


def test_agent_may_take_an_unassigned_conversation_and_give_it_up(cast, conv_a, client_for):
    client = client_for(cast.agent)
    assert (
        csrf_post(client, f"/inbox/c/{conv_a.pk}/assign/", {"assignee": cast.agent.pk}).status_code
        == 302
    )
    conv_a.refresh_from_db()
    assert conv_a.assignee_id == cast.agent.pk
    assert csrf_post(client, f"/inbox/c/{conv_a.pk}/assign/", {"assignee": ""}).status_code == 302
    conv_a.refresh_from_db()
    assert conv_a.assignee_id is None


def test_manager_may_reassign_to_anyone_in_the_workspace(cast, conv_a, client_for):
    actions.do_assign(conv_a, assignee=cast.agent, team=None, actor=cast.agent)
    team = Team.objects.get(pk=cast.team.pk)
    data = {"assignee": cast.agent2.pk, "team": team.pk}
    assert (
        csrf_post(client_for(cast.manager), f"/inbox/c/{conv_a.pk}/assign/", data).status_code
        == 302
    )
    conv_a.refresh_from_db()
    assert (conv_a.assignee_id, conv_a.team_id) == (cast.agent2.pk, team.pk)


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/inbox/"),
        ("get", "/inbox/?partial=list"),
        ("get", "/inbox/c/{conv}/"),
        ("get", "/inbox/c/{conv}/messages/?before=1"),
        ("post", "/inbox/c/{conv}/reply/"),
        ("post", "/inbox/c/{conv}/status/"),
        ("post", "/inbox/c/{conv}/assign/"),
        ("post", "/inbox/c/{conv}/priority/"),
        ("post", "/inbox/c/{conv}/labels/"),
        ("post", "/inbox/c/{conv}/presence/"),
        ("post", "/inbox/m/{msg}/retry/"),
        ("post", "/inbox/m/{msg}/move/"),
        ("post", "/inbox/bulk/"),
        ("get", "/inbox/attachments/1/"),
    ],
)
def test_anonymous_users_are_sent_to_login(cast, conv_a, method, path):
    url = path.format(conv=conv_a.pk, msg=conv_a.messages.first().pk)
    response = getattr(Client(), method)(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_a_user_without_a_workspace_is_refused(cast, conv_a, client_for):
    from madoguchi.accounts.models import User

    stray = User.objects.create_user("stray@example.com", "pw-12345678")
    client = client_for(stray)
    assert client.get("/inbox/").status_code == 403
    assert client.get(f"/inbox/c/{conv_a.pk}/").status_code == 403


# --- CSRF ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["reply", "status", "assign", "priority", "labels", "presence"])
def test_posts_without_the_csrf_token_are_refused(cast, conv_a, client_for, path):
    client = client_for(cast.agent)
    response = client.post(
        f"/inbox/c/{conv_a.pk}/{path}/",
        {"text": "x", "status": "resolved", "priority": "3", "labels": "x"},
    )
    assert response.status_code == 403
    conv_a.refresh_from_db()
    assert conv_a.status == Status.NEW and conv_a.priority == 1 and conv_a.message_count == 1


def test_bulk_without_the_csrf_token_is_refused(cast, conv_a, client_for):
    assert (
        client_for(cast.agent)
        .post("/inbox/bulk/", {"ids": [conv_a.pk], "action": "resolved"})
        .status_code
        == 403
    )
    conv_a.refresh_from_db()
    assert conv_a.status == Status.NEW


# --- live events -----------------------------------------------------------------------------


def test_event_stream_refuses_anonymous_users(db):
    response = asyncio.run(AsyncClient().get("/inbox/events/"))
    assert response.status_code == 401


def test_hub_delivers_events_only_to_streams_of_the_same_workspace():
    hub = Hub()
    queue_a: asyncio.Queue = asyncio.Queue()
    queue_a2: asyncio.Queue = asyncio.Queue()
    queue_b: asyncio.Queue = asyncio.Queue()
    hub.subscribers[1].update({queue_a, queue_a2})
    hub.subscribers[2].add(queue_b)
    hub.dispatch(
        [
            {
                "id": 10,
                "workspace_id": 1,
                "kind": "message.created",
                "conversation_id": 5,
                "data": {},
            },
            {
                "id": 11,
                "workspace_id": 3,
                "kind": "message.created",
                "conversation_id": 6,
                "data": {},
            },
        ]
    )
    assert queue_a.qsize() == queue_a2.qsize() == 1
    assert queue_b.empty()
    assert hub.last_id == 11
    hub.unsubscribe(1, queue_a)
    hub.dispatch(
        [{"id": 12, "workspace_id": 1, "kind": "presence", "conversation_id": 5, "data": {}}]
    )
    assert queue_a.qsize() == 1 and queue_a2.qsize() == 2


# --- attachments -----------------------------------------------------------------------------


def _reply_with(client: Client, conv: Conversation, upload: SimpleUploadedFile, **extra: object):
    return csrf_post(
        client,
        f"/inbox/c/{conv.pk}/reply/",
        {"text": "see attached", "attachments": [upload]},
        **extra,
    )


def test_attachment_uploaded_with_a_reply_is_served_only_to_its_workspace(cast, conv_a, client_for):
    response = _reply_with(
        client_for(cast.agent),
        conv_a,
        SimpleUploadedFile("invoice.pdf", b"%PDF-1.4 acme", "application/pdf"),
    )
    assert response.status_code == 302
    att = Attachment.objects.get(message__conversation=conv_a)
    assert (att.filename, att.size, att.workspace_id) == ("invoice.pdf", 13, cast.ws.pk)

    response = client_for(cast.agent2).get(f"/inbox/attachments/{att.pk}/?download=1")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"%PDF-1.4 acme"
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["Content-Type"] == "application/octet-stream"

    assert client_for(cast.agent_b).get(f"/inbox/attachments/{att.pk}/").status_code == 404


def test_non_image_attachment_is_never_served_inline(cast, conv_a, client_for):
    upload = SimpleUploadedFile("page.html", b"<script>alert(1)</script>", "text/html")
    _reply_with(client_for(cast.agent), conv_a, upload)
    att = Attachment.objects.get(message__conversation=conv_a)
    response = client_for(cast.agent).get(
        f"/inbox/attachments/{att.pk}/"
    )  # no ?download: still a download
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["Content-Type"] == "application/octet-stream"
    assert "sandbox" in response["Content-Security-Policy"]


def test_image_attachment_is_served_inline_in_a_sandbox(cast, conv_a, client_for):
    _reply_with(client_for(cast.agent), conv_a, SimpleUploadedFile("pixel.png", PNG, "image/png"))
    att = Attachment.objects.get(message__conversation=conv_a)
    response = client_for(cast.agent).get(f"/inbox/attachments/{att.pk}/")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["Content-Disposition"].startswith("inline;")
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert response["X-Content-Type-Options"] == "nosniff"
    body = client_for(cast.agent).get(f"/inbox/c/{conv_a.pk}/").content.decode()
    assert f'src="/inbox/attachments/{att.pk}/"' in body


def test_oversized_upload_gets_a_clear_error_not_a_500(cast, conv_a, client_for, settings):
    settings.ATTACHMENT_MAX_BYTES = 1024 * 1024
    big = SimpleUploadedFile("huge.bin", b"x" * (1024 * 1024 + 1), "application/octet-stream")
    client = client_for(cast.agent)
    response = _reply_with(client, conv_a, big, HTTP_ACCEPT="application/json")
    assert response.status_code == 400
    assert "huge.bin is larger than the 1 MB limit" in response.json()["error"]

    big.seek(0)
    response = _reply_with(client, conv_a, big, follow=True)
    assert response.status_code == 200
    assert "huge.bin is larger than the 1 MB limit" in response.content.decode()
    assert not Attachment.objects.exists()
    assert conv_a.messages.count() == 1


def test_empty_reply_gets_a_clear_error(cast, conv_a, client_for):
    response = csrf_post(
        client_for(cast.agent),
        f"/inbox/c/{conv_a.pk}/reply/",
        {"text": "  "},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 400
    assert response.json()["error"]


# --- escaping and bad input ------------------------------------------------------------------


def test_message_text_with_script_is_escaped_in_the_conversation_page(cast, client_for):
    conv = cast.inbound(
        '<script>alert("x")</script><img src=x onerror=alert(1)>', name="<b>Evil</b>"
    ).message.conversation
    csrf_post(
        client_for(cast.agent),
        f"/inbox/c/{conv.pk}/reply/",
        {"text": "<script>steal()</script>", "kind": "note"},
    )
    client = client_for(cast.agent)
    for url in (f"/inbox/c/{conv.pk}/", "/inbox/?view=all"):
        body = client.get(url).content.decode()
        assert "<script>alert" not in body and "<script>steal" not in body
        assert "<img src=x" not in body and "<b>Evil</b>" not in body
    body = client.get(f"/inbox/c/{conv.pk}/").content.decode()
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in body
    assert "&lt;script&gt;steal()&lt;/script&gt;" in body


def test_inbound_html_is_sanitized_before_display(cast, client_for):
    conv = cast.inbound(
        "plain", html='<p onclick="x()">Hi<script>bad()</script></p>'
    ).message.conversation
    body = client_for(cast.agent).get(f"/inbox/c/{conv.pk}/").content.decode()
    assert "<p>Hi</p>" in body
    assert "bad()" not in body and "onclick" not in body


@pytest.mark.parametrize(
    "params",
    [
        {"cursor": "not-a-cursor"},
        {"cursor": "W10"},
        {"brand": "x", "priority": "high"},
        {"view": "nonsense"},
        {"q": "x" * 5000},
    ],
)
def test_bad_list_parameters_are_harmless(cast, conv_a, client_for, params):
    assert client_for(cast.agent).get("/inbox/", params).status_code == 200


def test_bad_action_input_gets_a_clear_error(cast, conv_a, client_for):
    client = client_for(cast.agent)
    url = f"/inbox/c/{conv_a.pk}/"
    json_accept = {"HTTP_ACCEPT": "application/json"}
    assert csrf_post(client, url + "status/", {"status": "bogus"}, **json_accept).status_code == 400
    assert (
        csrf_post(
            client, url + "status/", {"status": "snoozed", "until": "yesterday"}, **json_accept
        ).status_code
        == 400
    )
    assert csrf_post(client, url + "priority/", {"priority": "9"}, **json_accept).status_code == 400
    assert (
        csrf_post(client, url + "assign/", {"assignee": "999999"}, **json_accept).status_code == 400
    )
    assert csrf_post(client, url + "presence/", {"state": "dancing"}).status_code == 400
    assert client.get(url + "messages/", {"before": "abc"}).status_code == 400
    assert (
        csrf_post(client, "/inbox/bulk/", {"ids": [conv_a.pk], "action": "explode"}).status_code
        == 400
    )
    msg = conv_a.messages.first()
    assert csrf_post(client, f"/inbox/m/{msg.pk}/move/", {"target": "abc"}).status_code == 302
    assert csrf_post(client, f"/inbox/m/{msg.pk}/retry/", **json_accept).status_code == 400


@pytest.mark.parametrize(
    "target", ["https://evil.example/phish", "//evil.example/", "javascript:alert(1)"]
)
def test_next_never_redirects_off_site(cast, conv_a, client_for, target):
    client = client_for(cast.agent)
    response = csrf_post(
        client, f"/inbox/c/{conv_a.pk}/priority/", {"priority": "2", "next": target}
    )
    assert response.status_code == 302
    assert response["Location"] == f"/inbox/c/{conv_a.pk}/"
    response = csrf_post(
        client, "/inbox/bulk/", {"ids": [conv_a.pk], "action": "open", "next": target}
    )
    assert response["Location"] == "/inbox/"


def test_next_within_the_site_is_followed(cast, conv_a, client_for):
    data = {"priority": "2", "next": "/inbox/?view=all"}
    response = csrf_post(client_for(cast.agent), f"/inbox/c/{conv_a.pk}/priority/", data)
    assert response["Location"] == "/inbox/?view=all"
