"""Mastodon streaming: the user stream (notifications, edits, deletions) and one hashtag stream per
listening hashtag, for a bounded time, with reconnection and catch-up.

A session (`do_stream`) holds the account's stream lease for `seconds`, then returns, so a worker
is never tied up for good; the clock task starts the next session. Each stream is read by a
thread that only parses server-sent events and queues them; every database write happens in the
calling thread. Whenever a stream (re)connects, what it may have missed is first fetched by
polling from the stored cursor (notifications, or the tag timeline), so a disconnect leaves no
gap; what both paths deliver is stored once (ingest is idempotent). A stream that drops is
reconnected after a backoff that doubles up to a minute and resets once events flow again. A
refused token (401) ends the session and marks the account disconnected.

Documentation: https://docs.joinmastodon.org/methods/streaming/ (see client.py).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from madoguchi.connectors import health
from madoguchi.connectors.mastodon import inbound
from madoguchi.connectors.mastodon.client import (
    MastodonAPIError,
    MastodonClient,
    Status,
    StreamEvent,
)
from madoguchi.connectors.models import ChannelAccount

logger = logging.getLogger(__name__)

SESSION_SECONDS = 240
BACKOFF_START = 1.0
BACKOFF_MAX = 60.0
USER_STREAM = "/api/v1/streaming/user"
HASHTAG_STREAM = "/api/v1/streaming/hashtag"


@dataclass
class _Source:
    name: str  # "user" or "tag:<name>"
    path: str
    params: dict[str, str] | None
    backoff: float
    next_start: float = 0.0
    running: bool = False
    generation: int = 0
    client: MastodonClient | None = None
    thread: threading.Thread | None = None


@dataclass
class _Session:
    account: ChannelAccount
    queue: queue.Queue[tuple[str, int, Any]] = field(default_factory=queue.Queue)
    stop: threading.Event = field(default_factory=threading.Event)


def _read(session: _Session, source: _Source, generation: int, client: MastodonClient) -> None:
    """Thread body: queue every event of one connection, then how it ended."""
    try:
        for event in client.stream(source.path, source.params):
            if session.stop.is_set():
                return
            session.queue.put((source.name, generation, event))
        session.queue.put((source.name, generation, "closed"))
    except MastodonAPIError as exc:
        if not session.stop.is_set():
            session.queue.put((source.name, generation, exc))
    except Exception as exc:  # a closed client raises from inside httpx
        if not session.stop.is_set():
            session.queue.put((source.name, generation, MastodonAPIError(0, f"{type(exc).__name__}: {exc}")))


def _dispatch(account: ChannelAccount, source: str, event: StreamEvent) -> str:
    payload = event.payload
    if event.event == "notification" and source == "user":
        return inbound.handle_notification(account, payload)
    if event.event == "update" and source.startswith("tag:"):
        return inbound.handle_status(account, payload)
    if event.event == "status.update" and isinstance(payload, dict):
        status_id = str(payload.get("id", ""))
        if inbound._known(account, status_id) is None:
            return "ignored"  # an edit of a home-timeline status we never stored
        try:
            status = Status.model_validate(payload)
        except ValueError:
            return "ignored"
        return inbound.handle(account, inbound.edit_event(status, payload), payload)
    if event.event == "delete" and payload:
        thing = inbound.delete_event(account, str(payload))
        return inbound.handle(account, thing, payload)
    return "ignored"  # home-timeline updates, filters_changed, announcements


def _catch_up(account: ChannelAccount, source: _Source, client: MastodonClient, counts: dict[str, Any]) -> str:
    """Poll what the stream may have missed; returns "" or why the session must end."""
    if source.name == "user":
        result = inbound.do_poll_notifications(account, client=client, force=True)
        for name in ("created", "duplicate", "event"):
            counts[name] = counts.get(name, 0) + int(result.get(name, 0))
        return "disconnected" if result.get("error") == "disconnected" else ""
    try:
        inbound._catch_up_term(account, client, "tag", source.name[4:], counts)
    except MastodonAPIError as exc:
        outcome = inbound.failed(account, exc, f"catching up #{source.name[4:]}")
        return "disconnected" if outcome == "disconnected" else ""
    return ""


def do_stream(
    account: ChannelAccount,
    *,
    seconds: float = SESSION_SECONDS,
    stop: Callable[[], bool] | None = None,
    backoff_start: float = BACKOFF_START,
    client_factory: Callable[[ChannelAccount], MastodonClient] = MastodonClient,
) -> dict[str, Any]:
    """Stream the account's notifications and listening hashtags for `seconds` (or until `stop()`)."""
    if not (account.config or {}).get("api_base_url"):
        return {"skipped": "no api_base_url in config"}
    if not inbound.claim(account, "stream", time.time(), force=True, lease=seconds + 60):
        return {"skipped": "another worker is streaming this account, or its rate limit is used up"}
    tags, _ = inbound.listening_terms(account)
    sources = [_Source("user", USER_STREAM, None, backoff_start)] + [
        _Source(f"tag:{tag}", HASHTAG_STREAM, {"tag": tag}, backoff_start) for tag in tags
    ]
    session = _Session(account)
    counts: dict[str, Any] = {"created": 0, "duplicate": 0, "event": 0, "ignored": 0, "connections": 0, "reconnects": 0}
    deadline = time.monotonic() + seconds
    poller = client_factory(account)
    try:
        while time.monotonic() < deadline and not (stop and stop()):
            now = time.monotonic()
            for source in sources:
                if source.running or source.next_start > now:
                    continue
                ended = _catch_up(account, source, poller, counts)
                if ended:
                    counts["error"] = ended
                    return counts
                source.generation += 1
                source.client = client_factory(account)
                source.thread = threading.Thread(target=_read, args=(session, source, source.generation, source.client), daemon=True, name=f"mastodon-{account.pk}-{source.name}")
                source.running = True
                counts["connections"] += 1
                source.thread.start()
            wait = min([0.25] + [max(0.01, s.next_start - now) for s in sources if not s.running])
            try:
                name, generation, item = session.queue.get(timeout=wait)
            except queue.Empty:
                continue
            source = next(s for s in sources if s.name == name)
            if generation != source.generation:
                continue  # left over from a connection we already replaced
            if isinstance(item, StreamEvent):
                outcome = _dispatch(account, name, item)
                counts[outcome] = counts.get(outcome, 0) + 1
                source.backoff = backoff_start
                continue
            # The connection ended: reconnect after the backoff, catching up first.
            source.running = False
            if source.client is not None:
                source.client.close()
            if isinstance(item, MastodonAPIError):
                outcome = inbound.failed(account, item, f"stream {name}")
                if outcome == "disconnected":
                    counts["error"] = outcome
                    return counts
            counts["reconnects"] += 1
            source.next_start = time.monotonic() + source.backoff
            source.backoff = min(source.backoff * 2, BACKOFF_MAX)
        if stop and stop():
            counts["stopped"] = True  # the worker is shutting down; the lease is released below
        health.do_record_channel_ok(account, received=True)
        return counts
    finally:
        session.stop.set()
        for source in sources:
            if source.client is not None:
                source.client.close()
        poller.close()
        inbound.save(account, "stream", lease_until=None, last_session_at=time.time())
