"""Reads for the widget: a visitor's own conversations and messages, in safe fields only.

A visitor's conversations are those on the widget's account whose thread key is the visitor id
(every visitor message is ingested with ``thread_id`` = visitor id). Nothing else is ever read
for a visitor: not the contact's conversations on other channels, not internal notes, not
replies that have not been delivered yet, not who else is in the team.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Max
from django.urls import reverse
from django.utils import timezone

from madoguchi.connectors.models import ChannelAccount
from madoguchi.connectors.webchat.widget import Visitor, sign_file
from madoguchi.inbox.events import page_cursor
from madoguchi.inbox.models import Conversation, Delivery, Direction, LiveEvent, Message

HISTORY_LIMIT = 100
# How far back the agents' "viewing" pings are looked for when a visitor reloads the page.
READ_LOOKBACK = dt.timedelta(hours=6)


def visitor_conversation_ids(account: ChannelAccount, visitor: Visitor) -> list[int]:
    return list(
        Conversation.objects.filter(channel_account=account, thread_key=visitor.id).values_list("id", flat=True)
    )


def _visible(qs: Any) -> Any:
    """Customer messages, and replies once delivered; never notes, never deleted items."""
    return qs.filter(deleted_at__isnull=True).filter(
        direction__in=[Direction.INBOUND, Direction.OUTBOUND]
    ).exclude(direction=Direction.OUTBOUND, delivery__in=[Delivery.QUEUED, Delivery.FAILED])


def message_payload(message: Message, visitor: Visitor) -> dict[str, Any]:
    """The fields a visitor may see of one message."""
    return {
        "id": message.pk,
        "direction": message.direction,
        "text": message.text,
        "created_at": message.created_at.isoformat(),
        "author": (message.author.display_name if message.author else "") if message.direction == Direction.OUTBOUND else "",
        "attachments": [
            {
                "name": a.filename,
                "size": a.size,
                "type": a.content_type,
                "image": a.is_image,
                "url": reverse("webchat:file", args=[sign_file(visitor.account_id, visitor.id, a.pk)]),
            }
            for a in message.attachments.all()
        ],
    }


def history(account: ChannelAccount, visitor: Visitor, before: int | None = None) -> dict[str, Any]:
    """The visitor's messages (latest HISTORY_LIMIT, oldest first), and how far agents have read.

    The first page also says where the widget's live stream should start (`live_after`, read
    before the messages: a reply sent while they are read then arrives on the stream)."""
    live_after = page_cursor() if before is None else None
    ids = visitor_conversation_ids(account, visitor)
    qs = _visible(Message.objects.filter(conversation_id__in=ids)).select_related("author").prefetch_related("attachments")
    if before:
        qs = qs.filter(id__lt=before)
    rows = list(qs.order_by("-id")[: HISTORY_LIMIT + 1])
    more = len(rows) > HISTORY_LIMIT
    rows = rows[:HISTORY_LIMIT]
    rows.reverse()
    page: dict[str, Any] = {
        "messages": [message_payload(m, visitor) for m in rows],
        "more": more,
        "read_up_to": agent_read_up_to(ids),
    }
    if live_after is not None:
        page["live_after"] = live_after
    return page


def agent_read_up_to(conversation_ids: list[int]) -> int:
    """The id of the last visitor message an agent has seen: before the team's latest reply, before
    the conversation was first opened, or before an agent's recent "viewing" ping."""
    if not conversation_ids:
        return 0
    last_in = (
        Message.objects.filter(conversation_id__in=conversation_ids, direction=Direction.INBOUND)
        .order_by("-id")
        .values("id", "created_at")
        .first()
    )
    if last_in is None:
        return 0
    seen = Conversation.objects.filter(pk__in=conversation_ids).aggregate(at=Max("seen_at"))["at"]
    replied = (
        Message.objects.filter(conversation_id__in=conversation_ids, direction=Direction.OUTBOUND)
        .aggregate(at=Max("created_at"))["at"]
    )
    marks = [t for t in (seen, replied) if t is not None]
    since = max(last_in["created_at"], timezone.now() - READ_LOOKBACK)
    viewed = (
        LiveEvent.objects.filter(
            kind="presence", conversation_id__in=conversation_ids, created_at__gte=since, data__state__in=["viewing", "typing"]
        )
        .order_by("-id")
        .values_list("created_at", flat=True)
        .first()
    )
    if viewed is not None:
        marks.append(viewed)
    if not marks:
        return 0
    upto = max(marks)
    row = (
        Message.objects.filter(conversation_id__in=conversation_ids, direction=Direction.INBOUND, created_at__lte=upto)
        .order_by("-id")
        .values_list("id", flat=True)
        .first()
    )
    return row or 0


def visitor_message(account: ChannelAccount, visitor: Visitor, message_id: int) -> Message | None:
    """One message of the visitor's own conversations that the visitor may see, or None."""
    return (
        _visible(Message.objects.filter(pk=message_id, conversation__channel_account=account, conversation__thread_key=visitor.id))
        .select_related("author")
        .prefetch_related("attachments")
        .first()
    )


def visitor_conversation(account: ChannelAccount, visitor: Visitor) -> Conversation | None:
    """The visitor's latest conversation on this widget."""
    return (
        Conversation.objects.filter(channel_account=account, thread_key=visitor.id).order_by("-last_message_at").first()
    )
