"""The one entry point for everything that arrives: normalize, dedupe, thread, store, notify."""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from pydantic import ValidationError

from madoguchi.connectors.base import InboundEvent, InboundItem
from madoguchi.connectors.models import ChannelAccount
from madoguchi.contacts.actions import do_get_or_create_identity
from madoguchi.inbox import actions as inbox_actions
from madoguchi.inbox.models import Conversation, Message, MessageEvent
from madoguchi.ingest.models import Post, Quarantine
from madoguchi.listening import actions as listening
from madoguchi.text.normalize import detect_language

logger = logging.getLogger(__name__)


@dataclass
class IngestResult:
    """What became of an inbound item."""

    created: bool
    message: Message | None = None
    post: Post | None = None
    quarantine: Quarantine | None = None
    dropped: bool = False  # a stream item that matched no listening rule

    @property
    def conversation_id(self) -> int | None:
        return self.message.conversation_id if self.message else None


def _find_conversation(account: ChannelAccount, item: InboundItem, contact_id: int) -> Conversation | None:
    """Thread an item: reply chain first, then the platform's thread id, then the identity's latest
    conversation on this account if it was active within the threading window (even if resolved:
    the customer's message reopens it)."""
    if item.reply_to:
        parent = (
            Message.objects.filter(
                workspace_id=account.workspace_id, channel_account=account, external_id__in=item.reply_to
            )
            .select_related("conversation")
            .order_by("-id")
            .first()
        )
        if parent is not None:
            return parent.conversation
    if item.thread_id:
        conv = (
            Conversation.objects.filter(channel_account=account, thread_key=item.thread_id)
            .order_by("-last_message_at")
            .first()
        )
        if conv is not None:
            return conv
        return None  # a new platform thread is a new conversation
    window = timezone.now() - dt.timedelta(hours=settings.THREADING_WINDOW_HOURS)
    return (
        Conversation.objects.filter(
            channel_account=account, contact_id=contact_id, last_message_at__gte=window
        )
        .order_by("-last_message_at")
        .first()
    )


def do_ingest(account: ChannelAccount, item: InboundItem) -> IngestResult:
    """Store an inbound item exactly once (idempotent on account + external id) and notify after commit."""
    # Listening decides first, before any query: drop (a stream item matching no rule), capture on
    # the stream, or open a conversation (mentions of the brand's own accounts), with triage.
    decision = listening.decide(account, item)
    if decision.drop:
        return IngestResult(created=False, dropped=True)
    item = decision.item
    existing = Message.objects.filter(channel_account=account, external_id=item.external_id).first()
    if existing is not None:
        return IngestResult(created=False, message=existing)
    if item.route == "stream":
        post = Post.objects.filter(channel_account=account, external_id=item.external_id).first()
        if post is not None:
            return IngestResult(created=False, post=post)
    try:
        with transaction.atomic():
            result = _ingest(account, item, decision.post_fields)
    except IntegrityError:
        # Two deliveries of the same item raced; the other one stored it.
        message = Message.objects.filter(channel_account=account, external_id=item.external_id).first()
        post = Post.objects.filter(channel_account=account, external_id=item.external_id).first()
        if message is None and post is None:
            raise
        return IngestResult(created=False, message=message, post=post)
    except inbox_actions.InboxError as exc:
        return IngestResult(created=False, quarantine=do_quarantine(account, str(exc), item.model_dump_json()))
    ChannelAccount.objects.filter(pk=account.pk).update(last_receive_at=timezone.now())
    return result


