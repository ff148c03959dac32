"""Background work of the Mastodon connector.

The worker's clock runs `poll_accounts` every few seconds. For each active Mastodon account it
polls notifications from the cursor every `config["poll_seconds"]` (60 s by default: a mention
arrives within a minute, and 300 calls per 5 minutes leave plenty for replies), plus the
listening hashtags' timelines and keyword searches every `config["search_poll_seconds"]`.

Streaming is opt-in (`config["streaming"] = true`), as IMAP IDLE is for mail: a streaming session
holds the worker's stream lane (`lib/lanes.py`) for `config["stream_seconds"]` (240 s by default),
so several streaming accounts take turns there. With it on, the clock queues one bounded session
at a time (`stream_account`),
which catches up from the cursors, then streams notifications and hashtags until it ends; keyword
searches are still polled, since Mastodon streams hashtags only.
"""

from __future__ import annotations

import logging
import time

from django_tasks import task

from madoguchi.connectors.mastodon import inbound, stream
from madoguchi.connectors.models import ChannelAccount, ChannelKind
from madoguchi.lib import lanes

logger = logging.getLogger(__name__)


def _streaming_due(account: ChannelAccount, now: float) -> bool:
    entry = (account.config or {}).get("stream") or {}
    return float(entry.get("lease_until", 0)) <= now and float(entry.get("queued_until", 0)) <= now


@task()
def poll_accounts() -> dict[str, int]:
    """Clock task: poll (or queue a streaming session for) each active Mastodon account."""
    polled = queued = 0
    now = time.time()
    for account in ChannelAccount.objects.filter(kind=ChannelKind.MASTODON, is_active=True).order_by("pk"):
        config = account.config or {}
        if config.get("simulated") or not config.get("api_base_url"):
            continue
        # A refused token is retried by the (spaced) poll only, until a person fixes it.
        disconnected = (config.get("health") or {}).get("state") == "disconnected"
        streaming = bool(config.get("streaming", False)) and not disconnected
        try:
            if streaming:
                if _streaming_due(account, now):
                    stream_account.enqueue(account.pk)
                    inbound.save(account, "stream", queued_until=now + 60)
                    queued += 1
            else:
                polled += "skipped" not in inbound.do_poll_notifications(account)
            # Hashtags come with the streaming session; keywords are only ever searched.
            polled += "skipped" not in inbound.do_poll_listening(account, tags=not streaming)
        except Exception:  # the next tick tries again
            logger.exception("Mastodon account %s: periodic work failed", account.pk)
    return {"polled": polled, "streams_queued": queued}


@task(queue_name=lanes.STREAM)
def stream_account(account_id: int) -> dict[str, object]:
    """One bounded streaming session (notifications and listening hashtags) of one account."""
    account = ChannelAccount.objects.filter(pk=account_id, kind=ChannelKind.MASTODON, is_active=True).first()
    if account is None:
        return {"skipped": "no such active Mastodon account"}
    seconds = min(float((account.config or {}).get("stream_seconds") or stream.SESSION_SECONDS), 600.0)
    try:
        return stream.do_stream(account, seconds=seconds, stop=lanes.stopping)
    finally:
        inbound.save(account, "stream", queued_until=None)
