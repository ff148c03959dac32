"""Writes for outgoing webhooks: endpoints, queueing deliveries with the change, recording outcomes."""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
import socket
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from madoguchi.accounts.models import Workspace
from madoguchi.inbox.actions import backoff_seconds
from madoguchi.webhooks.models import EVENTS, DeliveryStatus, WebhookDelivery, WebhookEndpoint

# After this many attempts (about 40 minutes of backoff) a delivery is given up.
MAX_ATTEMPTS = 8
# A claimed delivery whose worker died is retried after this long.
CLAIM_SECONDS = 120


class WebhookError(ValueError):
    """An endpoint setting we refuse, with a message for the admin."""


def check_endpoint_url(url: str) -> str:
    """An absolute http(s) URL to a public address, or WebhookError: no file:, gopher: or other
    schemes, and no loopback, private or link-local targets (they would let a workspace admin
    probe the helpdesk's own network: cloud metadata at 169.254.169.254, databases, admin ports)."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 1000:
        raise WebhookError(_("The URL must be an absolute http:// or https:// address."))
    _check_literal_address(parts.hostname)
    return url


def _refuse_address(address: str) -> bool:
    if settings.WEBHOOK_ALLOW_PRIVATE_TARGETS:
        return False
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def _check_literal_address(host: str) -> None:
    host = host.lower().rstrip(".")
    named_local = host == "localhost" or host.endswith(".localhost")
    if _refuse_address(host) or (named_local and not settings.WEBHOOK_ALLOW_PRIVATE_TARGETS):
        raise WebhookError(_("Webhooks cannot be sent to a loopback, private or link-local address."))


def check_target_address(url: str) -> None:
    """Before each delivery: every address the host resolves to must be public (a name that
    pointed outside when the endpoint was saved may point inside now). WebhookError if not."""
    host = urlsplit(url).hostname or ""
    _check_literal_address(host)
    if settings.WEBHOOK_ALLOW_PRIVATE_TARGETS:
        return
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return  # the POST will fail with the DNS error and be retried
    if any(_refuse_address(str(info[4][0])) for info in infos):
        raise WebhookError(_("Webhooks cannot be sent to a loopback, private or link-local address."))


def check_events(events: list[str]) -> list[str]:
    """Known event names, without duplicates, at least one."""
    unknown = [e for e in events if e not in EVENTS]
    if unknown or not events:
        raise WebhookError(
            _("Choose events among %(events)s.") % {"events": ", ".join(EVENTS)}
        )
    return list(dict.fromkeys(events))


def do_create_endpoint(
    workspace: Workspace, *, url: str, events: list[str], secret: str | None = None
) -> WebhookEndpoint:
    """Register a URL for events; without a secret a random one is generated."""
    return WebhookEndpoint.objects.create(
        workspace=workspace,
        url=check_endpoint_url(url),
        events=check_events(events),
        secret=secret or secrets.token_urlsafe(32),
    )


def do_update_endpoint(
    endpoint: WebhookEndpoint,
    *,
    url: str | None = None,
    events: list[str] | None = None,
    active: bool | None = None,
) -> WebhookEndpoint:
    """Change an endpoint's URL, events, or switch it off and on."""
    if url is not None:
        endpoint.url = check_endpoint_url(url)
    if events is not None:
        endpoint.events = check_events(events)
    if active is not None:
        endpoint.active = active
    endpoint.save(update_fields=["url", "events", "active"])
    return endpoint


def do_delete_endpoint(endpoint: WebhookEndpoint) -> None:
    """Remove an endpoint and its delivery history."""
    endpoint.delete()


def on_live_event(
    sender: Any, *, workspace_id: int, kind: str, conversation_id: int | None, data: dict, **kwargs: Any
) -> None:
    """Receiver of inbox.events.live_event_published."""
    do_queue_deliveries(workspace_id, kind, conversation_id, data)


