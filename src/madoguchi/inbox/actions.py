"""Writes for conversations and messages. Only these change inbox data and publish live events."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass

import nh3
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from madoguchi.accounts.models import Team, User
from madoguchi.connectors.models import ChannelAccount
from madoguchi.contacts.models import Identity
from madoguchi.inbox import search
from madoguchi.inbox.events import publish
from madoguchi.inbox.models import (
    Attachment,
    Conversation,
    Delivery,
    Direction,
    Label,
    Message,
    MessageEvent,
    Outbox,
    OutboxStatus,
    Status,
)
from madoguchi.lib.archives import bomb_reason
from madoguchi.text.normalize import detect_language

logger = logging.getLogger(__name__)


class InboxError(ValueError):
    """A request the inbox refuses, with a message for the person who made it."""


@dataclass
class NewAttachment:
    filename: str
    content_type: str
    content: bytes


def sanitize_html(html: str) -> str:
    """Inbound HTML made safe to display: no scripts, styles, handlers or remote tricks."""
    return nh3.clean(html, link_rel="noopener noreferrer nofollow") if html else ""


def _preview(text: str) -> str:
    return " ".join(text.split())[:200]


def _conversation_event(conversation: Conversation, kind: str, **extra: object) -> None:
    publish(
        conversation.workspace_id,
        kind,
        conversation.pk,
        status=conversation.status,
        assignee=conversation.assignee_id,
        **extra,
    )


def check_attachments(attachments: list[NewAttachment]) -> None:
    """Every attachment within the size limit and not a decompression bomb, or InboxError.

    Checked before any file is written, so a refused message leaves nothing behind on disk.
    Inbound items that fail are quarantined by ingest with this reason.
    """
    for item in attachments:
        if len(item.content) > settings.ATTACHMENT_MAX_BYTES:
            raise InboxError(
                _("%(name)s is larger than the %(limit)s MB limit.")
                % {"name": item.filename, "limit": settings.ATTACHMENT_MAX_BYTES // (1024 * 1024)}
            )
        reason = bomb_reason(item.filename, item.content)
        if reason:
            raise InboxError(
                _("%(name)s was refused: %(reason)s.") % {"name": item.filename, "reason": reason}
            )


def _store_attachments(message: Message, attachments: list[NewAttachment]) -> None:
    check_attachments(attachments)
    for item in attachments:
        safe_name = item.filename.replace("/", "_").replace("\\", "_")[:200] or "file"
        att = Attachment(
            workspace_id=message.workspace_id,
            message=message,
            filename=safe_name,
            content_type=item.content_type[:255] or "application/octet-stream",
            size=len(item.content),
        )
        att.file.save(f"{uuid.uuid4().hex}-{safe_name}", ContentFile(item.content), save=False)
        att.save()


def _add_message(conversation: Conversation, **fields: object) -> Message:
    attachments: list[NewAttachment] = fields.pop("attachments", None) or []  # type: ignore[assignment]
    message = Message.objects.create(
        workspace_id=conversation.workspace_id, conversation=conversation, **fields
    )
    _store_attachments(message, attachments)
    search.index_message(
        message.pk, message.workspace_id, conversation.pk, f"{conversation.subject}\n{message.text}"
    )
    return message


@transaction.atomic
def do_create_conversation(
    *,
    channel_account: ChannelAccount,
    identity: Identity,
    subject: str = "",
    thread_key: str = "",
    language: str = "",
    created_at: dt.datetime | None = None,
) -> Conversation:
    """Open a new conversation for a contact on a channel account."""
    now = created_at or timezone.now()
    conversation = Conversation.objects.create(
        workspace_id=channel_account.workspace_id,
        contact_id=identity.contact_id,
        channel_account=channel_account,
        brand_id=channel_account.brand_id,
        subject=subject[:500],
        thread_key=thread_key,
        language=language,
        created_at=now,
        last_message_at=now,
    )
    _conversation_event(
        conversation, "conversation.created", contact=conversation.contact_id, channel=channel_account.kind
    )
    return conversation


@transaction.atomic
def do_receive_message(
    conversation: Conversation,
    *,
    identity: Identity,
    text: str,
    html: str = "",
    external_id: str | None,
    reply_to_external_id: str = "",
    public: bool = False,
    language: str = "",
    created_at: dt.datetime | None = None,
    attachments: list[NewAttachment] | None = None,
    raw: dict | None = None,
) -> Message:
    """Add a customer's message; it reopens pending, snoozed or resolved conversations."""
    conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
    now = timezone.now()
    language = language or detect_language(text)
    message = _add_message(
        conversation,
        direction=Direction.INBOUND,
        channel_account=conversation.channel_account,
        identity=identity,
        text=text,
        html=sanitize_html(html),
        external_id=external_id,
        reply_to_external_id=reply_to_external_id,
        public=public,
        language=language,
        created_at=created_at or now,
        attachments=attachments,
        raw=raw or {},
    )
    reopened = conversation.status in (Status.PENDING, Status.SNOOZED, Status.RESOLVED)
    if reopened:
        conversation.status = Status.OPEN
        conversation.snoozed_until = None
        conversation.resolved_at = None
    conversation.last_message_at = max(conversation.last_message_at, message.created_at)
    conversation.waiting_since = conversation.waiting_since or message.created_at
    conversation.preview = _preview(text)
    conversation.message_count += 1
    if language and not conversation.language:
        conversation.language = language
    conversation.save()
    publish(
        conversation.workspace_id,
        "message.created",
        conversation.pk,
        message=message.pk,
        direction=message.direction,
        status=conversation.status,
        reopened=reopened,
        preview=conversation.preview,
    )
    return message


