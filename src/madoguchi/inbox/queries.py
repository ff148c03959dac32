"""Reads for the inbox: access checks, views (filters) with cursor pagination, conversation history."""

from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import dataclass, field

from django.db.models import Count, Min, Q, QuerySet
from django.http import Http404
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _

from madoguchi.accounts.models import User
from madoguchi.accounts.queries import workspace_id_of
from madoguchi.inbox import search
from madoguchi.inbox.models import Conversation, Message, Outbox, OutboxStatus, Status

VIEWS = {
    "todo": _("To do"),
    "mine": _("Mine"),
    "unassigned": _("Unassigned"),
    "team": _("My teams"),
    "all": _("All"),
    "pending": _("Pending"),
    "snoozed": _("Snoozed"),
    "resolved": _("Resolved"),
}
ACTIVE = [Status.NEW, Status.OPEN, Status.PENDING]


def access_conversation(user: User, conversation_id: int, *, lock: bool = False) -> Conversation:
    """The conversation if it is in the user's workspace, else 404."""
    qs = Conversation.objects.select_related("contact", "channel_account", "brand", "assignee", "team")
    if lock:
        # Lock only the conversation row: PostgreSQL refuses FOR UPDATE on the nullable side of
        # the outer joins that select_related makes for assignee and team.
        qs = qs.select_for_update(of=("self",))
    conv = qs.filter(pk=conversation_id, workspace_id=workspace_id_of(user)).first()
    if conv is None:
        raise Http404
    return conv


def access_message(user: User, message_id: int) -> Message:
    msg = Message.objects.select_related("conversation").filter(pk=message_id, workspace_id=workspace_id_of(user)).first()
    if msg is None:
        raise Http404
    return msg


def may_assign(user: User, conversation: Conversation, assignee: User | None) -> bool:
    """Agents may take a conversation or give up their own; reassigning others' work is a manager's call."""
    if user.has_role("manager"):
        return True
    taking = assignee is None or assignee.pk == user.pk
    return taking and conversation.assignee_id in (None, user.pk)


@dataclass
class InboxFilter:
    """One inbox view plus optional narrowing filters, as the UI and the API take them."""

    view: str = "todo"
    channel: str = ""
    brand: int | None = None
    label: str = ""
    language: str = ""
    priority: int | None = None
    assignee: int | None = None
    q: str = ""
    extra: dict = field(default_factory=dict)


def conversations_for(user: User, f: InboxFilter) -> QuerySet[Conversation]:
    """The conversations of a view, newest activity first, scoped to the user's workspace."""
    qs = Conversation.objects.filter(workspace_id=workspace_id_of(user))
    view = f.view if f.view in VIEWS else "todo"
    if view == "todo":
        qs = qs.filter(status__in=[Status.NEW, Status.OPEN])
    elif view == "mine":
        qs = qs.filter(assignee=user, status__in=ACTIVE)
    elif view == "unassigned":
        qs = qs.filter(assignee__isnull=True, status__in=ACTIVE)
    elif view == "team":
        qs = qs.filter(team__members=user, status__in=ACTIVE)
    elif view in ("pending", "snoozed", "resolved"):
        qs = qs.filter(status=view)
    if f.channel:
        qs = qs.filter(channel_account__kind=f.channel)
    if f.brand:
        qs = qs.filter(brand_id=f.brand)
    if f.label:
        qs = qs.filter(labels__name=f.label)
    if f.language:
        qs = qs.filter(language=f.language)
    if f.priority is not None:
        qs = qs.filter(priority=f.priority)
    if f.assignee:
        qs = qs.filter(assignee_id=f.assignee)
    if f.q:
        sub = search.conversation_ids_matching(workspace_id_of(user), f.q)
        if sub is None:
            return qs.none()
        qs = qs.filter(id__in=sub)
    return qs.order_by("-last_message_at", "-id")


def encode_cursor(conv: Conversation) -> str:
    raw = json.dumps([conv.last_message_at.isoformat(), conv.pk]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, int] | None:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, pk = json.loads(raw)
        when = parse_datetime(at)
        if when is None or not isinstance(pk, int):
            return None
        return when, pk
    except (ValueError, TypeError):
        return None


def page(qs: QuerySet[Conversation], cursor: str = "", limit: int = 50) -> tuple[list[Conversation], str]:
    """One page after `cursor` (keyset pagination: as fast on page 1,000 as on page 1)."""
    if cursor:
        decoded = decode_cursor(cursor)
        if decoded is None:
            raise ValueError("invalid cursor")
        at, pk = decoded
        # The redundant `<= at` gives the index a range to start from; the OR alone is only a
        # filter, so PostgreSQL would read every row above the cursor (slow on deep pages).
        qs = qs.filter(Q(last_message_at__lte=at), Q(last_message_at__lt=at) | Q(id__lt=pk))
    rows = list(
        qs.select_related("contact", "channel_account", "assignee").prefetch_related("labels")[: limit + 1]
    )
    next_cursor = encode_cursor(rows[limit - 1]) if len(rows) > limit else ""
    return rows[:limit], next_cursor


def counts_for(user: User) -> dict[str, int]:
    """Numbers beside the views in the sidebar."""
    base = Conversation.objects.filter(workspace_id=workspace_id_of(user))
    return {
        "todo": base.filter(status__in=[Status.NEW, Status.OPEN]).count(),
        "mine": base.filter(assignee=user, status__in=ACTIVE).count(),
        "unassigned": base.filter(assignee__isnull=True, status__in=ACTIVE).count(),
    }


def history(conversation: Conversation, before: int | None = None, limit: int = 50) -> tuple[list[Message], bool]:
    """The latest `limit` messages (or those before message id `before`), oldest first, and whether more exist."""
    qs = conversation.messages.select_related("identity", "author").prefetch_related("attachments", "events")
    if before:
        qs = qs.filter(id__lt=before)
    rows = list(qs.order_by("-id")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    rows.reverse()
    return rows, more


# A due reply the worker has not claimed for this long means no worker is taking tasks: the
# clock re-queues lost rows after a minute, and a running worker sends within seconds.
OUTBOX_STALL = dt.timedelta(minutes=3)


@dataclass(frozen=True)
class StalledOutbox:
    count: int
    since: dt.datetime


def stalled_outbox(workspace_id: int, now: dt.datetime | None = None) -> StalledOutbox | None:
    """Replies of the workspace that have been due for `OUTBOX_STALL` and that no worker holds.

    Rows waiting out a retry back-off are not due yet, so a platform that is down does not count
    here (the channel's own alert says that); this is the worker being down or its lane stuck.
    """
    now = now or timezone.now()
    rows = (
        Outbox.objects.filter(workspace_id=workspace_id, status__in=[OutboxStatus.PENDING, OutboxStatus.SENDING])
        .filter(next_attempt_at__lte=now - OUTBOX_STALL)
        .exclude(locked_until__gt=now)
    )
    found = rows.aggregate(n=Count("pk"), since=Min("next_attempt_at"))
    return StalledOutbox(found["n"], found["since"]) if found["n"] else None
