"""The article editor: writing a new article, editing one without losing what was typed, moving it."""

from __future__ import annotations

import pytest

from madoguchi.conftest import csrf_post
from madoguchi.kb import actions
from madoguchi.kb.models import Article, ArticleStatus

pytestmark = pytest.mark.django_db


def test_the_knowledge_base_offers_a_new_article_to_agents(cast, client_for):
    page = client_for(cast.agent).get("/kb/").content.decode()
    assert 'href="/kb/new/"' in page


def test_an_agent_writes_a_new_article_as_a_draft_in_a_category(cast, client_for):
    shipping = actions.do_create_category(cast.ws, "配送")
    client = client_for(cast.agent)
    assert "配送" in client.get("/kb/new/").content.decode()
    res = csrf_post(client, "/kb/new/", {"title": "送料はいくらですか", "body": "全国一律 **500円** です。", "language": "", "category": shipping.pk})
    article = Article.objects.get(title="送料はいくらですか")
    assert res.status_code == 302 and res["Location"] == f"/kb/a/{article.pk}/"
    assert (article.status, article.category, article.author, article.language) == (ArticleStatus.DRAFT, shipping, cast.agent, "ja")
    assert article.versions.count() == 1


def test_a_new_article_without_a_title_keeps_the_body_and_says_why(cast, client_for):
    res = csrf_post(client_for(cast.agent), "/kb/new/", {"title": "  ", "body": "書きかけの長い本文", "language": "ja"})
    assert res.status_code == 200
    page = res.content.decode()
    assert "書きかけの長い本文" in page and 'role="alert"' in page
    assert not Article.objects.exists()


def test_a_category_of_another_workspace_is_refused(cast, client_for):
    other = actions.do_create_category(cast.ws_b, "Beta only")
    res = csrf_post(client_for(cast.agent), "/kb/new/", {"title": "t", "body": "b", "category": other.pk})
    assert res.status_code == 200 and not Article.objects.exists()


def test_a_refused_edit_keeps_what_was_typed(cast, client_for):
    article = actions.do_create_article(cast.ws, title="Returns", body="Within 14 days.", language="en")
    too_long = "x" * (actions.MAX_BODY + 1)
    res = csrf_post(client_for(cast.agent), f"/kb/a/{article.pk}/", {"title": "Returns and exchanges", "body": too_long, "language": "en"})
    assert res.status_code == 200
    page = res.content.decode()
    assert "Returns and exchanges" in page and too_long in page and 'role="alert"' in page
    article.refresh_from_db()
    assert (article.title, article.version) == ("Returns", 1)


def test_an_edit_moves_the_article_to_another_category(cast, client_for):
    old, new = actions.do_create_category(cast.ws, "Old"), actions.do_create_category(cast.ws, "New")
    article = actions.do_create_article(cast.ws, title="Returns", body="Within 14 days.", language="en", category=old)
    res = csrf_post(client_for(cast.agent), f"/kb/a/{article.pk}/", {"title": "Returns", "body": "Within 14 days.", "language": "en", "category": new.pk})
    assert res.status_code == 302
    article.refresh_from_db()
    assert (article.category, article.version) == (new, 1)  # the text did not change: no new version


def test_agents_are_offered_only_the_status_moves_they_may_make(cast, client_for):
    article = actions.do_create_article(cast.ws, title="Returns", body="Within 14 days.")
    agent_page = client_for(cast.agent).get(f"/kb/a/{article.pk}/").content.decode()
    assert 'value="review"' in agent_page and 'value="published"' not in agent_page
    manager_page = client_for(cast.manager).get(f"/kb/a/{article.pk}/").content.decode()
    assert 'value="review"' in manager_page and 'value="published"' in manager_page
    assert 'value="archived"' not in manager_page  # a draft is not archived: it goes back to draft or is published


def test_archiving_and_restoring_ask_first(cast, client_for):
    article = actions.do_create_article(cast.ws, title="Returns", body="v1", status=ArticleStatus.PUBLISHED)
    actions.do_update_article(article, author=cast.manager, body="v2")
    page = client_for(cast.manager).get(f"/kb/a/{article.pk}/").content.decode()
    archive = page[page.index('value="archived"') - 400 : page.index('value="archived"')]
    assert "data-confirm=" in archive
    restore = page[page.index('name="version" value="1"') - 400 : page.index('name="version" value="1"')]
    assert "data-confirm=" in restore
    diff = client_for(cast.manager).get(f"/kb/a/{article.pk}/diff/").content.decode()
    assert "data-confirm=" in diff[diff.index('name="version" value="1"') - 400 : diff.index('name="version" value="1"')]


