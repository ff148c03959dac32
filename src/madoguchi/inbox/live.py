"""Server-sent events: one tailer per web process fans the LiveEvent log out to browsers.

The tailer reads new LiveEvent rows (one query for all connected browsers of the process) and
puts each into the queues of that workspace's streams. The log is the bus, so events written by a
worker process or another web process arrive too. On PostgreSQL the tailer sleeps on
LISTEN madoguchi_live (events.publish NOTIFYs after commit) and still reads the log every
PG_POLL_SECONDS as a safety net; elsewhere, or if LISTEN fails, it polls every POLL_SECONDS.
A browser that reconnects sends Last-Event-ID and gets what it missed.

Agents' streams get every event of their workspace. A stream may instead follow one thread (a
channel account's thread key: a web chat visitor's id): it then gets only the events of that
thread's conversations, routed by the hub in one dictionary lookup, so a thousand visitors on a
busy workspace do not each look at every event. The tailer learns each event's thread with one
extra query per batch, and only while such a stream is connected.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import psycopg
from asgiref.sync import sync_to_async
from django.db import close_old_connections, connection
from django.db.models import Q
from django.http import StreamingHttpResponse

from madoguchi.inbox.events import NOTIFY_CHANNEL
from madoguchi.inbox.models import Conversation, LiveEvent

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.25
PG_POLL_SECONDS = 2.0  # on PostgreSQL, a NOTIFY wakes the tailer; this only bounds a lost one
FETCH_LIMIT = 500
# Ids are taken at insert but become visible at commit, so with several writers (PostgreSQL) id 10
# can appear after id 11. Skipped ids are looked for again this long (rolled-back ones never come).
GAP_SECONDS = 10.0
MAX_GAPS = 1000
HEARTBEAT_SECONDS = 15.0
QUEUE_SIZE = 1000


# These run in worker threads, which no request cycle cleans up: close the thread's connection
# after use too, so no idle connection is left behind (PostgreSQL counts them).
def _fetch_after(
    last_id: int, limit: int = FETCH_LIMIT, gaps: Any = (), threads: bool = False
) -> list[dict[str, Any]]:
    """Events after `last_id` (and the skipped ids `gaps`); with `threads`, each carries the
    (channel account id, thread key) of its conversation as "thread", or None."""
    close_old_connections()
    where = Q(id__gt=last_id) | Q(id__in=list(gaps)) if gaps else Q(id__gt=last_id)
    try:
        rows: list[dict[str, Any]] = [
            dict(row)
            for row in LiveEvent.objects.filter(where)
            .order_by("id")
            .values("id", "workspace_id", "kind", "conversation_id", "data")[:limit]
        ]
        if threads and rows:
            ids = {row["conversation_id"] for row in rows if row["conversation_id"] is not None}
            of = {
                pk: (account_id, key)
                for pk, account_id, key in Conversation.objects.filter(pk__in=ids)
                .exclude(thread_key="")
                .values_list("id", "channel_account_id", "thread_key")
            }
            for row in rows:
                row["thread"] = of.get(row["conversation_id"])
        return rows
    finally:
        close_old_connections()


def _latest_id() -> int:
    close_old_connections()
    try:
        row = LiveEvent.objects.order_by("-id").values_list("id", flat=True).first()
    finally:
        close_old_connections()
    return row or 0


def format_event(event: dict[str, Any]) -> str:
    payload = {"id": event["id"], "kind": event["kind"], "conversation": event["conversation_id"], **event["data"]}
    return f"id: {event['id']}\nevent: {event['kind']}\ndata: {json.dumps(payload, ensure_ascii=False)}\n\n"


class Hub:
    """Tails the event log and fans events out to subscribed queues, per workspace or per thread."""

    def __init__(self) -> None:
        self.subscribers: dict[int, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)
        # (workspace id, channel account id, thread key) -> queues of streams that follow one thread
        self.threads: dict[tuple[int, int, str], set[asyncio.Queue[dict[str, Any]]]] = {}
        self.last_id = 0
        self.gaps: dict[int, float] = {}  # skipped id -> when first missed
        self.task: asyncio.Task[None] | None = None

    async def subscribe(
        self, workspace_id: int, thread: tuple[int, str] | None = None
    ) -> asyncio.Queue[dict[str, Any]]:
        """A queue of every event of the workspace or, given `thread` (channel account id, thread
        key), of only the events of that thread's conversations."""
        if self.task is None or self.task.done():
            self.last_id = await sync_to_async(_latest_id, thread_sensitive=False)()
            self.task = asyncio.create_task(self._run())
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        if thread is None:
            self.subscribers[workspace_id].add(queue)
        else:
            self.threads.setdefault((workspace_id, *thread), set()).add(queue)
        return queue

    def unsubscribe(
        self, workspace_id: int, queue: asyncio.Queue[dict[str, Any]], thread: tuple[int, str] | None = None
    ) -> None:
        if thread is None:
            self.subscribers[workspace_id].discard(queue)
            return
        key = (workspace_id, *thread)
        queues = self.threads.get(key, set())
        queues.discard(queue)
        if not queues:  # visitors come and go: keep no empty entry behind
            self.threads.pop(key, None)

    def dispatch(self, events: list[dict[str, Any]]) -> None:
        now = time.monotonic()
        for event in events:
            if self.last_id and event["id"] > self.last_id + 1:
                for missing in range(max(self.last_id + 1, event["id"] - MAX_GAPS), event["id"]):
                    self.gaps[missing] = now
            self.gaps.pop(event["id"], None)
            self.last_id = max(self.last_id, event["id"])
            queues = list(self.subscribers.get(event["workspace_id"], ()))
            if event.get("thread"):
                queues += self.threads.get((event["workspace_id"], *event["thread"]), ())
            for queue in queues:
                try:
                    queue.put_nowait(event)
                except asyncio.QueueFull:  # a stuck browser: it will resync with Last-Event-ID
                    pass

    async def _run(self) -> None:
        listener = await _listen()
        try:
            while any(self.subscribers.values()) or self.threads:
                events: list[dict[str, Any]] = []
                now = time.monotonic()
                self.gaps = {i: t for i, t in self.gaps.items() if now - t < GAP_SECONDS}
                try:
                    fetch = sync_to_async(_fetch_after, thread_sensitive=False)
                    threads = bool(self.threads)
                    events = await fetch(self.last_id, gaps=self.gaps, threads=threads)
                    if events and self.threads and not threads:  # the first visitor came during the read
                        events = await fetch(self.last_id, gaps=self.gaps, threads=True)
                    self.dispatch(events)
                except Exception:
                    logger.exception("live event tailer failed; retrying")
                    await asyncio.sleep(2)
                if len(events) < FETCH_LIMIT:  # else more are waiting: read on at once
                    listener = await _wait(listener)
        finally:
            if listener is not None:
                await listener.close()


