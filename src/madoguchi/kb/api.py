"""Knowledge-base API: search (any agent) and article CRUD (managers write, agents read)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status

from madoguchi.accounts.api import api_user
from madoguchi.accounts.queries import workspace_id_of, workspace_of
from madoguchi.kb import actions, queries
from madoguchi.kb.models import Article, Category

router = Router(tags=["knowledge base"])

StatusName = Literal["draft", "review", "published", "archived"]


class SearchHit(Schema):
    id: int
    external_id: str | None
    title: str
    score: float
    snippet: str
    language: str
    url: str = Field(description="The article's page on the help site")
    answers: bool = Field(
        description="Whether the article clearly answers the query: its match stands out from the rest of the knowledge base "
        "(the judgement behind the help site's clear answers and the report of searches with no good result)"
    )


class SearchOut(Schema):
    items: list[SearchHit]


class ArticleOut(Schema):
    id: int
    external_id: str | None
    title: str
    body: str
    language: str
    status: str
    category: str
    tags: list[str]
    version: int
    views: int
    helpful_yes: int
    helpful_no: int
    created_at: dt.datetime
    updated_at: dt.datetime
    published_at: dt.datetime | None

    @staticmethod
    def resolve_category(obj: Article) -> str:
        return obj.category.name if obj.category else ""


class ArticlePage(Schema):
    items: list[ArticleOut]
    next_offset: int | None


class ArticleIn(Schema):
    title: str = Field(min_length=1, max_length=actions.MAX_TITLE)
    body: str = Field(default="", max_length=actions.MAX_BODY)
    language: str = Field(default="", max_length=16)
    status: StatusName = "draft"
    external_id: str | None = Field(default=None, max_length=200)
    category: str = Field(default="", max_length=500, description='A path such as "Billing > Refunds"; created as needed')
    tags: list[str] = Field(default_factory=list, max_length=20)


class ArticleChange(Schema):
    """Only the fields present are changed."""

    title: str | None = Field(default=None, min_length=1, max_length=actions.MAX_TITLE)
    body: str | None = Field(default=None, max_length=actions.MAX_BODY)
    language: str | None = Field(default=None, max_length=16)
    status: StatusName | None = None
    category: str | None = Field(default=None, max_length=500)
    tags: list[str] | None = Field(default=None, max_length=20)


class Detail(Schema):
    detail: Any


def _url(article: Article) -> str:
    from django.urls import reverse

    return reverse("kb:article", args=[article.pk])


@router.get("/kb/search", response=SearchOut, summary="Search published articles, best first")
def search(
    request: HttpRequest,
    q: str = Query(..., min_length=1, max_length=1000),
    limit: int = Query(10, ge=1, le=50),
    lang: str = Query("", max_length=16, description="Only articles in this language (ja, en)"),
) -> Any:
    user = api_user(request)
    results = queries.search(workspace_id_of(user), q, limit=limit, lang=lang)
    return {
        "items": [
            {
                "id": r.article.pk,
                "external_id": r.article.external_id,
                "title": r.article.title,
                "score": round(r.score, 4),
                "snippet": r.snippet,
                "language": r.article.language,
                "url": _url(r.article),
                "answers": r.good,
            }
            for r in results
        ]
    }


@router.get("/kb/articles", response=ArticlePage, summary="List articles")
def list_articles(
    request: HttpRequest,
    status: StatusName | None = None,
    offset: int = Query(0, ge=0),
    limit: int = Query(50, ge=1, le=100),
) -> Any:
    user = api_user(request)
    rows = list(queries.articles_for(user, status=status or "").order_by("pk")[offset : offset + limit + 1])
    more = len(rows) > limit
    return {"items": rows[:limit], "next_offset": offset + limit if more else None}


@router.get("/kb/articles/{article_id}", response=ArticleOut, summary="Get one article")
def get_article(request: HttpRequest, article_id: int) -> Any:
    return queries.access_article(api_user(request), article_id)


def _category(user, path: str) -> Category | None:
    return actions.category_from_path(user.workspace, path) if path.strip() else None


@router.post("/kb/articles", response={201: ArticleOut, 400: Detail}, summary="Create an article (managers)")
def create_article(request: HttpRequest, payload: ArticleIn) -> Any:
    user = api_user(request, "manager")
    if payload.external_id and queries.articles_for(user).filter(external_id=payload.external_id).exists():
        return Status(400, {"detail": "An article with this external_id exists."})
    article = actions.do_create_article(
        workspace_of(user),
        title=payload.title,
        body=payload.body,
        language=payload.language,
        status=payload.status,
        external_id=payload.external_id,
        category=_category(user, payload.category),
        tags=payload.tags,
        author=user,
    )
    return Status(201, queries.access_article(user, article.pk))


@router.patch("/kb/articles/{article_id}", response={200: ArticleOut, 400: Detail}, summary="Change an article (managers)")
def change_article(request: HttpRequest, article_id: int, payload: ArticleChange) -> Any:
    user = api_user(request, "manager")
    article = queries.access_article(user, article_id)
    changes: dict[str, Any] = {k: getattr(payload, k) for k in ("title", "body", "language", "tags") if getattr(payload, k) is not None}
    if payload.category is not None:
        changes["category"] = _category(user, payload.category)
    if changes:
        article = actions.do_update_article(article, author=user, **changes)
    if payload.status is not None:
        article = actions.do_set_status(article, payload.status, actor=user)
    return queries.access_article(user, article.pk)


@router.delete("/kb/articles/{article_id}", response={204: None}, summary="Delete an article (managers)")
def delete_article(request: HttpRequest, article_id: int) -> Any:
    user = api_user(request, "manager")
    actions.do_delete_article(queries.access_article(user, article_id))
    return Status(204, None)