def test_an_agent_finds_a_draft_by_the_words_of_its_title(cast, client_for):
    draft = actions.do_create_article(cast.ws, title="解約の手順（社内向け）", body="まだ書きかけ")
    actions.do_create_article(cast.ws, title="配送について", body="3日で届きます", status=ArticleStatus.PUBLISHED)
    client = client_for(cast.agent)
    for status in ("", "draft"):
        page = client.get("/kb/", {"q": "解約の手順", "status": status}).content.decode()
        assert f'href="/kb/a/{draft.pk}/"' in page, status
    assert f'href="/kb/a/{draft.pk}/"' not in client.get("/kb/", {"q": "解約の手順", "status": "published"}).content.decode()


def test_the_status_filter_holds_while_searching(cast, client_for):
    actions.do_create_article(cast.ws, title="Returns draft", body="x")
    published = actions.do_create_article(cast.ws, title="Returns", body="Within 14 days", status=ArticleStatus.PUBLISHED)
    page = client_for(cast.agent).get("/kb/", {"q": "Returns", "status": "draft"}).content.decode()
    assert "Returns draft" in page and f'href="/kb/a/{published.pk}/"' not in page


def test_a_long_list_of_articles_is_paged(cast, client_for):
    from madoguchi.kb import views

    for n in range(views.ARTICLES_PER_PAGE + 3):
        actions.do_create_article(cast.ws, title=f"Article {n}", body="x", language="en")
    client = client_for(cast.agent)
    first = client.get("/kb/").content.decode()
    assert first.count('href="/kb/a/') == views.ARTICLES_PER_PAGE and 'rel="next"' in first
    second = client.get("/kb/", {"page": 2}).content.decode()
    assert second.count('href="/kb/a/') == 3 and 'rel="prev"' in second and 'rel="next"' not in second


def test_an_empty_knowledge_base_says_how_to_start(cast, client_for):
    page = client_for(cast.agent).get("/kb/").content.decode()
    assert "No articles yet." in page


def test_a_manager_links_a_translation_and_the_help_site_offers_it(cast, client_for, client):
    ja = actions.do_create_article(cast.ws, title="返品の方法", body="14日以内", language="ja", status=ArticleStatus.PUBLISHED)
    en = actions.do_create_article(cast.ws, title="How to return an item", body="Within 14 days", language="en", status=ArticleStatus.PUBLISHED)
    agent = client_for(cast.manager)
    page = agent.get(f"/kb/a/{ja.pk}/").content.decode()
    assert f'<option value="{en.pk}">' in page  # offered: another language
    assert csrf_post(agent, f"/kb/a/{ja.pk}/translations/", {"link": en.pk}).status_code == 302
    assert f'href="/kb/a/{ja.pk}/"' in agent.get(f"/kb/a/{en.pk}/").content.decode()  # linked both ways
    public = client.get(f"/help/a/{ja.pk}/", HTTP_USER_AGENT="Mozilla/5.0").content.decode()
    assert f'href="/help/a/{en.pk}/?lang=en" hreflang="en"' in public

    csrf_post(agent, f"/kb/a/{ja.pk}/translations/", {"unlink": en.pk})
    ja.refresh_from_db()
    en.refresh_from_db()
    assert (ja.translation_group, en.translation_group) == (None, None)


def test_linking_joins_two_groups_of_translations(cast):
    ja, en, fr = (actions.do_create_article(cast.ws, title=t, body="x", language=lang) for t, lang in (("返品", "ja"), ("Returns", "en"), ("Retours", "fr")))
    de = actions.do_create_article(cast.ws, title="Rückgabe", body="x", language="de")
    actions.do_link_translations(ja, en)
    actions.do_link_translations(fr, de)
    actions.do_link_translations(en, fr)
    groups = {a.translation_group for a in Article.objects.filter(pk__in=[ja.pk, en.pk, fr.pk, de.pk])}
    assert len(groups) == 1 and None not in groups


def test_an_article_of_another_workspace_cannot_be_linked(cast, client_for):
    ja = actions.do_create_article(cast.ws, title="返品", body="x", language="ja")
    theirs = actions.do_create_article(cast.ws_b, title="Returns", body="x", language="en")
    assert csrf_post(client_for(cast.agent), f"/kb/a/{ja.pk}/translations/", {"link": theirs.pk}).status_code == 404
    ja.refresh_from_db()
    assert ja.translation_group is None


