"""Background work of the inbox: delivering the outbox, waking snoozed conversations."""

from __future__ import annotations

import logging

from django_tasks import task

from madoguchi.connectors.base import OutboundMessage, PermanentError, TemporaryError, adapter_for
from madoguchi.inbox import actions

logger = logging.getLogger(__name__)


@task()
def deliver_outbox(outbox_id: int) -> str:
    """Send one outbox row through its channel's adapter; retry or fail as the platform says."""
    outbox = actions.claim_outbox(outbox_id)
    if outbox is None:
        return "not due or already claimed"
    message = outbox.message
    account = message.conversation.channel_account
    identity = message.conversation.contact.identities.filter(kind=account.kind).order_by("-updated_at").first()
    outbound = OutboundMessage(
        idempotency_key=outbox.idempotency_key,
        text=message.text,
        recipient=identity.external_id if identity else "",
        in_reply_to=message.reply_to_external_id,
        thread_id=message.conversation.thread_key,
        public=message.public,
        subject=message.conversation.subject,
        attachments=[(a.filename, a.content_type, a.file.read()) for a in message.attachments.all()],
    )
    try:
        result = adapter_for(account).send(account, outbound)
    except TemporaryError as exc:
        logger.info("outbox %s: temporary failure: %s", outbox_id, exc)
        retrying = actions.do_record_send_failure(outbox, str(exc), permanent=False, retry_after=exc.retry_after)
        return "retrying" if retrying else "failed"
    except PermanentError as exc:
        logger.info("outbox %s: permanent failure: %s", outbox_id, exc)
        actions.do_record_send_failure(outbox, str(exc), permanent=True)
        return "failed"
    except Exception as exc:  # an adapter bug must not lose the reply: retry it like a timeout
        logger.exception("outbox %s: unexpected error", outbox_id)
        actions.do_record_send_failure(outbox, f"{type(exc).__name__}: {exc}", permanent=False)
        return "retrying"
    actions.do_record_sent(outbox, result.external_id)
    return "sent"


@task()
def run_periodic() -> dict[str, int]:
    """Work that is due by the clock; safe to run from several workers at once."""
    return {
        "woke": actions.do_wake_snoozed(),
        "requeued": actions.do_enqueue_due_outbox(),
    }
