"""Background work of the Facebook and Instagram connectors: ingesting verified webhook
deliveries, and checking every Meta token so an expired one is noticed within minutes."""

from __future__ import annotations

import datetime as dt
import logging

from django.utils import timezone
from django_tasks import task

from madoguchi.connectors import health
from madoguchi.connectors.facebook import graph, inbound
from madoguchi.connectors.models import ChannelAccount

logger = logging.getLogger(__name__)

# Page tokens derived from a long-lived user token do not expire, but a password change, a removed
# admin or a revoked app invalidates them silently: check each account this often.
TOKEN_CHECK_MINUTES = 10


@task()
def process_delivery(account_id: int, body: str) -> dict[str, int]:
    """Ingest the changes and messages of one verified Facebook webhook delivery."""
    account = ChannelAccount.objects.filter(pk=account_id, kind="facebook").first()
    if account is None:
        return {}
    return inbound.process_delivery(account, body)


@task()
def check_tokens() -> dict[str, int]:
    """Check the token of every Facebook and Instagram account that is due (run by the worker
    clock; claiming the check under the row lock keeps several workers from repeating it)."""
    checked = failed = 0
    now = timezone.now()
    for account in ChannelAccount.objects.filter(kind__in=graph.PLATFORM_NAMES, is_active=True).order_by("pk"):
        config = account.config or {}
        if config.get("simulated"):
            continue
        last = config.get("token_checked_at")
        if last and dt.datetime.fromisoformat(last) > now - dt.timedelta(minutes=TOKEN_CHECK_MINUTES):
            continue
        claimed: list[bool] = []

        def claim(config: dict, claimed: list[bool] = claimed) -> None:
            previous = config.get("token_checked_at")
            if previous and dt.datetime.fromisoformat(previous) > now - dt.timedelta(minutes=TOKEN_CHECK_MINUTES):
                return
            config["token_checked_at"] = now.isoformat()
            claimed.append(True)

        health.update_config(account, claim)
        if not claimed:
            continue
        try:
            ok = graph.do_check_token(account)
        except Exception:
            logger.exception("checking the token of %s account %s failed", account.kind, account.pk)
            continue
        checked += 1
        failed += not ok
    return {"checked": checked, "refused": failed}
