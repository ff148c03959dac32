"""Background work of the LINE connector: ingesting verified webhook deliveries, and running again
the ones whose task failed or whose worker died (LINE keeps no history: a delivery we drop is gone)."""

from __future__ import annotations

import datetime as dt
import logging

from django.db import transaction
from django.utils import timezone
from django_tasks import task

from madoguchi.connectors.line import inbound
from madoguchi.connectors.models import ChannelAccount
from madoguchi.ingest import actions as ingest

logger = logging.getLogger(__name__)

TASK_PATH = "madoguchi.connectors.line.tasks.process_delivery"
STALE_RUNNING = dt.timedelta(minutes=15)  # far longer than a delivery takes, media included
MAX_ATTEMPTS = 8
REQUEUE_BATCH = 100


def retry_delay(attempt: int) -> dt.timedelta:
    """How long after a failed run a delivery is run again: 30 s, 1 min, 2 min… up to an hour."""
    return dt.timedelta(seconds=min(3600, 30 * 2 ** max(0, attempt - 1)))


@task()
def process_delivery(account_id: int, body: str, attempt: int = 0) -> dict[str, int]:
    """Ingest the events of one verified webhook delivery (fetching profiles and media)."""
    account = ChannelAccount.objects.filter(pk=account_id, kind="line").first()
    if account is None:
        return {}
    return inbound.process_delivery(account, body)


@task()
def requeue_deliveries() -> dict[str, int]:
    """Clock task: queue again the deliveries whose run failed (after a growing delay) or whose
    worker died mid-run; after MAX_ATTEMPTS the delivery is quarantined for an admin instead.

    Each old task row is claimed by deleting it in the same transaction that queues its successor,
    so two workers never requeue the same delivery.
    """
    from django_tasks.base import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    now = timezone.now()
    rows = DBTaskResult.objects.filter(task_path=TASK_PATH).filter(
        status=TaskResultStatus.FAILED
    ) | DBTaskResult.objects.filter(task_path=TASK_PATH, status=TaskResultStatus.RUNNING, started_at__lt=now - STALE_RUNNING)
    counts = {"requeued": 0, "quarantined": 0}
    for row in rows.order_by("enqueued_at")[:REQUEUE_BATCH]:
        args, kwargs = list(row.args_kwargs.get("args") or []), dict(row.args_kwargs.get("kwargs") or {})
        if len(args) < 2:
            continue
        attempt = int(kwargs.get("attempt") or (args[2] if len(args) > 2 else 0)) + 1
        if row.status == TaskResultStatus.FAILED and row.finished_at and row.finished_at + retry_delay(attempt) > now:
            continue
        with transaction.atomic():
            claimed, _ = DBTaskResult.objects.filter(pk=row.pk, status=row.status).delete()
            if not claimed:
                continue  # another worker took it
            account_id, body = int(args[0]), str(args[1])
            if attempt > MAX_ATTEMPTS:
                account = ChannelAccount.objects.filter(pk=account_id).first()
                if account is not None:
                    reason = f"LINE delivery failed {MAX_ATTEMPTS} times; last error: {row.exception_class_path}"
                    ingest.do_quarantine(account, reason, body)
                    counts["quarantined"] += 1
                continue
            process_delivery.enqueue(account_id, body, attempt=attempt)
            counts["requeued"] += 1
        logger.warning("LINE delivery %s queued again (attempt %s)", row.pk, attempt)
    return counts
