"""The worker's lanes: task queues that never wait for one another.

A worker runs one task at a time per lane. Before lanes, a reply queued behind an embedding pass
(a bulk import of 1,786 articles keeps the model busy for minutes) or behind a streaming session
(held open for up to 4 minutes) waited for it to end. `madoguchi worker` runs every lane in its
own thread by default; `--lanes` lets a deployment give a lane processes of its own.
"""

# Replies (the outbox), inbound webhook deliveries, short polls, outgoing webhooks, mail: work a
# person is waiting for, each task seconds at most.
DEFAULT = "default"
# CPU-heavy work that may run for minutes and can wait: embeddings, urgency refinement.
BULK = "bulk"
# Sessions that hold a platform connection open for minutes: X filtered stream, Mastodon
# streaming, Bluesky Jetstream, IMAP IDLE.
STREAM = "stream"

ALL = (DEFAULT, BULK, STREAM)
