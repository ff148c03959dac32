"""Background work of webhooks: POST one delivery, signed, and record what the receiver said."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time

import httpx
from django_tasks import task

from madoguchi.webhooks import actions

logger = logging.getLogger(__name__)

# A receiver should answer at once and do its work later; a slow one is retried, not waited for.
TIMEOUT_SECONDS = 5.0


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The X-Madoguchi-Signature value: hex HMAC-SHA256, with the endpoint's secret, of
    "<X-Madoguchi-Timestamp>." followed by the raw body. Covering the timestamp lets a receiver
    refuse a captured delivery replayed later (compare it with its clock, e.g. ±5 minutes)."""
    signed = str(timestamp).encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None


@task()
def deliver_webhook(delivery_id: int) -> str:
    """POST one delivery to its endpoint; 2xx is delivered, 5xx/429/timeouts retry, other 4xx fail."""
    delivery = actions.claim_delivery(delivery_id)
    if delivery is None:
        return "not due or already claimed"
    endpoint = delivery.endpoint
    if not endpoint.active:
        actions.do_record_failure(delivery, "the endpoint is switched off", permanent=True)
        return "failed"
    body = json.dumps(delivery.payload, ensure_ascii=False, separators=(",", ":")).encode()
    try:
        actions.check_target_address(endpoint.url)
    except actions.WebhookError as exc:
        actions.do_record_failure(delivery, str(exc), permanent=True)
        return "failed"
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "madoguchi-webhooks/1",
        "X-Madoguchi-Event": delivery.event,
        "X-Madoguchi-Delivery": str(delivery.pk),
        "X-Madoguchi-Timestamp": str(timestamp),
        "X-Madoguchi-Signature": sign(endpoint.secret, timestamp, body),
    }
    try:
        response = httpx.post(
            endpoint.url, content=body, headers=headers, timeout=TIMEOUT_SECONDS, follow_redirects=False
        )
    except httpx.HTTPError as exc:  # timeouts, refused connections, DNS failures: maybe later
        logger.info("webhook delivery %s: %s", delivery_id, type(exc).__name__)
        retrying = actions.do_record_failure(delivery, f"{type(exc).__name__}: {exc}", permanent=False)
        return "retrying" if retrying else "failed"
    code = response.status_code
    if 200 <= code < 300:
        actions.do_record_delivered(delivery, code)
        return "delivered"
    if code == 429 or code >= 500:
        retrying = actions.do_record_failure(
            delivery, f"HTTP {code}", permanent=False, response_code=code, retry_after=_retry_after(response)
        )
        return "retrying" if retrying else "failed"
    # Other 4xx (and redirects, which we never follow so a signed body cannot be bounced
    # elsewhere): the receiver rejects this event and will keep doing so.
    actions.do_record_failure(delivery, f"HTTP {code}", permanent=True, response_code=code)
    return "failed"


@task()
def requeue_due_webhooks() -> int:
    """Enqueue again deliveries whose task was lost; safe to run from several workers at once."""
    return actions.do_enqueue_due_deliveries()
