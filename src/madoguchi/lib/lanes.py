"""The worker's lanes: task queues that never wait for one another.

A worker runs one task at a time per lane. Before lanes, a reply queued behind an embedding pass
(a bulk import of 1,786 articles keeps the model busy for minutes) or behind a streaming session
(held open for up to 4 minutes) waited for it to end. `madoguchi worker` runs every lane in its
own thread by default; `--lanes` lets a deployment give a lane processes of its own.
"""

import threading

# Replies (the outbox), inbound webhook deliveries, short polls, outgoing webhooks, mail: work a
# person is waiting for, each task seconds at most.
DEFAULT = "default"
# CPU-heavy work that may run for minutes and can wait: embeddings, urgency refinement.
BULK = "bulk"
# Sessions that hold a platform connection open for minutes: X filtered stream, Mastodon
# streaming, Bluesky Jetstream, IMAP IDLE.
STREAM = "stream"

ALL = (DEFAULT, BULK, STREAM)


# -- stopping ------------------------------------------------------------------------------------
# A worker that is told to stop (SIGTERM on a deploy, Ctrl-C) sets this; streaming sessions look
# at it between reads and end within seconds, releasing their lease and saving their cursor. Cut
# off instead, a session's lease kept the next worker from streaming that account for minutes.
_stopping = threading.Event()


def stop() -> None:
    """Ask every session in this process to end early (the worker is shutting down)."""
    _stopping.set()


def stopping() -> bool:
    return _stopping.is_set()


def pause(seconds: float) -> bool:
    """Sleep up to `seconds`; True (at once) if the worker is stopping."""
    return _stopping.wait(max(0.0, seconds))


def resume() -> None:
    """Clear the stop request (a worker started again in the same process, and tests)."""
    _stopping.clear()
