"""Helpers the connectors' tests share (imported by tests only)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from madoguchi.inbox import actions as inbox_actions
from madoguchi.inbox.models import Message, Outbox
from madoguchi.inbox.tasks import deliver_outbox
from madoguchi.lib import lanes


def agent_reply(cast: Any, message: Message, text: str) -> Message:
    """The seeded agent answers `message`'s conversation and the outbox delivers it at once."""
    reply = inbox_actions.do_reply(message.conversation, author=cast.agent, text=text)
    deliver_outbox.call(Outbox.objects.get(message=reply).pk)
    reply.refresh_from_db()
    return reply


@contextlib.contextmanager
def worker_stopping(after: float = 0.0) -> Iterator[None]:
    """The worker is told to stop `after` seconds from now (as SIGTERM does: `lanes.stop`)."""
    timer = threading.Timer(after, lanes.stop)
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        lanes.resume()