async def _listen() -> psycopg.AsyncConnection | None:
    """A connection of its own LISTENing on the live channel, or None (SQLite, or it failed)."""
    if connection.vendor != "postgresql":
        return None
    db = connection.settings_dict
    try:
        conn = await psycopg.AsyncConnection.connect(
            dbname=db["NAME"],
            user=db.get("USER") or None,
            password=db.get("PASSWORD") or None,
            host=db.get("HOST") or None,
            port=db.get("PORT") or None,
            autocommit=True,
        )
        await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
        return conn
    except Exception:
        logger.exception("LISTEN %s failed; polling the live event log instead", NOTIFY_CHANNEL)
        return None


async def _wait(listener: psycopg.AsyncConnection | None) -> psycopg.AsyncConnection | None:
    """Until a NOTIFY (or PG_POLL_SECONDS) on PostgreSQL, else POLL_SECONDS; the listener to use next."""
    if listener is None:
        await asyncio.sleep(POLL_SECONDS)
        return None
    try:
        # Notifications that arrived while we were reading the log wait in the socket: none is lost.
        async for _ in listener.notifies(timeout=PG_POLL_SECONDS, stop_after=1):
            pass
        return listener
    except psycopg.Error:
        logger.exception("LISTEN connection lost; reconnecting")
        await listener.close()
        await asyncio.sleep(POLL_SECONDS)
        return await _listen()


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
