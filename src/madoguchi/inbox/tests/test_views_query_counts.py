"""Query counts of the inbox screens do not grow with the number of rows shown."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from madoguchi.contacts.models import Identity
from madoguchi.inbox import actions
from madoguchi.inbox.models import Conversation

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_hashing(settings, tmp_path):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MEDIA_ROOT = tmp_path / "media"


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries)


def _add_conversations(cast, start: int, stop: int) -> None:
    """Conversations from different customers, each labelled, assigned and with a team."""
    for i in range(start, stop):
        conv = cast.inbound(
            f"help {i}", customer=f"cust-{i}", name=f"Customer {i}"
        ).message.conversation
        actions.do_set_labels(conv, [f"label-{i % 3}", "common"])
        actions.do_assign(
            conv, assignee=cast.agent if i % 2 else cast.agent2, team=cast.team, actor=cast.manager
        )


@pytest.mark.parametrize(
    "url", ["/inbox/?view=all", "/inbox/?view=all&partial=list", "/inbox/?view=todo"]
)
def test_inbox_list_runs_the_same_queries_for_5_and_30_conversations(cast, client_for, url):
    client = client_for(cast.agent)
    _add_conversations(cast, 0, 5)
    client.get(url)  # warm the session and caches
    with_5 = _queries(client, url)
    _add_conversations(cast, 5, 30)
    with_30 = _queries(client, url)
    assert with_5 == with_30
    assert client.get(url).content.decode().count('class="conv-item') == 30


def test_conversation_page_runs_the_same_queries_for_few_and_many_messages(cast, client_for):
    client = client_for(cast.agent)
    first = cast.inbound("first", customer="chatty").message
    conv = first.conversation
    identity = Identity.objects.get(pk=first.identity_id)
    url = f"/inbox/c/{conv.pk}/"
    client.get(url)  # marks it seen; later visits do not write
    for i in range(3):
        actions.do_reply(conv, author=cast.agent, text=f"reply {i}")
    actions.do_create_conversation(
        channel_account=cast.account, identity=identity, thread_key="other-0"
    )
    few = _queries(client, url)
    for i in range(40):
        cast.inbound(f"more {i}", customer="chatty", reply_to=[first.external_id])
        actions.do_add_note(conv, author=cast.agent2, text=f"note {i}")
    for i in range(1, 15):
        actions.do_create_conversation(
            channel_account=cast.account, identity=identity, thread_key=f"other-{i}"
        )
    many = _queries(client, url)
    assert Conversation.objects.get(pk=conv.pk).message_count > 80
    assert few == many


def test_older_messages_run_the_same_queries_for_few_and_many(cast, client_for):
    client = client_for(cast.agent)
    first = cast.inbound("first", customer="chatty").message
    conv = first.conversation
    for i in range(3):
        actions.do_reply(conv, author=cast.agent, text=f"reply {i}")
    url = f"/inbox/c/{conv.pk}/messages/?before=999999999"
    few = _queries(client, url)
    for i in range(60):
        actions.do_add_note(conv, author=cast.agent2 if i % 2 else cast.agent, text=f"note {i}")
    assert _queries(client, url) == few
