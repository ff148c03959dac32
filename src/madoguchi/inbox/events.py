"""Live events: written in the writer's transaction, announced after commit.

The LiveEvent table is the bus: SSE streams in any web process tail it (woken by PostgreSQL
NOTIFY, or by a short poll on SQLite), so a worker process's ingest reaches every browser.
"""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction
from django.dispatch import Signal

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


def _notify() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, '')", [NOTIFY_CHANNEL])
