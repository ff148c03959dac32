"""Background work of the email connector: keeping every active mailbox in sync by IMAP."""

from __future__ import annotations

import datetime as dt
import logging

from django.db.models import Q
from django.utils import timezone
from django_tasks import task

from madoguchi.connectors.email import imap
from madoguchi.connectors.models import ChannelAccount, ChannelKind
from madoguchi.lib import lanes

logger = logging.getLogger(__name__)

DEFAULT_POLL_SECONDS = 60
MAX_IDLE_SECONDS = 300  # well inside the sync lease (10 min) and IDLE's 29-minute limit


def _due(account: ChannelAccount, now: dt.datetime) -> bool:
    state = account.config.get("imap_state") or {}
    lease = state.get("lease_until")
    if lease and dt.datetime.fromisoformat(lease) > now:
        return False
    last = state.get("last_sync_at")
    every = float(account.config.get("poll_seconds") or DEFAULT_POLL_SECONDS)
    return not last or dt.datetime.fromisoformat(last) + dt.timedelta(seconds=every) <= now


def _idle_seconds(account: ChannelAccount) -> float:
    """How long a sync stays on IMAP IDLE after fetching (opt-in, `config["imap_idle_seconds"]`)."""
    return min(float(account.config.get("imap_idle_seconds") or 0), MAX_IDLE_SECONDS)


@task()
def poll_mailboxes() -> dict[str, int]:
    """Clock task: queue a sync for each active mailbox whose poll interval has passed."""
    now = timezone.now()
    queued = 0
    accounts = ChannelAccount.objects.filter(kind=ChannelKind.EMAIL, is_active=True).exclude(
        Q(config__imap_host__isnull=True) | Q(config__imap_host="")
    )
    for account in accounts.only("id", "config"):
        if account.config.get("simulated") or not _due(account, now):
            continue
        try:
            # With IDLE the sync holds its connection for minutes: the stream lane, not the
            # lane that delivers replies.
            lane = lanes.STREAM if _idle_seconds(account) > 0 else lanes.DEFAULT
            sync_mailbox.using(queue_name=lane).enqueue(account.pk)
            queued += 1
        except Exception:  # the next tick tries again
            logger.exception("could not queue the sync of mailbox %s", account.pk)
    return {"mailboxes_queued": queued}


@task()
def sync_mailbox(account_id: int) -> dict[str, object]:
    """Fetch new mail of one mailbox into the inbox; failures are recorded on the account."""
    account = ChannelAccount.objects.filter(
        pk=account_id, kind=ChannelKind.EMAIL, is_active=True
    ).first()
    if account is None:
        return {"skipped": "no such active mailbox"}
    if not imap.claim(account):
        return {"skipped": "another worker is syncing this mailbox"}
    now = timezone.now()
    try:
        # Opt-in IDLE: this worker stays with the mailbox a while, so new mail lands in seconds.
        idle_seconds = _idle_seconds(account)
        report = (
            imap.sync_and_wait(account, idle_seconds) if idle_seconds > 0 else imap.sync(account)
        )
    except imap.SyncError as exc:
        logger.warning("mailbox %s: %s", account.pk, exc)
        ChannelAccount.objects.filter(pk=account.pk).update(
            last_error=str(exc)[:2000], last_error_at=now
        )
        return {"error": str(exc)}
    except Exception as exc:  # a bug must not leave the lease held for ten minutes
        logger.exception("mailbox %s: sync failed", account.pk)
        reason = f"IMAP: sync failed ({type(exc).__name__}: {exc})"
        ChannelAccount.objects.filter(pk=account.pk).update(
            last_error=reason[:2000], last_error_at=now
        )
        return {"error": reason}
    finally:
        imap.save_state(account, lease_until=None, last_sync_at=timezone.now().isoformat())
    # A working sync clears an earlier IMAP error (send errors are the outbox's to clear).
    ChannelAccount.objects.filter(pk=account.pk, last_error__startswith="IMAP").update(
        last_error=""
    )
    return {"fetched": report.fetched, **report.outcomes, "resynced": report.resynced}