def _check_text(text: str, attachments: list[NewAttachment] | None) -> str:
    text = text.strip()
    if not text and not attachments:
        raise InboxError(_("Write something before sending."))
    if len(text) > 50_000:
        raise InboxError(_("The message is too long (at most 50,000 characters)."))
    return text


@transaction.atomic
def do_reply(
    conversation: Conversation,
    *,
    author: User,
    text: str,
    attachments: list[NewAttachment] | None = None,
    public: bool | None = None,
) -> Message:
    """Reply to the customer: the message and its outbox row are written together, then sent.
    `public`: as the message answered (None), or as the agent chose (a private reply to a comment)."""
    text = _check_text(text, attachments)
    conversation = Conversation.objects.select_for_update().select_related("channel_account").get(
        pk=conversation.pk
    )
    now = timezone.now()
    last_inbound = (
        conversation.messages.filter(direction=Direction.INBOUND).order_by("-created_at", "-id").first()
    )
    message = _add_message(
        conversation,
        direction=Direction.OUTBOUND,
        channel_account=conversation.channel_account,
        author=author,
        text=text,
        reply_to_external_id=(last_inbound.external_id or "") if last_inbound else "",
        public=bool(last_inbound and last_inbound.public) if public is None else public,
        language=conversation.language,
        created_at=now,
        delivery=Delivery.QUEUED,
        attachments=attachments,
        # A private answer to a public item (Facebook/Instagram private replies): marked in the thread.
        raw={"private_reply": True} if public is False and last_inbound and last_inbound.public else {},
    )
    outbox = Outbox.objects.create(
        workspace_id=conversation.workspace_id,
        message=message,
        idempotency_key=f"mdg-{uuid.uuid4().hex}",
        next_attempt_at=now,
    )
    if conversation.status != Status.RESOLVED:
        conversation.status = Status.PENDING
    conversation.snoozed_until = None
    conversation.waiting_since = None
    conversation.first_response_at = conversation.first_response_at or now
    conversation.last_message_at = now
    conversation.preview = _preview(text)
    conversation.message_count += 1
    if conversation.assignee_id is None:
        conversation.assignee = author
    conversation.save()
    _conversation_event(conversation, "message.created", message=message.pk, direction="out")
    transaction.on_commit(lambda: _enqueue_delivery(outbox.pk))
    return message


def _enqueue_delivery(outbox_id: int, run_after: dt.datetime | None = None) -> None:
    from madoguchi.inbox.tasks import deliver_outbox

    task = deliver_outbox.using(run_after=run_after) if run_after else deliver_outbox
    try:
        task.enqueue(outbox_id)
    except Exception:
        # The reply is safely in the outbox; the periodic sweep (do_enqueue_due_outbox) picks it up.
        logger.exception("could not enqueue delivery of outbox row %s", outbox_id)


@transaction.atomic
def do_add_note(
    conversation: Conversation,
    *,
    author: User,
    text: str,
    attachments: list[NewAttachment] | None = None,
) -> Message:
    """An internal note: visible to the team, never sent to the customer."""
    text = _check_text(text, attachments)
    conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
    message = _add_message(
        conversation, direction=Direction.NOTE, author=author, text=text, attachments=attachments
    )
    conversation.message_count += 1
    conversation.save(update_fields=["message_count"])
    _conversation_event(conversation, "message.created", message=message.pk, direction="note")
    return message


