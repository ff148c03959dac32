"""Live events: written in the writer's transaction, announced after commit.

The LiveEvent table is the bus: SSE streams in any web process tail it (woken by PostgreSQL
NOTIFY, or by a short poll on SQLite), so a worker process's ingest reaches every browser.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import connection, transaction
from django.dispatch import Signal
from django.utils import timezone

from madoguchi.inbox.models import LiveEvent

NOTIFY_CHANNEL = "madoguchi_live"
# Sent inside the writer's transaction (workspace_id, kind, conversation_id, data): webhooks listen.
live_event_published = Signal()


def publish(workspace_id: int, kind: str, conversation_id: int | None = None, **data: Any) -> None:
    """Record a live event; it becomes visible to streams when the current transaction commits."""
    LiveEvent.objects.create(
        workspace_id=workspace_id, kind=kind, conversation_id=conversation_id, data=data
    )
    live_event_published.send(LiveEvent, workspace_id=workspace_id, kind=kind, conversation_id=conversation_id, data=data)
    if connection.vendor == "postgresql":
        transaction.on_commit(_notify)


# page_cursor: how far back an id still being committed is looked for (the SSE tailer's
# live.GAP_SECONDS), and how many of the newest events are looked at for one.
CURSOR_GAP = dt.timedelta(seconds=10)
CURSOR_WINDOW = 50


def page_cursor() -> int:
    """Where a page's live stream starts: the id after which it replays what it missed.

    Read it before the data the page shows. A change committed after that read then arrives as
    an event, where reading it after the data lost a reply's "sent" that landed in between: the
    page showed "Sending" until the next event.

    With several writers (PostgreSQL), ids are taken at insert and become visible at commit, so
    the newest id can stand above one still being committed. The cursor then stops below the
    lowest id missing among the last few seconds' events; replaying an event twice only
    refreshes a view once more.
    """
    newest = list(LiveEvent.objects.order_by("-id").values_list("id", "created_at")[:CURSOR_WINDOW])
    since = timezone.now() - CURSOR_GAP
    recent = [event_id for event_id, at in newest if at >= since]
    if not recent:
        return newest[0][0] if newest else 0
    missing = set(range(recent[-1], recent[0] + 1)).difference(recent)
    return min(missing) - 1 if missing else recent[0]


def _notify() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, '')", [NOTIFY_CHANNEL])