def _ingest(account: ChannelAccount, item: InboundItem, triage: dict[str, Any]) -> IngestResult:
    identity = do_get_or_create_identity(account.workspace_id, account.kind, item.author)
    created_at = item.created_at or timezone.now()
    text = item.text
    language = item.language or item.author.language or detect_language(text)
    post = None
    if item.public or item.route == "stream":
        post = Post.objects.create(
            workspace_id=account.workspace_id,
            channel_account=account,
            external_id=item.external_id,
            contact_id=identity.contact_id,
            identity=identity,
            text=text,
            url=item.url,
            language=language,
            created_at=created_at,
            raw=item.raw,
            **triage,
        )
        do_apply_pending_post_events([post])
    if item.route == "stream":
        return IngestResult(created=True, post=post)
    conversation = _find_conversation(account, item, identity.contact_id)
    if conversation is None:
        conversation = inbox_actions.do_create_conversation(
            channel_account=account,
            identity=identity,
            subject=item.subject or "",
            thread_key=item.thread_id,
            language=language,
            created_at=created_at,
        )
    message = inbox_actions.do_receive_message(
        conversation,
        identity=identity,
        text=text,
        html=item.html,
        external_id=item.external_id,
        reply_to_external_id=item.reply_to[0] if item.reply_to else "",
        public=item.public,
        language=language,
        created_at=created_at,
        attachments=[
            inbox_actions.NewAttachment(a.filename, a.content_type, a.content) for a in item.attachments
        ],
        raw=item.raw,
    )
    if post is not None:
        Post.objects.filter(pk=post.pk).update(conversation=conversation)
    inbox_actions.do_apply_pending_events(message)
    return IngestResult(created=True, message=message, post=post)


def do_ingest_event(account: ChannelAccount, event: InboundEvent) -> MessageEvent:
    """Keep a reaction, edit, deletion, follow/unfollow or read mark; never dropped.

    Idempotent on (account, event.external_id). The event hangs on the message it targets, or
    waits for it when the platform delivered the event first. Edits and deletions also apply to a
    captured public post with that id on this account (a listening stream item, which has no
    message), now or when the post is captured later.
    """
    existing = MessageEvent.objects.filter(channel_account=account, external_id=event.external_id).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            identity = do_get_or_create_identity(account.workspace_id, account.kind, event.author)
            record = inbox_actions.do_record_event(
                account,
                identity,
                inbox_actions.NewEvent(
                    external_id=event.external_id,
                    kind=event.kind,
                    target_external_id=event.target_external_id,
                    emoji=event.emoji,
                    text=event.text,
                    html=event.html,
                    created_at=event.created_at,
                    raw=event.raw,
                ),
            )
            if record.kind in POST_EVENT_KINDS and record.target_external_id:
                post = (
                    Post.objects.select_for_update()
                    .filter(channel_account=account, external_id=record.target_external_id)
                    .first()
                )
                if post is not None:
                    _apply_post_event(post, record)
    except IntegrityError:
        # Two deliveries of the same event raced; the other one stored it.
        return MessageEvent.objects.get(channel_account=account, external_id=event.external_id)
    ChannelAccount.objects.filter(pk=account.pk).update(last_receive_at=timezone.now())
    return record


POST_EVENT_KINDS = ("edit", "delete")


def _apply_post_event(post: Post, record: MessageEvent) -> None:
    """An edit or deletion on a captured post: the latest edit wins, the first deletion counts."""
    if record.kind == "edit" and (post.edited_at is None or record.created_at > post.edited_at):
        if not record.previous_text:  # not already taken from the post's message
            record.previous_text = post.text
            record.save(update_fields=["previous_text"])
        Post.objects.filter(pk=post.pk).update(text=record.text, edited_at=record.created_at)
        post.text, post.edited_at = record.text, record.created_at
    elif record.kind == "delete" and post.deleted_at is None:
        Post.objects.filter(pk=post.pk).update(deleted_at=record.created_at)
        post.deleted_at = record.created_at


def do_apply_pending_post_events(posts: list[Post]) -> int:
    """Apply the edits and deletions that arrived before these freshly captured posts (one query
    for the whole list); returns how many were applied."""
    by_target: dict[tuple[int, str], Post] = {(p.channel_account_id, p.external_id): p for p in posts}
    if not by_target:
        return 0
    pending = MessageEvent.objects.filter(
        channel_account_id__in={p.channel_account_id for p in posts},
        target_external_id__in=[p.external_id for p in posts],
        kind__in=POST_EVENT_KINDS,
    ).order_by("created_at", "id")
    applied = 0
    for record in pending:
        post = by_target.get((record.channel_account_id, record.target_external_id))
        if post is not None:
            _apply_post_event(post, record)
            applied += 1
    return applied