@transaction.atomic
def do_mark_seen(conversation: Conversation, user: User) -> Conversation:
    """Opening a conversation marks it seen (確認済み): new becomes open."""
    updated = Conversation.objects.filter(pk=conversation.pk, status=Status.NEW).update(
        status=Status.OPEN, seen_at=timezone.now(), seen_by=user
    )
    if updated:
        conversation.refresh_from_db()
        _conversation_event(conversation, "conversation.updated", seen_by=user.display_name)
    return conversation


@transaction.atomic
def do_set_status(
    conversation: Conversation,
    status: str,
    *,
    actor: User | None,
    snoozed_until: dt.datetime | None = None,
) -> Conversation:
    """Resolve, reopen, snooze or mark pending."""
    conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
    now = timezone.now()
    if status not in Status.values:
        raise InboxError(_("Unknown status %(status)s.") % {"status": status})
    if status == Status.SNOOZED:
        if snoozed_until is None or snoozed_until <= now:
            raise InboxError(_("Choose a time in the future to snooze until."))
        conversation.snoozed_until = snoozed_until
    else:
        conversation.snoozed_until = None
    if status == Status.RESOLVED:
        conversation.resolved_at = now
    elif conversation.status == Status.RESOLVED:
        conversation.resolved_at = None
    if status == Status.NEW:
        status = Status.OPEN  # a conversation that was seen cannot become unseen
    conversation.status = status
    conversation.save()
    _conversation_event(conversation, "conversation.updated")
    return conversation


@transaction.atomic
def do_assign(
    conversation: Conversation, *, assignee: User | None, team: Team | None, actor: User | None
) -> Conversation:
    """Assign to an agent and/or a team of the same workspace."""
    for obj in (assignee, team):
        if obj is not None and obj.workspace_id != conversation.workspace_id:
            raise InboxError(_("That agent or team is not in this workspace."))
    if assignee is not None and not assignee.is_active:
        raise InboxError(_("That agent is deactivated."))
    Conversation.objects.filter(pk=conversation.pk).update(assignee=assignee, team=team)
    conversation.assignee, conversation.team = assignee, team
    _conversation_event(conversation, "conversation.updated")
    return conversation


@transaction.atomic
def do_set_priority(conversation: Conversation, priority: int) -> Conversation:
    """Change the priority (0 low … 3 urgent)."""
    if priority not in (0, 1, 2, 3):
        raise InboxError(_("Priority must be between 0 and 3."))
    Conversation.objects.filter(pk=conversation.pk).update(priority=priority)
    conversation.priority = priority
    _conversation_event(conversation, "conversation.updated")
    return conversation


@transaction.atomic
def do_set_labels(conversation: Conversation, names: list[str]) -> Conversation:
    """Replace the conversation's labels, creating unknown ones in the workspace."""
    labels = []
    for name in dict.fromkeys(n.strip()[:64] for n in names if n.strip()):
        label, _created = Label.objects.get_or_create(workspace_id=conversation.workspace_id, name=name)
        labels.append(label)
    conversation.labels.set(labels)
    _conversation_event(conversation, "conversation.updated")
    return conversation


@transaction.atomic
def do_move_message(message: Message, target: Conversation, *, actor: User | None) -> Message:
    """Continue a conversation on another channel: move a message to another conversation of the same contact."""
    source = message.conversation
    if target.workspace_id != message.workspace_id or target.contact_id != source.contact_id:
        raise InboxError(_("A message can only move to a conversation of the same contact."))
    if target.pk == source.pk:
        raise InboxError(_("The message is already in that conversation."))
    Message.objects.filter(pk=message.pk).update(conversation=target)
    search.move_messages([message.pk], target.pk)
    for conv in (source, target):
        conv.message_count = conv.messages.count()
        last = conv.messages.order_by("-created_at", "-id").first()
        if last is not None:
            conv.last_message_at = last.created_at
            conv.preview = _preview(last.text)
        conv.save(update_fields=["message_count", "last_message_at", "preview"])
        _conversation_event(conv, "conversation.updated")
    message.conversation = target
    return message


# --- the outbox -----------------------------------------------------------------------------


