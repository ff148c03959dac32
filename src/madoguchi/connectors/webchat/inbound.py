"""What a visitor sends through the widget, handed to the one ingest entry point.

A message becomes an InboundItem with ``thread_id`` = the visitor id (one running conversation per
visitor; a message after "resolved" reopens it) and an external id derived from the widget's own
client message id, so a retried POST is stored once. Files go the inbox's attachment path
(``InboundItem.attachments``). A read mark becomes an InboundEvent ("read") on the agent's reply;
typing is only announced, never stored.
"""

from __future__ import annotations

import re

from madoguchi.connectors.base import InboundAttachment, InboundAuthor, InboundEvent, InboundItem
from madoguchi.connectors.models import ChannelAccount
from madoguchi.connectors.webchat import queries
from madoguchi.connectors.webchat.widget import MAX_TEXT, Visitor
from madoguchi.inbox.events import publish
from madoguchi.inbox.models import Delivery, Direction, Message
from madoguchi.ingest.actions import IngestResult, do_ingest, do_ingest_event

_CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


class VisitorError(ValueError):
    """Something the widget sent that we refuse, with a reason for the visitor."""


def author_of(visitor: Visitor, language: str = "") -> InboundAuthor:
    return InboundAuthor(
        external_id=visitor.id,
        handle=visitor.email or f"visitor-{visitor.id[-6:]}",
        display_name=visitor.name,
        email=visitor.email,
        language=language if language in ("ja", "en") else "",
    )


def do_visitor_message(
    account: ChannelAccount,
    visitor: Visitor,
    *,
    text: str,
    client_id: str,
    language: str = "",
    attachments: list[InboundAttachment] | None = None,
    page_url: str = "",
) -> IngestResult:
    """Store what the visitor wrote (idempotent on the widget's client id)."""
    text = text.replace("\r\n", "\n").replace("\x00", "").strip()  # PostgreSQL text refuses NUL
    if not text and not attachments:
        raise VisitorError("empty message")
    if len(text) > MAX_TEXT:
        raise VisitorError("message too long")
    if not _CLIENT_ID.match(client_id):
        raise VisitorError("bad client id")
    item = InboundItem(
        external_id=f"wc:{visitor.id}:{client_id}",
        author=author_of(visitor, language),
        text=text,
        thread_id=visitor.id,
        attachments=attachments or [],
        raw={"page": page_url[:500]} if page_url else {},
    )
    return do_ingest(account, item)


def do_visitor_read(account: ChannelAccount, visitor: Visitor, up_to: int) -> int:
    """The visitor has seen the team's replies up to message `up_to`: one read mark on the latest
    of them (agents see "Read" up to it). Returns the message id marked, or 0."""
    target = (
        Message.objects.filter(
            conversation__channel_account=account,
            conversation__thread_key=visitor.id,
            direction=Direction.OUTBOUND,
            delivery=Delivery.SENT,
            id__lte=up_to,
            external_id__isnull=False,
        )
        .order_by("-id")
        .values_list("id", "external_id")
        .first()
    )
    if target is None:
        return 0
    message_id, external_id = target
    do_ingest_event(
        account,
        InboundEvent(
            external_id=f"read:{visitor.id}:{message_id}",
            kind="read",
            author=author_of(visitor),
            target_external_id=external_id or "",
        ),
    )
    return message_id


def do_visitor_typing(account: ChannelAccount, visitor: Visitor) -> bool:
    """Tell the agents on the visitor's conversation that the visitor is typing."""
    conversation = queries.visitor_conversation(account, visitor)
    if conversation is None:
        return False
    publish(account.workspace_id, "visitor.typing", conversation.pk, name=visitor.name)
    return True