def do_quarantine(account: ChannelAccount | None, reason: str, payload: str | bytes, workspace_id: int | None = None) -> Quarantine:
    """Keep an item we could not ingest, with the reason, for an admin to look at."""
    if isinstance(payload, bytes):
        payload = payload.decode("utf-8", errors="replace")
    ws = workspace_id or (account.workspace_id if account else None)
    if ws is None:  # the row needs a workspace: the insert would fail anyway
        raise ValueError("do_quarantine needs an account or a workspace_id")
    logger.warning("quarantined inbound item for account %s: %s", account.pk if account else "-", reason)
    return Quarantine.objects.create(
        workspace_id=ws, channel_account=account, reason=reason[:5000], payload=payload[:2_000_000]
    )


def do_ingest_payload(account: ChannelAccount, payload: dict[str, Any] | bytes | str) -> IngestResult:
    """Validate a raw normalized item (from the API or a custom channel) and ingest it, or quarantine it."""
    try:
        data = json.loads(payload) if isinstance(payload, bytes | str) else payload
        item = InboundItem.model_validate(data)
    except (ValueError, ValidationError) as exc:
        raw = payload if isinstance(payload, bytes | str) else json.dumps(payload, default=str)
        return IngestResult(created=False, quarantine=do_quarantine(account, _explain(exc), raw))
    return do_ingest(account, item)


def _explain(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'item'}: {err['msg']}" for err in exc.errors()
        )
    return f"not valid JSON: {exc}"


def do_resolve_quarantine(quarantine: Quarantine) -> None:
    """An admin has dealt with a quarantined item."""
    Quarantine.objects.filter(pk=quarantine.pk).update(resolved_at=timezone.now())


# ---------------------------------------------------------------- batches (firehoses, replay)


def do_ingest_posts(account: ChannelAccount, items: list[InboundItem]) -> list[IngestResult]:
    """`do_ingest` for a batch of items, with the same outcome item by item, in one transaction.

    For firehoses and replay: stream items are decided together (`listening.decide_many`: one
    normalization and one automaton scan for the whole batch), and the captured ones are stored
    with a handful of queries whatever the batch size: one each to find duplicates among posts and
    messages, one for the authors' identities, one for their repeat counts, and bulk inserts of new
    contacts, identities and posts. Anything else (conversation items, and stream items that
    mention one of the brand's own accounts) goes through `do_ingest` one by one, in order; stream
    posts gathered before it by the same author or with the same id are stored first, so each
    item sees what the items before it left, as in the item-by-item path. If a concurrent writer makes a bulk insert fail, the whole
    batch is rolled back and ingested item by item.
    """
    items = list(items)
    results: list[IngestResult | None] = [None] * len(items)
    stream = [i for i, item in enumerate(items) if item.route == "stream"]
    decisions = dict(zip(stream, listening.decide_many(account, [items[i] for i in stream]), strict=True))
    todo = []
    for i in range(len(items)):
        decision = decisions.get(i)
        if decision is not None and decision.drop:
            results[i] = IngestResult(created=False, dropped=True)
        else:
            todo.append(i)
    if not todo:
        return [r for r in results if r is not None]
    created = False
    try:
        with transaction.atomic():
            group: list[int] = []
            pending: set[str] = set()  # authors and external ids in `group`
            for i in todo:
                decision = decisions.get(i)
                item = items[i]
                if decision is not None and not decision.mention:
                    group.append(i)
                    pending.update((f"a:{item.author.external_id}", f"x:{item.external_id}"))
                    continue
                # The item goes through do_ingest now. If it shares an author or an id with posts
                # gathered before it, those are stored first, so that it finds them as the
                # item-by-item path would; otherwise the gathering goes on past it.
                if f"a:{item.author.external_id}" in pending or f"x:{item.external_id}" in pending:
                    created = _store_posts(account, items, group, decisions, results) or created
                    group, pending = [], set()
                results[i] = do_ingest(account, item)
            created = _store_posts(account, items, group, decisions, results) or created
    except IntegrityError:
        # A concurrent writer stored one of these authors or posts first: redo item by item,
        # where every item handles its own race.
        return [do_ingest(account, item) for item in items]
    if created:
        ChannelAccount.objects.filter(pk=account.pk).update(last_receive_at=timezone.now())
    return [r for r in results if r is not None]


_IDENTITY_FIELDS = ("handle", "display_name", "avatar_url", "followers", "language")