def claim_outbox(outbox_id: int) -> Outbox | None:
    """Atomically claim a due outbox row so that two workers never send it at once."""
    now = timezone.now()
    claimed = (
        Outbox.objects.filter(pk=outbox_id, next_attempt_at__lte=now)
        .filter(status__in=[OutboxStatus.PENDING, OutboxStatus.SENDING])
        .exclude(locked_until__gt=now)
        .update(status=OutboxStatus.SENDING, locked_until=now + dt.timedelta(minutes=5))
    )
    if not claimed:
        return None
    return Outbox.objects.select_related("message__conversation__channel_account").get(pk=outbox_id)


def backoff_seconds(attempts: int, retry_after: float | None = None) -> float:
    """Exponential backoff (10 s, 20 s, 40 s … capped at an hour), or what the platform asked for."""
    if retry_after is not None:
        return max(0.0, retry_after)
    return float(min(3600, 10 * 2 ** max(0, attempts - 1)))


@transaction.atomic
def do_record_sent(outbox: Outbox, external_id: str) -> None:
    """The platform accepted the message."""
    now = timezone.now()
    Outbox.objects.filter(pk=outbox.pk).update(
        status=OutboxStatus.SENT, sent_at=now, locked_until=None, attempts=outbox.attempts + 1, last_error=""
    )
    Message.objects.filter(pk=outbox.message_id).update(
        delivery=Delivery.SENT, external_id=external_id, delivery_error=""
    )
    if outbox.message.channel_account_id is not None:
        ChannelAccount.objects.filter(pk=outbox.message.channel_account_id).update(last_send_at=now)
    conv = outbox.message.conversation
    publish(conv.workspace_id, "message.delivery", conv.pk, message=outbox.message_id, delivery="sent")


@transaction.atomic
def do_record_send_failure(outbox: Outbox, error: str, *, permanent: bool, retry_after: float | None = None) -> bool:
    """A send failed: schedule a retry, or fail the message for good. Returns True if retrying."""
    attempts = outbox.attempts + 1
    now = timezone.now()
    give_up = permanent or attempts >= settings.OUTBOX_MAX_ATTEMPTS
    next_at = now + dt.timedelta(seconds=backoff_seconds(attempts, retry_after))
    Outbox.objects.filter(pk=outbox.pk).update(
        status=OutboxStatus.FAILED if give_up else OutboxStatus.PENDING,
        attempts=attempts,
        last_error=error[:2000],
        locked_until=None,
        next_attempt_at=next_at,
    )
    if outbox.message.channel_account_id is not None:
        ChannelAccount.objects.filter(pk=outbox.message.channel_account_id).update(
            last_error=error[:2000], last_error_at=now
        )
    conv = outbox.message.conversation
    if give_up:
        Message.objects.filter(pk=outbox.message_id).update(delivery=Delivery.FAILED, delivery_error=error[:2000])
        publish(conv.workspace_id, "message.delivery", conv.pk, message=outbox.message_id, delivery="failed")
    else:
        transaction.on_commit(lambda: _enqueue_delivery(outbox.pk, run_after=next_at))
    return not give_up


@transaction.atomic
def do_retry_delivery(message: Message, *, actor: User) -> Message:
    """Send a failed message again (the retry button)."""
    if message.delivery != Delivery.FAILED:
        raise InboxError(_("Only a failed message can be sent again."))
    Outbox.objects.filter(message=message).update(
        status=OutboxStatus.PENDING, attempts=0, next_attempt_at=timezone.now(), locked_until=None
    )
    Message.objects.filter(pk=message.pk).update(delivery=Delivery.QUEUED, delivery_error="")
    message.delivery = Delivery.QUEUED
    outbox_id = message.outbox.pk
    publish(message.workspace_id, "message.delivery", message.conversation_id, message=message.pk, delivery="queued")
    transaction.on_commit(lambda: _enqueue_delivery(outbox_id))
    return message


def do_enqueue_due_outbox(limit: int = 500) -> int:
    """Re-enqueue due outbox rows whose task was lost (a crash between commit and enqueue)."""
    now = timezone.now()
    stale = now - dt.timedelta(seconds=60)
    ids = list(
        Outbox.objects.filter(status__in=[OutboxStatus.PENDING, OutboxStatus.SENDING], next_attempt_at__lte=stale)
        .exclude(locked_until__gt=now)
        .values_list("id", flat=True)[:limit]
    )
    for outbox_id in ids:
        _enqueue_delivery(outbox_id)
    return len(ids)


