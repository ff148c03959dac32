"""Replies that no worker sends are never silent: a banner on every page says so."""

import datetime as dt

import pytest
from django.utils import timezone

from madoguchi.inbox import actions, queries
from madoguchi.inbox.models import Outbox, OutboxStatus

pytestmark = pytest.mark.django_db


def reply_due(cast, minutes_ago: float, **fields) -> Outbox:
    conv = cast.inbound("届きません", customer=f"c{Outbox.objects.count()}").message.conversation
    msg = actions.do_reply(conv, author=cast.agent, text="確認します")
    Outbox.objects.filter(message=msg).update(next_attempt_at=timezone.now() - dt.timedelta(minutes=minutes_ago), **fields)
    return Outbox.objects.get(message=msg)


def banner(client) -> str:
    html = client.get("/inbox/").content.decode()
    start = html.find("outbox-stalled")
    return html[start : html.find("</div>", start)] if start >= 0 else ""


def test_replies_due_for_minutes_without_a_worker_show_a_banner(cast, client_for):
    reply_due(cast, 10)
    reply_due(cast, 5)
    text = banner(client_for(cast.agent))
    assert "2 replies have been waiting to be sent since" in text
    assert "<code>madoguchi worker</code>" in text


def test_the_banner_speaks_japanese(cast, client_for):
    reply_due(cast, 10)
    client = client_for(cast.agent)
    html = client.get("/inbox/", HTTP_ACCEPT_LANGUAGE="ja").content.decode()
    assert "件の返信が送信されずに待っています" in html


def test_fresh_backing_off_sent_and_held_replies_are_not_stalled(cast, client_for):
    reply_due(cast, 0.5)  # just queued: the worker has not had its chance
    reply_due(cast, -5)  # waiting out a retry back-off
    reply_due(cast, 30, status=OutboxStatus.SENT)
    reply_due(cast, 30, status=OutboxStatus.FAILED)
    reply_due(cast, 30, status=OutboxStatus.SENDING, locked_until=timezone.now() + dt.timedelta(minutes=2))
    assert queries.stalled_outbox(cast.ws.pk) is None
    assert banner(client_for(cast.agent)) == ""


def test_a_send_whose_worker_died_counts_once_its_lock_expires(cast):
    reply_due(cast, 30, status=OutboxStatus.SENDING, locked_until=timezone.now() - dt.timedelta(minutes=1))
    stalled = queries.stalled_outbox(cast.ws.pk)
    assert stalled is not None and stalled.count == 1


def test_another_workspace_never_sees_the_banner(cast, client_for):
    reply_due(cast, 10)
    assert banner(client_for(cast.agent_b)) == ""
    assert queries.stalled_outbox(cast.ws_b.pk) is None
