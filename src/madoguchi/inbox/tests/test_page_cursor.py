"""A page's live stream starts before the data it shows, so a change made while it renders arrives.

The browser tests saw it: a reply sent by the worker between the conversation page reading its
thread and reading the live cursor showed "Sending" until the next event.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone

from madoguchi.inbox import events
from madoguchi.inbox import views as inbox_views
from madoguchi.inbox.models import LiveEvent
from madoguchi.listening import views as listening_views

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _live_after(response) -> int:
    assert response.status_code == 200
    return int(re.search(r'data-live-after="(\d+)"', response.content.decode()).group(1))


def _publishing_during(monkeypatch, module, name: str, cast) -> list[int]:
    """Wrap module.name so that an event is published while the page reads its data."""
    published: list[int] = []
    real = getattr(module.queries, name)

    def reading(*args, **kwargs):
        result = real(*args, **kwargs)
        events.publish(cast.ws.pk, "message.delivery", None, delivery="sent")
        published.append(LiveEvent.objects.order_by("-id").values_list("id", flat=True).first())
        return result

    monkeypatch.setattr(module.queries, name, reading)
    return published


def test_a_reply_sent_while_the_conversation_page_reads_its_thread_is_replayed(cast, client_for, monkeypatch):
    conv = cast.inbound("where is my order?", customer="ann").message.conversation
    client = client_for(cast.agent)
    published = _publishing_during(monkeypatch, inbox_views, "history", cast)
    after = _live_after(client.get(f"/inbox/c/{conv.pk}/"))
    assert published and after < published[0]


def test_a_change_made_while_the_inbox_list_is_read_is_replayed(cast, client_for, monkeypatch):
    cast.inbound("hello", customer="bob")
    client = client_for(cast.agent)
    published = _publishing_during(monkeypatch, inbox_views, "page", cast)
    after = _live_after(client.get("/inbox/?view=all"))
    assert published and after < published[0]


def test_a_change_made_while_the_listening_stream_is_read_is_replayed(cast, client_for, monkeypatch):
    client = client_for(cast.agent)
    published = _publishing_during(monkeypatch, listening_views, "stream_for", cast)
    response = client.get("/listening/")
    assert published, "the stream page did not read its posts"
    assert _live_after(response) < published[0]


def test_the_cursor_stops_below_an_id_still_being_committed(cast):
    for _ in range(5):
        events.publish(cast.ws.pk, "presence", None)
    ids = list(LiveEvent.objects.order_by("id").values_list("id", flat=True))
    assert events.page_cursor() == ids[-1]

    # An id taken by a transaction that has not committed yet looks like a hole in the log.
    LiveEvent.objects.filter(pk=ids[2]).delete()
    assert events.page_cursor() == ids[2] - 1

    # A hole older than any commit takes (a rolled-back insert) no longer holds the cursor back.
    LiveEvent.objects.update(created_at=timezone.now() - dt.timedelta(minutes=1))
    assert events.page_cursor() == ids[-1]


def test_an_empty_log_starts_at_zero(db):
    assert events.page_cursor() == 0