def do_queue_deliveries(
    workspace_id: int, kind: str, conversation_id: int | None, data: dict
) -> list[WebhookDelivery]:
    """Store a delivery per subscribed endpoint in the caller's transaction; send after commit."""
    if kind not in EVENTS:
        return []
    # Few endpoints per workspace: filter events in Python (JSON contains is not portable to SQLite).
    endpoints = [
        e for e in WebhookEndpoint.objects.filter(workspace_id=workspace_id, active=True) if kind in e.events
    ]
    if not endpoints:
        return []
    now = timezone.now()
    payload = {
        "event": kind,
        "workspace_id": workspace_id,
        "conversation_id": conversation_id,
        "occurred_at": now.isoformat(),
        "data": data,
    }
    deliveries = [
        WebhookDelivery.objects.create(
            workspace_id=workspace_id, endpoint=e, event=kind, payload=payload, next_attempt_at=now
        )
        for e in endpoints
    ]
    ids = [d.pk for d in deliveries]

    def enqueue_all() -> None:
        for i in ids:
            _enqueue(i)

    transaction.on_commit(enqueue_all)
    return deliveries


def _enqueue(delivery_id: int, run_after: dt.datetime | None = None) -> None:
    from madoguchi.webhooks.tasks import deliver_webhook

    task = deliver_webhook.using(run_after=run_after) if run_after else deliver_webhook
    task.enqueue(delivery_id)


def claim_delivery(delivery_id: int) -> WebhookDelivery | None:
    """Atomically claim a due delivery so that two workers never send it at once."""
    now = timezone.now()
    claimed = (
        WebhookDelivery.objects.filter(pk=delivery_id, next_attempt_at__lte=now)
        .filter(status__in=[DeliveryStatus.PENDING, DeliveryStatus.SENDING])
        .exclude(locked_until__gt=now)
        .update(status=DeliveryStatus.SENDING, locked_until=now + dt.timedelta(seconds=CLAIM_SECONDS))
    )
    if not claimed:
        return None
    return WebhookDelivery.objects.select_related("endpoint").get(pk=delivery_id)


def do_record_delivered(delivery: WebhookDelivery, response_code: int) -> None:
    """The receiver accepted the event."""
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.DELIVERED,
        attempts=delivery.attempts + 1,
        response_code=response_code,
        delivered_at=timezone.now(),
        locked_until=None,
        last_error="",
    )


@transaction.atomic
def do_record_failure(
    delivery: WebhookDelivery,
    error: str,
    *,
    permanent: bool,
    response_code: int | None = None,
    retry_after: float | None = None,
) -> bool:
    """A delivery failed: schedule a retry, or give up for good. Returns True if retrying."""
    attempts = delivery.attempts + 1
    give_up = permanent or attempts >= MAX_ATTEMPTS
    if retry_after is not None:
        retry_after = min(retry_after, 3600.0)
    next_at = timezone.now() + dt.timedelta(seconds=backoff_seconds(attempts, retry_after))
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.FAILED if give_up else DeliveryStatus.PENDING,
        attempts=attempts,
        last_error=error[:2000],
        response_code=response_code,
        locked_until=None,
        next_attempt_at=next_at,
    )
    if not give_up:
        transaction.on_commit(lambda: _enqueue(delivery.pk, run_after=next_at))
    return not give_up


def do_enqueue_due_deliveries(limit: int = 500) -> int:
    """Re-enqueue due deliveries whose task was lost (a crash between commit and enqueue)."""
    now = timezone.now()
    stale = now - dt.timedelta(seconds=60)
    ids = list(
        WebhookDelivery.objects.filter(
            status__in=[DeliveryStatus.PENDING, DeliveryStatus.SENDING], next_attempt_at__lte=stale
        )
        .exclude(locked_until__gt=now)
        .values_list("id", flat=True)[:limit]
    )
    for delivery_id in ids:
        _enqueue(delivery_id)
    return len(ids)
