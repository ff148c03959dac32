"""Background work of the Bluesky connector.

`poll` runs on the worker clock: it polls the notifications (and, with `config["poll_dms"]`, the
chat log) of each due account, and queues a
Jetstream listening run for each account that listens (`config["listen_jetstream"]` on; a run
without listening rules in the workspace stops at once) when no run holds its lease. A run reads the firehose for `run_seconds`
(default 50) and queues the next one itself in the worker's stream lane (`lib/lanes.py`), while
the default lane keeps delivering the outbox; if a run dies, its lease lapses and the clock
queues another.
"""

from __future__ import annotations

import logging
import time

from django_tasks import task

from madoguchi.connectors import health
from madoguchi.connectors.bluesky import inbound
from madoguchi.connectors.models import ChannelAccount
from madoguchi.lib import lanes

logger = logging.getLogger(__name__)

DEFAULT_RUN_SECONDS = 50.0
REQUEUE_GRACE = 120.0  # a queued run not started within this long is queued again


def _listens(account: ChannelAccount) -> bool:
    config = account.config or {}
    return bool(config.get("listen_jetstream")) and not config.get("simulated")


def _queue_run(account: ChannelAccount) -> bool:
    """Queue a Jetstream run unless one is running or was queued a moment ago."""
    now = time.time()
    state = (account.config or {}).get("jetstream") or {}
    if float(state.get("lease_until", 0)) > now or float(state.get("queued_at", 0)) + REQUEUE_GRACE > now:
        return False
    inbound._save(account, "jetstream", queued_at=now)
    listen_jetstream.enqueue(account.pk)
    return True


@task()
def poll() -> dict[str, int]:
    """Poll due accounts' notifications and keep their Jetstream runs going (safe from several workers)."""
    polled = queued = 0
    for account in ChannelAccount.objects.filter(kind="bluesky", is_active=True).order_by("pk"):
        config = account.config or {}
        if config.get("simulated"):
            continue
        if (account.secrets or {}).get("password"):
            polls = [inbound.do_poll_notifications] + ([inbound.do_poll_dms] if config.get("poll_dms") else [])
            for poll_one in polls:
                try:
                    polled += "skipped" not in poll_one(account)
                except Exception:
                    logger.exception("polling Bluesky account %s failed", account.pk)
        if _listens(account):
            try:
                queued += _queue_run(account)
            except Exception:
                logger.exception("queueing the Jetstream run of Bluesky account %s failed", account.pk)
    return {"polled": polled, "jetstream_queued": queued}


@task(queue_name=lanes.STREAM)
def listen_jetstream(account_id: int) -> dict[str, object]:
    """Read the firehose for one account for a bounded time, then queue the next run."""
    account = ChannelAccount.objects.filter(pk=account_id, kind="bluesky", is_active=True).first()
    if account is None or not _listens(account):
        return {"skipped": "not listening"}
    seconds = float((account.config or {}).get("run_seconds") or DEFAULT_RUN_SECONDS)
    try:
        result = inbound.do_listen_jetstream(account, max_seconds=seconds)
    except Exception as exc:  # a bug must not stop listening for good: the clock queues another run
        logger.exception("Jetstream run of Bluesky account %s failed", account.pk)
        health.do_record_channel_error(account, f"Bluesky Jetstream: {type(exc).__name__}: {exc}")
        return {"error": str(exc)}
    if "skipped" not in result:
        inbound._save(account, "jetstream", queued_at=None)
        _queue_run(account)
    return result
