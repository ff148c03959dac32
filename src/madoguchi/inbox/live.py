"""Server-sent events: one tailer per web process fans the LiveEvent log out to browsers.

The tailer reads new LiveEvent rows (one query for all connected browsers of the process) and
puts each into the queues of that workspace's streams. It polls every POLL_SECONDS; the log is
the bus, so events written by a worker process or another web process arrive too. A browser
that reconnects sends Last-Event-ID and gets what it missed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import sync_to_async
from django.db import close_old_connections
from django.http import StreamingHttpResponse

from madoguchi.inbox.models import LiveEvent

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.25
HEARTBEAT_SECONDS = 15.0
QUEUE_SIZE = 1000


def _fetch_after(last_id: int, limit: int = 500) -> list[dict[str, Any]]:
    close_old_connections()
    return list(
        LiveEvent.objects.filter(id__gt=last_id)
        .order_by("id")
        .values("id", "workspace_id", "kind", "conversation_id", "data")[:limit]
    )


def _latest_id() -> int:
    close_old_connections()
    row = LiveEvent.objects.order_by("-id").values_list("id", flat=True).first()
    return row or 0


def format_event(event: dict[str, Any]) -> str:
    payload = {"id": event["id"], "kind": event["kind"], "conversation": event["conversation_id"], **event["data"]}
    return f"id: {event['id']}\nevent: {event['kind']}\ndata: {json.dumps(payload, ensure_ascii=False)}\n\n"


class Hub:
    """Tails the event log and fans events out to subscribed queues, per workspace."""

    def __init__(self) -> None:
        self.subscribers: dict[int, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)
        self.last_id = 0
        self.task: asyncio.Task[None] | None = None

    async def subscribe(self, workspace_id: int) -> asyncio.Queue[dict[str, Any]]:
        if self.task is None or self.task.done():
            self.last_id = await sync_to_async(_latest_id, thread_sensitive=False)()
            self.task = asyncio.create_task(self._run())
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        self.subscribers[workspace_id].add(queue)
        return queue

    def unsubscribe(self, workspace_id: int, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self.subscribers[workspace_id].discard(queue)

    def dispatch(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            self.last_id = max(self.last_id, event["id"])
            for queue in list(self.subscribers.get(event["workspace_id"], ())):
                try:
                    queue.put_nowait(event)
                except asyncio.QueueFull:  # a stuck browser: it will resync with Last-Event-ID
                    pass

    async def _run(self) -> None:
        while any(self.subscribers.values()):
            try:
                events = await sync_to_async(_fetch_after, thread_sensitive=False)(self.last_id)
                self.dispatch(events)
            except Exception:
                logger.exception("live event tailer failed; retrying")
                await asyncio.sleep(2)
            await asyncio.sleep(POLL_SECONDS)


hub = Hub()


async def _stream(workspace_id: int, last_event_id: str) -> AsyncIterator[str]:
    queue = await hub.subscribe(workspace_id)
    try:
        yield "retry: 2000\n\n"
        if last_event_id.isdigit():
            missed = await sync_to_async(_fetch_after, thread_sensitive=False)(int(last_event_id))
            for event in missed:
                if event["workspace_id"] == workspace_id and event["id"] <= hub.last_id:
                    yield format_event(event)
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), timeout=HEARTBEAT_SECONDS)
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            yield format_event(event)
    finally:
        hub.unsubscribe(workspace_id, queue)


def stream_response(workspace_id: int, user_id: int, last_event_id: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(_stream(workspace_id, last_event_id), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response