def test_an_agent_cannot_change_a_published_article_behind_the_managers_back(cast, client_for):
    article = actions.do_create_article(cast.ws, title="Returns", body="Within 14 days.", language="en", status=ArticleStatus.PUBLISHED)
    actions.do_update_article(article, author=cast.manager, body="Within 30 days.")
    agent = client_for(cast.agent)
    page = agent.get(f"/kb/a/{article.pk}/").content.decode()
    assert 'name="version"' not in page and 'name="language"' not in page  # no restore; a proposal is the text only
    csrf_post(agent, f"/kb/a/{article.pk}/restore/", {"version": 1})
    with pytest.raises(actions.KbError):
        actions.do_update_article(article, author=cast.agent, body="Within 365 days!")
    article.refresh_from_db()
    assert (article.body, article.version) == ("Within 30 days.", 2)
    # A manager still edits it, and an agent edits drafts and proposals.
    assert csrf_post(client_for(cast.manager), f"/kb/a/{article.pk}/", {"title": "Returns", "body": "Within 31 days.", "language": "en"}).status_code == 302
    draft = actions.do_create_article(cast.ws, title="Draft", body="x", language="en")
    assert csrf_post(agent, f"/kb/a/{draft.pk}/", {"title": "Draft", "body": "y", "language": "en"}).status_code == 302


def test_an_agent_proposes_a_change_to_a_published_article_and_a_manager_applies_it(cast, client_for, client):
    article = actions.do_create_article(cast.ws, title="Returns", body="Within 14 days.", language="en", status=ArticleStatus.PUBLISHED)
    agent, manager = client_for(cast.agent), client_for(cast.manager)
    res = csrf_post(agent, f"/kb/a/{article.pk}/", {"title": "Returns", "body": "Within 30 days."}, follow=True)
    assert "proposal v2" in res.content.decode()
    article.refresh_from_db()
    assert (article.body, article.version) == ("Within 14 days.", 1)  # readers still see the published text
    assert "Within 14 days." in client.get(f"/help/a/{article.pk}/", HTTP_USER_AGENT="Mozilla/5.0").content.decode()

    index = manager.get("/kb/").content.decode()
    assert f'href="/kb/a/{article.pk}/diff/?from=1&amp;to=2"' in index  # waiting for a manager
    diff = manager.get(f"/kb/a/{article.pk}/diff/", {"from": 1, "to": 2}).content.decode()
    assert "<mark>30</mark>" in diff and "Apply v2" in diff
    csrf_post(manager, f"/kb/a/{article.pk}/restore/", {"version": 2})
    article.refresh_from_db()
    assert (article.body, article.version) == ("Within 30 days.", 3)
    assert f"/kb/a/{article.pk}/diff/" not in manager.get("/kb/").content.decode()  # no longer waiting
    # A manager's own edit afterwards is numbered after the proposal, never on top of it.
    actions.do_update_article(article, author=cast.manager, body="Within 31 days.")
    assert sorted(article.versions.values_list("number", flat=True)) == [1, 2, 3, 4]


def test_a_status_change_says_what_happened(cast, client_for):
    article = actions.do_create_article(cast.ws, title="Returns", body="x", status=ArticleStatus.PUBLISHED)
    res = csrf_post(client_for(cast.manager), f"/kb/a/{article.pk}/status/", {"status": "archived"}, follow=True)
    assert "The article is now Archived." in res.content.decode()
    assert 'value="published"' in res.content.decode()  # and the way back is on the page


def test_with_two_brands_an_article_is_written_for_one_help_site_or_all(cast, client_for):
    from madoguchi.accounts.models import Brand

    client = client_for(cast.manager)
    assert 'name="brand"' not in client.get("/kb/new/").content.decode()  # one brand: nothing to choose
    other = Brand.objects.create(workspace=cast.ws, name="Other brand")
    assert "Other brand" in client.get("/kb/new/").content.decode()
    csrf_post(client, "/kb/new/", {"title": "Only theirs", "body": "x", "brand": other.pk})
    article = Article.objects.get(title="Only theirs")
    assert article.brand == other
    csrf_post(client, f"/kb/a/{article.pk}/", {"title": "Only theirs", "body": "x", "language": article.language, "brand": ""})
    article.refresh_from_db()
    assert article.brand is None


def test_an_agent_cannot_relink_the_translations_of_published_articles(cast, client_for):
    ja = actions.do_create_article(cast.ws, title="返品", body="x", language="ja", status=ArticleStatus.PUBLISHED)
    en = actions.do_create_article(cast.ws, title="Returns", body="x", language="en", status=ArticleStatus.PUBLISHED)
    agent = client_for(cast.agent)
    assert 'name="link"' not in agent.get(f"/kb/a/{ja.pk}/").content.decode()
    csrf_post(agent, f"/kb/a/{ja.pk}/translations/", {"link": en.pk})
    ja.refresh_from_db()
    assert ja.translation_group is None
    csrf_post(client_for(cast.manager), f"/kb/a/{ja.pk}/translations/", {"link": en.pk})
    ja.refresh_from_db()
    assert ja.translation_group is not None
