"""Inbox API: conversations (the same views and filters as the agent UI), messages, replies, notes."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from ninja import Field, Query, Router, Schema, Status
from ninja.errors import HttpError

from madoguchi.accounts.api import api_user
from madoguchi.accounts.models import Team, User
from madoguchi.accounts.queries import workspace_id_of, workspace_users
from madoguchi.connectors.queries import check_reply_mode
from madoguchi.inbox import actions, queries
from madoguchi.inbox.models import Conversation, Message

router = Router(tags=["conversations"])

ViewName = Literal["todo", "mine", "unassigned", "team", "all", "pending", "snoozed", "resolved"]
StatusName = Literal["open", "pending", "snoozed", "resolved"]


class Ref(Schema):
    id: int
    name: str


def _user_ref(user: User | None) -> dict | None:
    return {"id": user.pk, "name": user.display_name} if user is not None else None


class ConversationItem(Schema):
    """A row of a conversation list: never the messages themselves."""

    id: int
    status: str
    priority: int
    subject: str
    preview: str
    contact: Ref
    channel: str
    channel_account_id: int
    assignee: Ref | None
    labels: list[str]
    last_message_at: dt.datetime
    waiting_since: dt.datetime | None

    @staticmethod
    def resolve_contact(obj: Conversation) -> dict:
        return {"id": obj.contact_id, "name": str(obj.contact)}

    @staticmethod
    def resolve_channel(obj: Conversation) -> str:
        return obj.channel_account.kind

    @staticmethod
    def resolve_assignee(obj: Conversation) -> dict | None:
        return _user_ref(obj.assignee)

    @staticmethod
    def resolve_labels(obj: Conversation) -> list[str]:
        return [label.name for label in obj.labels.all()]


class ConversationDetail(ConversationItem):
    brand_id: int
    team: Ref | None
    language: str
    message_count: int
    created_at: dt.datetime
    first_response_at: dt.datetime | None
    seen_at: dt.datetime | None
    snoozed_until: dt.datetime | None
    resolved_at: dt.datetime | None

    @staticmethod
    def resolve_team(obj: Conversation) -> dict | None:
        return {"id": obj.team.pk, "name": obj.team.name} if obj.team is not None else None


class ConversationPage(Schema):
    items: list[ConversationItem]
    next_cursor: str = Field(description="Pass as `cursor` for the next page; empty on the last page.")


class AttachmentOut(Schema):
    id: int
    filename: str
    content_type: str
    size: int


class MessageOut(Schema):
    id: int
    conversation_id: int
    direction: str = Field(description="in (customer), out (our reply) or note (internal)")
    text: str
    html: str
    public: bool
    author: Ref | None = Field(description="The agent who wrote a reply or note")
    identity: Ref | None = Field(description="The customer's handle an inbound message came from")
    created_at: dt.datetime
    delivery: str
    attachments: list[AttachmentOut]

    @staticmethod
    def resolve_author(obj: Message) -> dict | None:
        return _user_ref(obj.author)

    @staticmethod
    def resolve_identity(obj: Message) -> dict | None:
        return {"id": obj.identity.pk, "name": obj.identity.label} if obj.identity is not None else None

    @staticmethod
    def resolve_attachments(obj: Message) -> list:
        return list(obj.attachments.all())


class MessagePage(Schema):
    items: list[MessageOut] = Field(description="Newest first")
    next_before: int | None = Field(description="Pass as `before` for older messages; null when none are left.")


class NewMessage(Schema):
    kind: Literal["reply", "note"]
    text: str = Field(min_length=1, max_length=50_000)
    # A reply's way out when the channel offers a choice (Facebook/Instagram comments: a private
    # reply); omitted: as the message answered.
    reply_mode: Literal["public", "private"] | None = None


class ConversationChange(Schema):
    """Only the fields present are changed; `assignee` or `team` null unassigns."""

    status: StatusName | None = None
    snoozed_until: dt.datetime | None = Field(default=None, description="Required with status snoozed")
    assignee: int | None = None
    team: int | None = None
    priority: int | None = Field(default=None, ge=0, le=3)
    labels: list[str] | None = Field(default=None, max_length=20)


class Detail(Schema):
    detail: Any


@router.get(
    "/conversations",
    response={200: ConversationPage, 400: Detail},
    summary="List conversations of a view, newest activity first",
)
def list_conversations(
    request: HttpRequest,
    view: ViewName = "todo",
    channel: str = Query("", max_length=16),
    brand: int | None = None,
    label: str = Query("", max_length=64),
    language: str = Query("", max_length=16),
    priority: int | None = Query(None, ge=0, le=3),
    q: str = Query("", max_length=200),
    cursor: str = Query("", max_length=200),
    limit: int = Query(50, ge=1, le=100),
) -> Any:
    user = api_user(request)
    f = queries.InboxFilter(
        view=view, channel=channel, brand=brand, label=label, language=language, priority=priority, q=q.strip()
    )
    try:
        rows, next_cursor = queries.page(queries.conversations_for(user, f), cursor, limit)
    except ValueError:
        raise HttpError(400, "The cursor is not valid; start again without it.") from None
    return {"items": rows, "next_cursor": next_cursor}


@router.get("/conversations/{conversation_id}", response=ConversationDetail, summary="Get one conversation")
def get_conversation(request: HttpRequest, conversation_id: int) -> Any:
    return queries.access_conversation(api_user(request), conversation_id)


@router.get(
    "/conversations/{conversation_id}/messages",
    response=MessagePage,
    summary="A conversation's messages, newest first",
)
def list_messages(
    request: HttpRequest,
    conversation_id: int,
    before: int | None = Query(None, ge=1, description="Only messages older than this message id"),
    limit: int = Query(50, ge=1, le=100),
) -> Any:
    conversation = queries.access_conversation(api_user(request), conversation_id)
    rows, more = queries.history(conversation, before=before, limit=limit)
    rows.reverse()
    return {"items": rows, "next_before": rows[-1].pk if more and rows else None}


@router.post(
    "/conversations/{conversation_id}/messages",
    response={201: MessageOut, 400: Detail},
    summary="Reply to the customer or add an internal note",
)
def create_message(request: HttpRequest, conversation_id: int, payload: NewMessage) -> Any:
    user = api_user(request)
    conversation = queries.access_conversation(user, conversation_id)
    if payload.kind == "note":
        message = actions.do_add_note(conversation, author=user, text=payload.text)
    else:
        try:
            public = check_reply_mode(conversation, payload.reply_mode or "")
        except ValueError as exc:
            return Status(400, {"detail": str(exc)})
        message = actions.do_reply(conversation, author=user, text=payload.text, public=public)
    return Status(201, message)


@router.patch(
    "/conversations/{conversation_id}",
    response={200: ConversationDetail, 400: Detail, 403: Detail},
    summary="Change status, assignee, team, priority or labels",
)
def change_conversation(request: HttpRequest, conversation_id: int, payload: ConversationChange) -> Any:
    user = api_user(request)
    given = payload.model_fields_set
    with transaction.atomic():
        conversation = queries.access_conversation(user, conversation_id, lock=True)
        if "assignee" in given or "team" in given:
            _assign(user, conversation, payload, given)
        if payload.status is not None:
            until = payload.snoozed_until
            if until is not None and timezone.is_naive(until):
                until = timezone.make_aware(until)
            conversation = actions.do_set_status(conversation, payload.status, actor=user, snoozed_until=until)
        if payload.priority is not None:
            actions.do_set_priority(conversation, payload.priority)
        if payload.labels is not None:
            actions.do_set_labels(conversation, payload.labels)
    return queries.access_conversation(user, conversation_id)


def _assign(user: User, conversation: Conversation, payload: ConversationChange, given: set[str]) -> None:
    assignee, team = conversation.assignee, conversation.team
    if "assignee" in given:
        assignee = workspace_users(user).filter(pk=payload.assignee).first() if payload.assignee else None
        if payload.assignee and assignee is None:
            raise HttpError(400, "That agent does not exist.")
    if "team" in given:
        team = Team.objects.filter(pk=payload.team, workspace_id=workspace_id_of(user)).first() if payload.team else None
        if payload.team and team is None:
            raise HttpError(400, "That team does not exist.")
    if not queries.may_assign(user, conversation, assignee):
        raise HttpError(403, "Only a manager can reassign a colleague's conversation.")
    actions.do_assign(conversation, assignee=assignee, team=team, actor=user)
