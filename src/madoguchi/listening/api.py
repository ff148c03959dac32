"""Listening API: the stream of captured posts with their triage, and handling them."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from django.http import HttpRequest
from ninja import Query, Router, Schema

from madoguchi.accounts.api import api_user
from madoguchi.ingest.models import Post
from madoguchi.listening import actions, queries

router = Router(tags=["listening"])


class PostItem(Schema):
    """A captured post with its triage."""

    id: int
    text: str
    url: str
    status: str
    language: str
    kind: str
    urgency: int
    sentiment: float
    influence: int
    priority: int
    matched_rule: str | None
    conversation_id: int | None
    captured_at: dt.datetime

    @staticmethod
    def resolve_matched_rule(obj: Post) -> str | None:
        return obj.matched_rule.name if obj.matched_rule is not None else None


class StreamQuery(Schema):
    view: Literal["todo", "all", "answered", "dismissed"] = "todo"
    sort: Literal["priority", "newest"] = "priority"
    kind: str = ""
    limit: int = 50


class Handled(Schema):
    captured: int
    answered: int
    dismissed: int
    left: int
    share_handled: float


class Done(Schema):
    id: int
    status: str
    conversation_id: int | None = None


@router.get("/posts", response=list[PostItem])
def list_posts(request: HttpRequest, q: Query[StreamQuery]) -> list[Post]:
    user = api_user(request, "agent")
    return list(queries.stream_for(user, view=q.view, sort=q.sort, kind=q.kind)[: max(1, min(q.limit, 200))])


@router.get("/handled", response=Handled)
def handled(request: HttpRequest, days: int = 7) -> queries.Handled:
    return queries.handled(api_user(request, "agent"), days=max(1, min(days, 366)))


@router.post("/posts/{post_id}/dismiss", response=Done)
def dismiss(request: HttpRequest, post_id: int) -> dict:
    user = api_user(request, "agent")
    post = actions.do_dismiss_post(queries.access_post(user, post_id), user)
    return {"id": post.pk, "status": post.status}


@router.post("/posts/{post_id}/respond", response=Done)
def respond(request: HttpRequest, post_id: int) -> dict:
    user = api_user(request, "agent")
    conversation = actions.do_respond_to_post(queries.access_post(user, post_id), user)
    return {"id": post_id, "status": Post.Status.ANSWERED, "conversation_id": conversation.pk}
