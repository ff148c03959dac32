"""The knowledge-base API: search and article CRUD, scoped to the token's workspace."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.test import Client

from madoguchi.accounts.actions import do_create_token
from madoguchi.kb import actions
from madoguchi.kb.models import Article

FIXTURE = Path(__file__).parent / "fixtures" / "faq.jsonl"
pytestmark = pytest.mark.django_db


def _api(user):
    _token, raw = do_create_token(user, "test")
    client = Client()
    headers = {"Authorization": f"Bearer {raw}"}

    def call(method: str, url: str, body: dict | None = None):
        kwargs = {"headers": headers}
        if body is not None:
            kwargs.update(data=json.dumps(body), content_type="application/json")
        return getattr(client, method)(url, **kwargs)

    return call


@pytest.fixture
def imported(cast):
    actions.do_import(cast.ws, actions.parse_rows(FIXTURE.read_bytes(), FIXTURE.name))
    return cast


def test_search_returns_ranked_articles_with_snippets(imported):
    res = _api(imported.agent)("get", "/api/v1/kb/search?q=パスワードを忘れてしまった&limit=3")
    assert res.status_code == 200
    items = res.json()["items"]
    assert items[0]["external_id"] == "ja-3"
    assert set(items[0]) >= {"id", "external_id", "title", "score", "snippet", "answers"}
    assert "再設定" in items[0]["snippet"]


def test_search_says_which_results_clearly_answer(imported):
    from madoguchi.kb.tasks import embed_articles

    embed_articles.call(imported.ws.pk)
    items = _api(imported.agent)("get", "/api/v1/kb/search?q=パスワードを忘れてしまった&limit=5").json()["items"]
    assert items[0]["external_id"] == "ja-3" and items[0]["answers"] is True
    assert [i["answers"] for i in items[1:]] and not any(i["answers"] for i in items[1:])  # the others do not


def test_search_filters_by_language(imported):
    res = _api(imported.agent)("get", "/api/v1/kb/search?q=password パスワード&lang=en")
    assert res.json()["items"]
    assert {i["external_id"] for i in res.json()["items"]} <= {"en-1", "en-2", "en-3"}


def test_search_never_crosses_workspaces(imported):
    res = _api(imported.agent_b)("get", "/api/v1/kb/search?q=返品")
    assert res.status_code == 200 and res.json()["items"] == []
    article = Article.objects.filter(workspace=imported.ws).first()
    assert _api(imported.agent_b)("get", f"/api/v1/kb/articles/{article.pk}").status_code == 404


def test_search_validates_its_parameters(imported):
    call = _api(imported.agent)
    assert call("get", "/api/v1/kb/search?q=").status_code == 422
    assert call("get", "/api/v1/kb/search?q=x&limit=500").status_code == 422
    assert Client().get("/api/v1/kb/search?q=x").status_code == 401


def test_managers_create_change_and_delete_articles(cast):
    call = _api(cast.manager)
    res = call("post", "/api/v1/kb/articles", {"title": "配送料", "body": "500円", "status": "published", "category": "配送 > 料金", "external_id": "ship"})
    assert res.status_code == 201, res.content
    article_id = res.json()["id"]
    assert call("post", "/api/v1/kb/articles", {"title": "dup", "external_id": "ship"}).status_code == 400
    res = call("patch", f"/api/v1/kb/articles/{article_id}", {"body": "無料です", "status": "archived"})
    assert res.status_code == 200 and res.json()["version"] == 2 and res.json()["status"] == "archived"
    assert call("patch", f"/api/v1/kb/articles/{article_id}", {"status": "review"}).status_code == 400
    assert call("delete", f"/api/v1/kb/articles/{article_id}").status_code == 204
    assert not Article.objects.filter(pk=article_id).exists()


def test_agents_read_but_do_not_write_articles(imported):
    call = _api(imported.agent)
    assert call("get", "/api/v1/kb/articles?status=published").json()["items"]
    assert call("post", "/api/v1/kb/articles", {"title": "x"}).status_code == 403
    article = Article.objects.filter(workspace=imported.ws).first()
    assert call("delete", f"/api/v1/kb/articles/{article.pk}").status_code == 403
