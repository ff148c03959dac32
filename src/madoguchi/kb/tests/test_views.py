"""Agent screens, the suggestions panel on a conversation, and the public help site."""

from __future__ import annotations

from pathlib import Path

import pytest

from madoguchi.conftest import csrf_post
from madoguchi.inbox import actions as inbox_actions
from madoguchi.kb import actions
from madoguchi.kb.models import Article, ArticleStatus

FIXTURE = Path(__file__).parent / "fixtures" / "faq.jsonl"
BROWSER = {"HTTP_USER_AGENT": "Mozilla/5.0 (iPhone) Safari"}
pytestmark = pytest.mark.django_db


@pytest.fixture
def imported(cast):
    actions.do_import(cast.ws, actions.parse_rows(FIXTURE.read_bytes(), FIXTURE.name))
    return cast


def test_the_conversation_page_carries_the_suggestions_panel(imported, client_for):
    conv = imported.inbound("返品をお願いしたいのですが").message.conversation
    page = client_for(imported.agent).get(f"/inbox/c/{conv.pk}/").content.decode()
    assert 'id="kb-suggestions"' in page and f"/kb/suggest/{conv.pk}/" in page


def test_suggestions_follow_the_customers_last_message(imported, client_for):
    conv = imported.inbound("返品をお願いしたいのですが").message.conversation
    html = client_for(imported.agent).get(f"/kb/suggest/{conv.pk}/").content.decode()
    assert "返品したい商品があります" in html.split("</li>")[0]
    assert "data-insert" in html and "/help/a/" in html


def test_inserting_an_article_puts_plain_text_in_the_reply_not_markdown(cast, client_for):
    from madoguchi.kb.markdown import reply_text

    actions.do_create_article(
        cast.ws, title="返品の方法", status=ArticleStatus.PUBLISHED,
        body="## 手順\n\n1. **マイページ**を開く\n2. [返品フォーム](https://example.com/r)から申し込む",
    )
    conv = cast.inbound("返品の方法を教えてください").message.conversation
    html = client_for(cast.agent).get(f"/kb/suggest/{conv.pk}/").content.decode()
    assert 'data-insert="手順\n\n1. マイページを開く\n2. 返品フォーム (https://example.com/r)から申し込む"' in html
    assert reply_text("- a\n- b\n\nSee <https://example.com/x>.") == "- a\n- b\n\nSee https://example.com/x."


def test_suggestions_of_another_workspace_are_404(imported, client_for):
    conv = imported.inbound("返品").message.conversation
    assert client_for(imported.agent_b).get(f"/kb/suggest/{conv.pk}/").status_code == 404


def test_save_as_faq_from_a_conversation_opens_the_draft(imported, client_for):
    conv = imported.inbound("How do I cancel? my email is a@b.example").message.conversation
    inbox_actions.do_reply(conv, author=imported.agent, text="Open Settings and press Cancel.")
    res = csrf_post(client_for(imported.agent), f"/kb/save-faq/{conv.pk}/")
    article = Article.objects.get(source_conversation_id=conv.pk)
    assert res.status_code == 302 and res["Location"] == f"/kb/a/{article.pk}/"
    assert "a@b.example" not in article.title


def test_markdown_is_rendered_without_scripts(cast, client_for):
    article = actions.do_create_article(
        cast.ws, title="XSS", body="**bold** <script>alert(1)</script> [x](javascript:alert(1))", status=ArticleStatus.PUBLISHED
    )
    html = client_for(cast.agent).get(f"/kb/a/{article.pk}/").content.decode()
    assert "<strong>bold</strong>" in html and "<script>alert" not in html and 'href="javascript' not in html


def test_help_site_home_search_and_article(imported, client):
    brand = imported.brand
    home = client.get(f"/help/{brand.pk}/", **BROWSER).content.decode()
    assert "アカウント" in home
    res = client.get(f"/help/{brand.pk}/search/", {"q": "営業時間"}, **BROWSER).content.decode()
    assert "営業時間は何時から何時までですか" in res
    article = Article.objects.get(external_id="ja-4")
    page = client.get(f"/help/a/{article.pk}/", **BROWSER).content.decode()
    assert 'rel="canonical"' in page and 'property="og:title"' in page