def do_wake_snoozed() -> int:
    """Snoozed conversations whose time has come go back to the to-do view."""
    now = timezone.now()
    woke = 0
    for conv in Conversation.objects.filter(status=Status.SNOOZED, snoozed_until__lte=now)[:500]:
        with transaction.atomic():
            if Conversation.objects.filter(pk=conv.pk, status=Status.SNOOZED).update(
                status=Status.OPEN, snoozed_until=None
            ):
                conv.status = Status.OPEN
                _conversation_event(conv, "conversation.updated", woke=True)
                woke += 1
    return woke


def do_publish_presence(conversation: Conversation, user: User, state: str) -> None:
    """Tell the other agents that `user` is viewing or typing in this conversation."""
    if state not in ("viewing", "typing", "left"):
        raise InboxError(_("Unknown presence state."))
    publish(
        conversation.workspace_id,
        "presence",
        conversation.pk,
        user=user.pk,
        name=user.display_name,
        state=state,
    )


@dataclass
class NewEvent:
    """A platform event to record (see connectors.base.InboundEvent)."""

    external_id: str
    kind: str
    target_external_id: str = ""
    emoji: str = ""
    text: str = ""
    html: str = ""
    created_at: dt.datetime | None = None
    raw: dict | None = None


def do_record_event(account: ChannelAccount, identity: Identity | None, event: NewEvent) -> MessageEvent:
    """Keep a reaction, edit, deletion, follow or read mark; apply it to its message if that is here.

    Idempotent on (account, event external id). An event that arrives before its message waits
    on `target_external_id` and is applied by `do_apply_pending_events` when the message comes.
    """
    existing = MessageEvent.objects.filter(channel_account=account, external_id=event.external_id).first()
    if existing is not None:
        return existing
    message = None
    if event.target_external_id:
        message = (
            Message.objects.select_for_update()
            .filter(channel_account=account, external_id=event.target_external_id)
            .first()
        )
    record = MessageEvent.objects.create(
        workspace_id=account.workspace_id,
        channel_account=account,
        external_id=event.external_id,
        kind=event.kind,
        target_external_id=event.target_external_id,
        identity=identity,
        emoji=event.emoji,
        text=event.text if event.kind == "edit" else "",
        created_at=event.created_at or timezone.now(),
        raw=event.raw or {},
    )
    if message is not None:
        _apply_event(message, record, html=event.html)
    return record


def do_apply_pending_events(message: Message) -> int:
    """Apply the events that arrived before this message (out-of-order delivery); returns how many."""
    if not message.external_id or message.channel_account_id is None:
        return 0
    pending = list(
        MessageEvent.objects.filter(
            channel_account_id=message.channel_account_id,
            target_external_id=message.external_id,
            message__isnull=True,
        ).order_by("created_at", "id")
    )
    for record in pending:
        _apply_event(message, record, html="")
    return len(pending)


def _apply_event(message: Message, record: MessageEvent, *, html: str) -> None:
    fields: list[str] = []
    if record.kind == "edit" and (message.edited_at is None or record.created_at >= message.edited_at):
        record.previous_text = message.text
        message.text, message.edited_at = record.text, record.created_at
        fields += ["text", "edited_at"]
        if html:
            message.html = sanitize_html(html)
            fields.append("html")
    elif record.kind == "delete" and message.deleted_at is None:
        message.deleted_at = record.created_at
        fields.append("deleted_at")
    record.message = message
    record.save(update_fields=["message", "previous_text"])
    if fields:
        message.save(update_fields=fields)
        if "text" in fields:
            search.index_message(message.pk, message.workspace_id, message.conversation_id, message.text)
    publish(
        message.workspace_id,
        "message.updated",
        message.conversation_id,
        message=message.pk,
        event=record.kind,
        emoji=record.emoji,
    )


