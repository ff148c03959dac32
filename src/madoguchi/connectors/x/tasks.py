"""Background work of the X connector: polling mentions (and DMs) of every connected account,
and keyword listening (rule sync, the filtered stream in bounded runs, recent-search polling)."""

from __future__ import annotations

import logging

from django_tasks import task

from madoguchi.connectors.models import ChannelAccount
from madoguchi.connectors.x import inbound, rules, stream
from madoguchi.lib import lanes

logger = logging.getLogger(__name__)


@task()
def poll_mentions() -> dict[str, int]:
    """Poll each active X account's timelines that are due (run by the worker clock; safe from several workers)."""
    polled = 0
    for account in ChannelAccount.objects.filter(kind="x", is_active=True).order_by("pk"):
        config = account.config or {}
        if config.get("simulated") or not config.get("user_id"):
            continue
        polls = [inbound.do_poll_mentions] + ([inbound.do_poll_dms] if config.get("poll_dms") else [])
        for poll in polls:
            try:
                result = poll(account)
            except Exception:
                logger.exception("polling X account %s failed", account.pk)
                continue
            polled += "skipped" not in result
    return {"polled": polled}


@task()
def listen() -> dict[str, int]:
    """Clock task for keyword listening: sync each listening account's rules when they changed,
    poll recent search for accounts without the stream, queue a stream run where none is active."""
    counts = {"synced": 0, "searched": 0, "streams_queued": 0}
    for account in ChannelAccount.objects.filter(kind="x", is_active=True).order_by("pk"):
        config = account.config or {}
        mode = rules.listening_mode(account)
        if not mode or config.get("simulated") or not config.get("user_id"):
            continue
        try:
            if rules.sync_due(account):
                counts["synced"] += "skipped" not in rules.do_sync_rules(account)
            if (account.config or {}).get("health", {}).get("state") == "disconnected":
                continue  # a person must reconnect it first
            if mode == "search":
                seconds = float(config.get("search_poll_seconds") or 120)
                for query in rules.search_queries(account):
                    counts["searched"] += "skipped" not in inbound.do_poll_search(account, query, poll_seconds=seconds)
            elif stream.ready_to_run(account):
                stream.mark_queued(account)
                run_stream.enqueue(account.pk)
                counts["streams_queued"] += 1
        except Exception:
            logger.exception("X listening for account %s failed", account.pk)
    return counts


@task(queue_name=lanes.STREAM)
def run_stream(account_id: int) -> dict[str, object]:
    """Hold one account's filtered stream for a bounded time (then the clock queues the next run)."""
    account = ChannelAccount.objects.filter(pk=account_id, kind="x", is_active=True).first()
    if account is None or rules.listening_mode(account) != "stream":
        return {"skipped": "no streaming X account"}
    return stream.do_run_stream(account)