def test_drafts_are_not_on_the_help_site(cast, client):
    draft = actions.do_create_article(cast.ws, title="secret plan")
    assert client.get(f"/help/a/{draft.pk}/", **BROWSER).status_code == 404


def test_a_visitor_votes_once_and_bots_are_not_counted(imported, client):
    article = Article.objects.get(external_id="ja-1")
    client.get(f"/help/a/{article.pk}/", **BROWSER)
    client.get(f"/help/a/{article.pk}/", HTTP_USER_AGENT="Googlebot/2.1")
    url = f"/help/a/{article.pk}/vote/"
    client.post(url, {"helpful": "yes", "comment": "分かりやすい"}, **BROWSER)
    client.post(url, {"helpful": "no"}, **BROWSER)
    article.refresh_from_db()
    assert (article.views, article.helpful_yes, article.helpful_no) == (1, 1, 0)
    assert article.votes.get().comment == "分かりやすい"



def test_the_atom_feed_and_sitemap_list_published_articles(imported, client):
    from xml.etree import ElementTree

    feed = client.get(f"/help/{imported.brand.pk}/feed.atom")
    assert feed["Content-Type"].startswith("application/atom+xml")
    root = ElementTree.fromstring(feed.content)
    entries = root.findall("{http://www.w3.org/2005/Atom}entry")
    assert len(entries) == 7
    sitemap = ElementTree.fromstring(client.get(f"/help/{imported.brand.pk}/sitemap.xml").content)
    locs = [loc.text or "" for loc in sitemap.iter("{http://www.sitemaps.org/schemas/sitemap/0.9}loc")]
    assert len([loc for loc in locs if "/help/a/" in loc]) == 7


def test_the_sitemap_lists_the_home_and_the_category_pages_too(cast, client):
    from xml.etree import ElementTree

    orders = actions.category_from_path(cast.ws, "注文")
    returns = actions.category_from_path(cast.ws, "注文 > 返品")
    empty = actions.category_from_path(cast.ws, "空")
    actions.do_create_article(cast.ws, title="返品", body="x", category=returns, status=ArticleStatus.PUBLISHED)
    sitemap = ElementTree.fromstring(client.get(f"/help/{cast.brand.pk}/sitemap.xml").content)
    locs = {loc.text for loc in sitemap.iter("{http://www.sitemaps.org/schemas/sitemap/0.9}loc")}
    base = f"http://testserver/help/{cast.brand.pk}/"
    assert {base, f"{base}c/{orders.pk}/", f"{base}c/{returns.pk}/"} <= locs
    assert f"{base}c/{empty.pk}/" not in locs


def test_translations_link_to_each_other_on_the_help_site(imported, client):
    ja = Article.objects.get(external_id="ja-3")
    en = Article.objects.get(external_id="en-2")
    actions.do_link_translations(ja, en)
    page = client.get(f"/help/a/{ja.pk}/", **BROWSER).content.decode()
    # Named in its own language, and following it switches the page's language too.
    assert f'href="/help/a/{en.pk}/?lang=en" hreflang="en" lang="en">English</a>' in page
    back = client.get(f"/help/a/{en.pk}/", **BROWSER).content.decode()
    assert f'href="/help/a/{ja.pk}/?lang=ja" hreflang="ja" lang="ja">日本語</a>' in back


def test_the_language_switch_filters_the_home_page(imported, client):
    page = client.get(f"/help/{imported.brand.pk}/?lang=en", **BROWSER).content.decode()
    assert "How do I delete my account?" in page and "営業時間" not in page


def test_managers_see_articles_read_a_lot_that_help_little(imported, client_for):
    bad = Article.objects.get(external_id="ja-2")
    good = Article.objects.get(external_id="ja-3")
    Article.objects.filter(pk__in=[bad.pk, good.pk]).update(views=100)
    actions.do_vote(bad, visitor="v1", helpful=False, comment="手順が古い")
    actions.do_vote(good, visitor="v1", helpful=True)
    actions.do_vote(good, visitor="v2", helpful=False)
    page = client_for(imported.manager).get("/kb/").content.decode()
    section = page.split("Read a lot, helps little")[1].split("</section>")[0]
    assert section.index(bad.title) < section.index(good.title) and "手順が古い" in section
    assert "Read a lot, helps little" not in client_for(imported.agent).get("/kb/").content.decode()