@transaction.atomic
def do_post_public(account: ChannelAccount, *, text: str, author: User | None = None) -> Message:
    """Publish a standalone public post (not a reply) from one of our accounts, through the outbox.

    Used by the knowledge base to share a new article as a short tip. The post is an outbound
    public message with no `reply_to`, in one resolved "own posts" conversation per account
    (its contact stands for the account itself), so it is delivered, retried and shown like
    any reply. Added for issue 6 (kb social posting); nothing else in the inbox depends on it.
    """
    from madoguchi.contacts.models import Contact

    text = _check_text(text, None)
    thread_key = f"own-posts:{account.pk}"
    conversation = (
        Conversation.objects.select_for_update().filter(channel_account=account, thread_key=thread_key).first()
    )
    if conversation is None:
        identity = Identity.objects.filter(
            workspace_id=account.workspace_id, kind=account.kind, external_id=f"self:{account.pk}"
        ).first()
        if identity is None:
            contact = Contact.objects.create(workspace_id=account.workspace_id, name=account.name)
            identity = Identity.objects.create(
                # No handle: adapters that mention the recipient (Mastodon) must not mention us.
                workspace_id=account.workspace_id, contact=contact, kind=account.kind,
                external_id=f"self:{account.pk}", display_name=account.name,
            )
        conversation = do_create_conversation(
            channel_account=account, identity=identity, subject=_("Posts from %(name)s") % {"name": account.name},
            thread_key=thread_key,
        )
    now = timezone.now()
    message = _add_message(
        conversation, direction=Direction.OUTBOUND, channel_account=account, author=author, text=text,
        public=True, created_at=now, delivery=Delivery.QUEUED, language=detect_language(text),
    )
    outbox = Outbox.objects.create(
        workspace_id=account.workspace_id, message=message, idempotency_key=f"mdg-{uuid.uuid4().hex}", next_attempt_at=now
    )
    conversation.status = Status.RESOLVED
    conversation.resolved_at = conversation.resolved_at or now
    conversation.waiting_since = None
    conversation.last_message_at = now
    conversation.preview = _preview(text)
    conversation.message_count += 1
    conversation.save()
    _conversation_event(conversation, "message.created", message=message.pk, direction="out")
    transaction.on_commit(lambda: _enqueue_delivery(outbox.pk))
    return message


def do_record_outbound(
    conversation: Conversation,
    *,
    author: User | None,
    text: str,
    html: str = "",
    channel_account: ChannelAccount | None = None,
    external_id: str | None = None,
    public: bool = False,
    raw: dict | None = None,
    created_at: dt.datetime | None = None,
) -> Message:
    """Record something we already said to the customer outside the outbox (a call an agent made,
    a provider's outbound call event): delivery "sent", nothing queued, nothing sent.

    Idempotent on (account, external id): a provider's retry returns the stored message.

    How the conversation moves, compared with do_reply: a recorded message answers the customer
    only if it is at least as recent as their latest message. Then, as a reply does, it ends
    their wait (waiting_since, first response) and a new or open conversation becomes pending;
    a snoozed one stays snoozed (a logged call does not cancel the agent's chosen wake-up) and a
    resolved one stays resolved. A message recorded late, older than what the customer wrote
    since, is only history: the customer is still waiting. An author with nobody assigned takes
    the conversation, as with a reply; a provider's event (no author) assigns nobody.
    """
    text = text.strip()
    if not text:
        raise InboxError(_("Write something before sending."))
    account = channel_account or conversation.channel_account
    if external_id:
        existing = Message.objects.filter(channel_account=account, external_id=external_id).first()
        if existing is not None:
            return existing
    try:
        with transaction.atomic():
            return _record_outbound(
                conversation,
                author=author,
                text=text,
                html=html,
                account=account,
                external_id=external_id,
                public=public,
                raw=raw,
                created_at=created_at or timezone.now(),
            )
    except IntegrityError:
        # The same external id was stored meanwhile (a concurrent retry): that one stands.
        if not external_id:
            raise
        return Message.objects.get(channel_account=account, external_id=external_id)


def _record_outbound(
    conversation: Conversation,
    *,
    author: User | None,
    text: str,
    html: str,
    account: ChannelAccount,
    external_id: str | None,
    public: bool,
    raw: dict | None,
    created_at: dt.datetime,
) -> Message:
    conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
    message = _add_message(
        conversation,
        direction=Direction.OUTBOUND,
        channel_account=account,
        author=author,
        text=text,
        html=sanitize_html(html),
        external_id=external_id or None,
        public=public,
        language=conversation.language,
        created_at=created_at,
        delivery=Delivery.SENT,
        raw=raw or {},
    )
    last_inbound_at = (
        conversation.messages.filter(direction=Direction.INBOUND)
        .order_by("-created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    answers = last_inbound_at is None or created_at >= last_inbound_at
    if answers:
        if conversation.status in (Status.NEW, Status.OPEN):
            conversation.status = Status.PENDING
        conversation.waiting_since = None
        conversation.first_response_at = conversation.first_response_at or created_at
        if author is not None and conversation.assignee_id is None:
            conversation.assignee = author
    if created_at >= conversation.last_message_at:
        conversation.last_message_at = created_at
        conversation.preview = _preview(text)
    conversation.message_count += 1
    conversation.save()
    _conversation_event(conversation, "message.created", message=message.pk, direction="out")
    return message
