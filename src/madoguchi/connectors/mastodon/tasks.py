"""Background work of the Mastodon connector.

The worker's clock runs `poll_accounts` every few seconds. For each active Mastodon account it
either queues a bounded streaming session (`config["streaming"]`, the default: the session polls
from the cursors first, then streams for `config["stream_seconds"]` and returns) when none is
running, or polls notifications when streaming is off; keyword searches are polled on their own,
slower schedule (`config["search_poll_seconds"]`) in both cases, since Mastodon streams hashtags only.
"""

from __future__ import annotations

import logging
import time

from django_tasks import task

from madoguchi.connectors.mastodon import inbound, stream
from madoguchi.connectors.models import ChannelAccount, ChannelKind

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
        streaming = bool(config.get("streaming", True)) and not disconnected
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


@task()
def stream_account(account_id: int) -> dict[str, object]:
    """One bounded streaming session (notifications and listening hashtags) of one account."""
    account = ChannelAccount.objects.filter(pk=account_id, kind=ChannelKind.MASTODON, is_active=True).first()
    if account is None:
        return {"skipped": "no such active Mastodon account"}
    seconds = min(float((account.config or {}).get("stream_seconds") or stream.SESSION_SECONDS), 600.0)
    try:
        return stream.do_stream(account, seconds=seconds)
    finally:
        inbound.save(account, "stream", queued_until=None)
