"""Background work of the X connector: polling mentions (and DMs) of every connected account."""

from __future__ import annotations

import logging

from django_tasks import task

from madoguchi.connectors.models import ChannelAccount
from madoguchi.connectors.x import inbound

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