def _upload(client, name: str, data: bytes, status: str = "published"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.get("/kb/import/")
    token = client.cookies["csrftoken"].value
    return client.post("/kb/import/", {"file": SimpleUploadedFile(name, data), "status": status}, HTTP_X_CSRFTOKEN=token)


def test_a_manager_uploads_a_file_follows_the_import_and_sees_the_bad_rows(cast, client_for, django_capture_on_commit_callbacks):
    from django_tasks_db.models import DBTaskResult

    from madoguchi.kb.models import ImportJob
    from madoguchi.kb.tasks import run_import

    data = FIXTURE.read_bytes() + b'{"title": "no id"}\n'
    client = client_for(cast.manager)
    with django_capture_on_commit_callbacks(execute=True):
        res = _upload(client, "faq.jsonl", data)
    job = ImportJob.objects.get(workspace=cast.ws)
    assert res.status_code == 302 and res["Location"] == f"/kb/import/{job.pk}/"
    assert DBTaskResult.objects.filter(task_path__endswith="kb.tasks.run_import", args_kwargs__args=[job.pk]).exists()
    page = client.get(res["Location"]).content.decode()
    assert "Waiting for a worker" in page and 'http-equiv="refresh"' in page  # the page follows it
    assert Article.objects.filter(workspace=cast.ws).count() == 0

    assert run_import.call(job.pk)["state"] == "done"
    assert run_import.call(job.pk) == {"skipped": "not queued (already imported, or taken by another worker)"}
    page = client.get(res["Location"]).content.decode()
    assert "7 created" in page and "external_id is missing" in page and 'http-equiv="refresh"' not in page
    assert client.get(res["Location"], {"format": "json"}).json()["done_rows"] == 8
    assert Article.objects.filter(workspace=cast.ws, status=ArticleStatus.PUBLISHED).count() == 7
    assert "faq.jsonl" in client.get("/kb/import/").content.decode()  # listed under recent imports
    assert ImportJob.objects.get(pk=job.pk).data == b""  # the upload is not kept


def test_imports_are_for_the_workspaces_managers_only(cast, client_for):
    from madoguchi.kb.models import ImportJob

    _upload(client_for(cast.manager), "faq.jsonl", FIXTURE.read_bytes())
    job = ImportJob.objects.get(workspace=cast.ws)
    assert client_for(cast.agent).get("/kb/import/").status_code == 403
    assert client_for(cast.agent).get(f"/kb/import/{job.pk}/").status_code == 403
    assert client_for(cast.agent_b).get(f"/kb/import/{job.pk}/").status_code in (403, 404)


def test_an_import_cut_off_by_a_restart_is_queued_again_by_the_clock(cast, client_for):
    import datetime as dt

    from django.utils import timezone
    from django_tasks_db.models import DBTaskResult

    from madoguchi.kb import tasks
    from madoguchi.kb.models import ImportJob

    _upload(client_for(cast.manager), "faq.jsonl", FIXTURE.read_bytes())
    _upload(client_for(cast.manager), "other.jsonl", FIXTURE.read_bytes())
    cut, busy = ImportJob.objects.filter(workspace=cast.ws).order_by("pk")
    now = timezone.now()
    ImportJob.objects.filter(pk=cut.pk).update(state="running", done_rows=3, heartbeat_at=now - dt.timedelta(minutes=5))
    ImportJob.objects.filter(pk=busy.pk).update(state="running", heartbeat_at=now)  # still moving
    assert tasks.run_periodic.call()["imports_requeued"] == 1
    assert ImportJob.objects.get(pk=busy.pk).state == "running"
    assert DBTaskResult.objects.filter(task_path__endswith="kb.tasks.run_import", args_kwargs__args=[cut.pk]).exists()
    assert tasks.run_import.call(cut.pk)["state"] == "done"
    assert ImportJob.objects.get(pk=cut.pk).created == 7


def test_an_import_that_breaks_says_why_and_keeps_nothing_running(cast, client_for, monkeypatch):
    from madoguchi.kb import actions
    from madoguchi.kb.models import ImportJob

    _upload(client_for(cast.manager), "faq.jsonl", FIXTURE.read_bytes())
    job = ImportJob.objects.get(workspace=cast.ws)

    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(actions, "do_import", broken)
    with pytest.raises(RuntimeError):
        actions.do_run_import(job.pk)
    page = client_for(cast.manager).get(f"/kb/import/{job.pk}/").content.decode()
    assert "The import stopped:" in page and "database went away" in page and 'http-equiv="refresh"' not in page


def test_related_articles_use_the_articles_own_vector(imported, client):
    from madoguchi.kb.tasks import embed_articles

    embed_articles.call(imported.ws.pk)
    article = Article.objects.get(external_id="en-1")
    page = client.get(f"/help/a/{article.pk}/", **BROWSER).content.decode()
    related = page.split("Related articles")[1]
    assert "How can I reset my password?" in related and "How do I delete my account?" not in related


def test_instant_search_returns_only_the_result_list(imported, client):
    html = client.get(f"/help/{imported.brand.pk}/search/", {"q": "shipping", "partial": "1"}, **BROWSER).content.decode()
    assert html.lstrip().startswith("<ul") and "What are your shipping costs?" in html and "<html" not in html


# -- help-site search: the reader's language, clear answers first ----------------------------

JA_BROWSER = {**BROWSER, "HTTP_ACCEPT_LANGUAGE": "ja"}
EN_BROWSER = {**BROWSER, "HTTP_ACCEPT_LANGUAGE": "en"}


def test_help_search_answers_in_the_readers_language(imported, client):
    url = f"/help/{imported.brand.pk}/search/"
    ja = client.get(url, {"q": "パスワード password"}, **JA_BROWSER).content.decode()
    assert "パスワードを忘れました" in ja and "How can I reset my password?" not in ja
    en = client.get(url, {"q": "パスワード password"}, **EN_BROWSER).content.decode()
    assert "How can I reset my password?" in en and "パスワードを忘れました" not in en
    switched = client.get(url, {"q": "パスワード password", "lang": "en", "partial": "1"}, **JA_BROWSER).content.decode()
    assert "How can I reset my password?" in switched  # the language switch wins over the browser


def test_help_search_falls_back_to_any_language_when_none_answers_in_the_readers(imported, client):
    html = client.get(f"/help/{imported.brand.pk}/search/", {"q": "shipping costs"}, **JA_BROWSER).content.decode()
    assert "What are your shipping costs?" in html


def test_help_search_puts_clear_answers_first_and_the_rest_under_their_own_heading(imported, client):
    url = f"/help/{imported.brand.pk}/search/"
    html = client.get(url, {"q": "営業時間"}, **JA_BROWSER).content.decode()
    clear, _, rest = html.partition("他に役立ちそうな記事")
    assert "営業時間は何時から何時までですか" in clear and "営業時間は何時から" not in rest
    vague = client.get(url, {"q": "ギフト包装はできますか"}, **JA_BROWSER).content.decode()
    assert "はっきり答えている記事はありません" in vague or "一致する記事はありません" in vague


def test_the_panel_keeps_near_misses_an_agent_can_judge_and_drops_unrelated_articles(imported, client_for, monkeypatch):
    from madoguchi.kb import queries, views
    from madoguchi.kb.tasks import embed_articles

    embed_articles.call(imported.ws.pk)
    conv = imported.inbound("返品をお願いしたいのですが").message.conversation
    real = queries.search

    def judged(quality_of):
        def search(*args, **kwargs):
            return [queries.Result(r.article, r.score, r.snippet, False, True, quality_of(r)) for r in real(*args, **kwargs)]

        return search

    client = client_for(imported.agent)
    monkeypatch.setattr(views.queries, "search", judged(lambda r: 0.7 if r.article.external_id == "ja-1" else 0.2))
    html = client.get(f"/kb/suggest/{conv.pk}/").content.decode()
    assert "返品したい商品があります" in html and "営業時間" not in html
    monkeypatch.setattr(views.queries, "search", judged(lambda r: 0.2))
    assert "返品したい商品があります" not in client.get(f"/kb/suggest/{conv.pk}/").content.decode()
