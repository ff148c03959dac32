"""Mail threading against the inbox: the subject token fallback, reply headers, bounces.

These read the inbox's messages by their external ids (the Message-IDs we store) to build
threading headers; the only write is through `inbox.actions.do_record_send_failure`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db.models import Q

from madoguchi.connectors.base import InboundItem
from madoguchi.connectors.models import ChannelAccount
from madoguchi.contacts.models import Identity
from madoguchi.inbox import actions as inbox_actions
from madoguchi.inbox.models import Conversation, Direction, Message, Outbox, OutboxStatus

TOKEN_RE = re.compile(r"\[#(\d{1,12})\]")
if TYPE_CHECKING:
    from madoguchi.connectors.email.inbound import Bounce

# References grows with every reply; RFC 5322 lets us trim the middle (keep the root and the newest).
MAX_REFERENCES = 20


def token(conversation_id: int) -> str:
    """The conversation token our outgoing subjects carry, for clients that drop In-Reply-To."""
    return f"[#{conversation_id}]"


def form_account_for_reply(account: ChannelAccount, item: InboundItem) -> ChannelAccount | None:
    """The brand's web form account, when this mail answers our email to a form conversation.

    A web form customer gets our answers by email (connectors/webform/outbound.py); their answer
    to that mail belongs in the same conversation, not in a new one on the mailbox. Trusted only
    when the sender is the conversation's customer, so a forged In-Reply-To cannot put mail into
    someone else's conversation.
    """
    if not item.reply_to:
        return None
    parent = (
        Message.objects.select_related("channel_account", "conversation")
        .filter(
            workspace_id=account.workspace_id,
            channel_account__brand_id=account.brand_id,
            channel_account__kind="webform",
            channel_account__is_active=True,
            external_id__in=item.reply_to,
        )
        .order_by("-id")
        .first()
    )
    if parent is None or parent.channel_account is None:
        return None
    if not Identity.objects.filter(
        workspace_id=account.workspace_id,
        kind="webform",
        external_id=item.author.external_id,
        contact_id=parent.conversation.contact_id,
    ).exists():
        return None
    return parent.channel_account


def with_token_fallback(account: ChannelAccount, item: InboundItem) -> InboundItem:
    """Thread by the subject token when the mail's own headers name nothing we know.

    The token is only trusted for a conversation on this mailbox whose customer is the sender,
    so a guessed number cannot put mail into someone else's conversation.
    """
    conv_id = item.raw.get("conversation_token")
    if not conv_id:
        return item
    if (
        item.reply_to
        and Message.objects.filter(channel_account=account, external_id__in=item.reply_to).exists()
    ):
        return item
    conversation = Conversation.objects.filter(pk=conv_id, channel_account=account).first()
    if conversation is None:
        return item
    if not Identity.objects.filter(
        workspace_id=account.workspace_id,
        kind=account.kind,
        external_id=item.author.external_id,
        contact_id=conversation.contact_id,
    ).exists():
        return item
    anchor = (
        Message.objects.filter(
            conversation=conversation, channel_account=account, external_id__isnull=False
        )
        .order_by("-id")
        .values_list("external_id", flat=True)
        .first()
    )
    if not anchor:
        return item
    return item.model_copy(update={"reply_to": [*item.reply_to, anchor][:100]})


@dataclass
class ReplyContext:
    """What an outgoing mail needs to thread: the conversation and the parent's ids."""

    conversation_id: int | None
    in_reply_to: str
    references: list[str]
    language: str = ""


def reply_context(account: ChannelAccount, idempotency_key: str, in_reply_to: str) -> ReplyContext:
    """Threading headers for a reply: References = the parent's References + the parent."""
    row = (
        Outbox.objects.filter(idempotency_key=idempotency_key)
        .values_list("message__conversation_id", "message__conversation__language")
        .first()
    )
    conversation_id, language = row if row else (None, "")
    references: list[str] = []
    if in_reply_to:
        parent = (
            Message.objects.filter(channel_account=account, external_id=in_reply_to)
            .values_list("raw", "conversation_id")
            .first()
        )
        if parent is not None:
            raw, parent_conversation = parent
            conversation_id = conversation_id or parent_conversation
            references = [r for r in (raw or {}).get("references", []) if isinstance(r, str)]
        references = [r for r in references if r != in_reply_to] + [in_reply_to]
    if len(references) > MAX_REFERENCES:
        references = references[:1] + references[-(MAX_REFERENCES - 1) :]
    return ReplyContext(conversation_id, in_reply_to, references, language or "")


def mark_bounced(account: ChannelAccount, bounce: Bounce) -> bool:
    """Fail the outbound message a DSN is about; True if it was one of ours on this mailbox."""
    original = bounce.original_message_id
    if not original or bounce.action != "failed":
        return (
            bool(original)
            and Message.objects.filter(
                channel_account=account, external_id=original, direction=Direction.OUTBOUND
            ).exists()
        )
    outbox = (
        Outbox.objects.select_related("message__conversation")
        .filter(
            # Our answers to web form customers leave through this mailbox too.
            Q(message__channel_account=account)
            | Q(
                message__channel_account__kind="webform",
                message__channel_account__brand_id=account.brand_id,
                message__workspace_id=account.workspace_id,
            ),
            message__external_id=original,
            message__direction=Direction.OUTBOUND,
        )
        .first()
    )
    if outbox is None:
        return False
    if outbox.status != OutboxStatus.FAILED:
        inbox_actions.do_record_send_failure(outbox, bounce.reason, permanent=True)
    return True
