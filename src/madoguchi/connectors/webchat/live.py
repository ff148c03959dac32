"""The visitor's live stream: the agents' replies, typing and read marks of the visitor's own
conversations, as server-sent events.

It rides on the agent UI's hub (inbox/live.py: one tailer per web process over the LiveEvent log,
woken by PostgreSQL NOTIFY) and follows the visitor's thread (the account and the visitor id, the
thread key of the visitor's conversations): the hub hands it only the events of the visitor's own
conversations, never the rest of the workspace's flow. Each is turned into a small event of safe
fields:

- ``message``: a visitor message (echo, for other tabs) or a team reply once delivered;
- ``typing``: an agent is typing on the conversation (the agent UI's presence pings);
- ``read``: an agent is viewing the conversation, so has read the visitor up to ``up_to``.

Nothing of the workspace's other traffic is forwarded, and event payloads are never passed on
as they are. Reconnects send Last-Event-ID; missed replies are re-read from the log.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import sync_to_async
from django.db import close_old_connections

from madoguchi.connectors.models import ChannelAccount
from madoguchi.connectors.webchat import queries
from madoguchi.connectors.webchat.widget import Visitor
from madoguchi.inbox import live as inbox_live
from madoguchi.inbox.models import Direction, LiveEvent, Message

REPLAY_LIMIT = 200


def _sse(event_id: int, kind: str, data: dict[str, Any]) -> str:
    return f"id: {event_id}\nevent: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


class VisitorFilter:
    """Turns workspace events into the visitor's events (runs its reads in a worker thread)."""

    def __init__(self, account: ChannelAccount, visitor: Visitor) -> None:
        self.account = account
        self.visitor = visitor
        self.conversations: set[int] = set()

    def load(self) -> None:
        self.conversations = set(queries.visitor_conversation_ids(self.account, self.visitor))

    def translate(self, event: dict[str, Any]) -> list[str]:
        """The SSE chunks for one LiveEvent row (usually none)."""
        conv = event.get("conversation_id")
        kind, data = event["kind"], event.get("data") or {}
        if event["workspace_id"] != self.account.workspace_id or conv is None:
            return []
        if conv not in self.conversations:
            if kind != "conversation.created" or data.get("channel") != "webchat":
                return []
            self.load()  # a first message opened a web chat conversation: is it this visitor's?
            if conv not in self.conversations:
                return []
        if kind == "message.created" and data.get("direction") == Direction.INBOUND:
            return self._message(event["id"], data.get("message"))
        if kind == "message.delivery" and data.get("delivery") == "sent":
            return self._message(event["id"], data.get("message"))
        if kind == "presence" and data.get("state") == "typing":
            return [_sse(event["id"], "typing", {"name": str(data.get("name") or "")})]
        if kind == "presence" and data.get("state") == "viewing":
            upto = (
                Message.objects.filter(conversation_id=conv, direction=Direction.INBOUND)
                .order_by("-id")
                .values_list("id", flat=True)
                .first()
            )
            return [_sse(event["id"], "read", {"up_to": upto or 0})] if upto else []
        return []

    def _message(self, event_id: int, message_id: Any) -> list[str]:
        if not isinstance(message_id, int):
            return []
        message = queries.visitor_message(self.account, self.visitor, message_id)
        if message is None:
            return []
        return [_sse(event_id, "message", queries.message_payload(message, self.visitor))]

    def load_in_thread(self) -> None:
        close_old_connections()
        try:
            self.load()
        finally:
            close_old_connections()

    def translate_all(self, events: list[dict[str, Any]]) -> list[str]:
        close_old_connections()
        try:
            return [chunk for event in events for chunk in self.translate(event)]
        finally:
            close_old_connections()

    def missed(self, after: int) -> list[str]:
        """What happened since event `after`, for a reconnecting widget."""
        close_old_connections()
        try:
            self.load()
            rows = (
                LiveEvent.objects.filter(id__gt=after, workspace_id=self.account.workspace_id, conversation_id__in=self.conversations)
                .filter(kind__in=["message.created", "message.delivery"])
                .order_by("id")
                .values("id", "workspace_id", "kind", "conversation_id", "data")[:REPLAY_LIMIT]
            )
            return [chunk for row in rows for chunk in self.translate(dict(row))]
        finally:
            close_old_connections()


async def visitor_stream(account: ChannelAccount, visitor: Visitor, last_event_id: str) -> AsyncIterator[str]:
    hub = inbox_live.hub
    thread = (account.pk, visitor.id)  # every visitor message is ingested with thread_id = visitor id
    queue = await hub.subscribe(account.workspace_id, thread=thread)
    flt = VisitorFilter(account, visitor)
    run = sync_to_async
    try:
        await run(flt.load_in_thread, thread_sensitive=False)()
        yield "retry: 2000\n\n"
        if last_event_id.isdigit():
            for chunk in await run(flt.missed, thread_sensitive=False)(int(last_event_id)):
                yield chunk
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), timeout=inbox_live.HEARTBEAT_SECONDS)
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            batch = [event]
            while not queue.empty():
                batch.append(queue.get_nowait())
            for chunk in await run(flt.translate_all, thread_sensitive=False)(batch):
                yield chunk
    finally:
        hub.unsubscribe(account.workspace_id, queue, thread=thread)