def _chunked(values: list[str], size: int = 500):
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _store_posts(
    account: ChannelAccount,
    items: list[InboundItem],
    group: list[int],
    decisions: dict[int, listening.StreamDecision],
    results: list[IngestResult | None],
) -> bool:
    """Store the captured stream items `group` (indexes into items) in bulk; True if any was new."""
    from madoguchi.contacts.models import Contact, Identity

    if not group:
        return False
    external_ids = list({items[i].external_id for i in group})
    messages: dict[str | None, Message] = {}
    posts: dict[str, Post] = {}
    for chunk in _chunked(external_ids):
        messages.update(
            (m.external_id, m) for m in Message.objects.filter(channel_account=account, external_id__in=chunk)
        )
        posts.update((p.external_id, p) for p in Post.objects.filter(channel_account=account, external_id__in=chunk))
    fresh = []
    seen: set[str] = set()
    for i in group:
        external_id = items[i].external_id
        if external_id in messages:
            results[i] = IngestResult(created=False, message=messages[external_id])
        elif external_id in posts:
            results[i] = IngestResult(created=False, post=posts[external_id])
        elif external_id not in seen:  # later copies in this batch are duplicates of this one
            seen.add(external_id)
            fresh.append(i)
    if not fresh:
        return False

    author_ids = list({items[i].author.external_id for i in fresh})
    identities: dict[str, Identity] = {}
    for chunk in _chunked(author_ids):
        identities.update(
            (x.external_id, x)
            for x in Identity.objects.filter(workspace_id=account.workspace_id, kind=account.kind, external_id__in=chunk)
        )
    base = listening.repeats_of_many(x.pk for x in identities.values())
    repeats = {external_id: base.get(x.pk, 0) for external_id, x in identities.items()}

    now = timezone.now()
    new_contacts: dict[str, Contact] = {}
    new_identities: dict[str, Identity] = {}
    changed: dict[str, Identity] = {}
    new_posts: list[tuple[int, Post]] = []
    for i in fresh:
        item, decision = items[i], decisions[i]
        author = item.author
        identity = identities.get(author.external_id)
        if identity is None:
            # As contacts.actions.do_get_or_create_identity creates them.
            new_contacts[author.external_id] = Contact(
                workspace_id=account.workspace_id,
                name=author.display_name or author.handle or author.email or author.external_id,
                email=author.email if "@" in author.email else "",
                language=author.language,
            )
            identity = Identity(
                workspace_id=account.workspace_id,
                kind=account.kind,
                external_id=author.external_id,
                **{f: getattr(author, f) for f in _IDENTITY_FIELDS},
            )
            identities[author.external_id] = new_identities[author.external_id] = identity
        else:
            for f in _IDENTITY_FIELDS:
                value = getattr(author, f)
                if value not in ("", None) and getattr(identity, f) != value:
                    setattr(identity, f, value)
                    identity.updated_at = now
                    if identity.pk is not None:
                        changed[author.external_id] = identity
        fields = listening.triage_fields(
            item,
            decision.language,
            decision.rule_id,
            repeats.get(author.external_id, 0) if decision.with_repeats else 0,
        )
        repeats[author.external_id] = repeats.get(author.external_id, 0) + 1
        post = Post(
            workspace_id=account.workspace_id,
            channel_account=account,
            external_id=item.external_id,
            text=item.text,
            url=item.url,
            language=decision.language,
            created_at=item.created_at or timezone.now(),
            raw=item.raw,
            **fields,
        )
        posts[item.external_id] = post
        new_posts.append((i, post))

    if new_contacts:
        Contact.objects.bulk_create(list(new_contacts.values()), batch_size=500)
        for external_id, identity in new_identities.items():
            identity.contact = new_contacts[external_id]
        Identity.objects.bulk_create(list(new_identities.values()), batch_size=500)
    if changed:
        Identity.objects.bulk_update(list(changed.values()), [*_IDENTITY_FIELDS, "updated_at"], batch_size=500)
    for i, post in new_posts:
        identity = identities[items[i].author.external_id]
        post.identity = identity
        post.contact_id = identity.contact_id
    Post.objects.bulk_create([p for _, p in new_posts], batch_size=500)
    listening.note_captured(account.workspace_id, [p.pk for _, p in new_posts])
    for i, post in new_posts:
        results[i] = IngestResult(created=True, post=post)
    for i in group:
        if results[i] is None:  # a second copy of an item stored just now
            results[i] = IngestResult(created=False, post=posts[items[i].external_id])
    return True
