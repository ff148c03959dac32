"""The public help site speaks the reader's language, and tells search engines what each page is."""

from __future__ import annotations

import re

from madoguchi.kb import actions
from madoguchi.kb.models import ArticleStatus

BROWSER = {"HTTP_USER_AGENT": "Mozilla/5.0 (iPhone) Safari"}


def test_help_home_speaks_the_readers_language(cast, client):
    from madoguchi.kb.models import Article, Category

    ja_cat = Category.objects.create(workspace=cast.ws, name="お支払い", slug="pay")
    en_cat = Category.objects.create(workspace=cast.ws, name="Shipping", slug="ship")
    Article.objects.create(workspace=cast.ws, brand=cast.brand, title="請求が二重です", body="…", language="ja", status="published", category=ja_cat)
    Article.objects.create(workspace=cast.ws, brand=cast.brand, title="Where is my parcel", body="…", language="en", status="published", category=en_cat)
    ja = client.get(f"/help/{cast.brand.pk}/", HTTP_ACCEPT_LANGUAGE="ja").content.decode()
    assert "請求が二重です" in ja and "Where is my parcel" not in ja and "Shipping" not in ja
    en = client.get(f"/help/{cast.brand.pk}/?lang=en").content.decode()
    assert "Where is my parcel" in en and "請求が二重です" not in en


def test_category_page_lists_the_readers_language_when_it_has_articles_in_it(cast, client):
    from madoguchi.kb.models import Article, Category

    cat = Category.objects.create(workspace=cast.ws, name="Billing", slug="billing")
    Article.objects.create(workspace=cast.ws, brand=cast.brand, title="請求について", body="…", language="ja", status="published", category=cat)
    Article.objects.create(workspace=cast.ws, brand=cast.brand, title="About billing", body="…", language="en", status="published", category=cat)
    ja = client.get(f"/help/{cast.brand.pk}/c/{cat.pk}/", HTTP_ACCEPT_LANGUAGE="ja").content.decode()
    assert "請求について" in ja and "About billing" not in ja
    both = client.get(f"/help/{cast.brand.pk}/c/{cat.pk}/").content.decode()
    assert "請求について" in both and "About billing" in both


def test_the_meta_description_is_the_articles_plain_text_not_its_markdown(cast, client):
    article = actions.do_create_article(
        cast.ws, title="解約", body="## 手順\n\n**解約**は[マイページ](https://example.com/me)から & すぐに。", status=ArticleStatus.PUBLISHED
    )
    page = client.get(f"/help/a/{article.pk}/", **BROWSER).content.decode()
    description = re.search(r'<meta name="description" content="([^"]*)"', page).group(1)
    assert description == "手順 解約はマイページから &amp; すぐに。"
    assert re.search(r'<meta property="og:description" content="([^"]*)"', page).group(1) == description


def test_each_language_version_lists_all_of_them_in_its_head(cast, client):
    ja = actions.do_create_article(cast.ws, title="返品", body="14日以内", language="ja", status=ArticleStatus.PUBLISHED)
    en = actions.do_create_article(cast.ws, title="Returns", body="Within 14 days", language="en", status=ArticleStatus.PUBLISHED)
    actions.do_link_translations(ja, en)
    for article in (ja, en):
        head = client.get(f"/help/a/{article.pk}/", **BROWSER).content.decode().split("</head>")[0]
        assert f'<link rel="alternate" hreflang="ja" href="http://testserver/help/a/{ja.pk}/">' in head
        assert f'<link rel="alternate" hreflang="en" href="http://testserver/help/a/{en.pk}/">' in head
    alone = actions.do_create_article(cast.ws, title="Alone", body="x", language="en", status=ArticleStatus.PUBLISHED)
    assert "hreflang" not in client.get(f"/help/a/{alone.pk}/", **BROWSER).content.decode().split("</head>")[0]


def test_an_article_page_leads_back_to_its_category(cast, client):
    category = actions.do_create_category(cast.ws, "配送")
    article = actions.do_create_article(cast.ws, title="送料", body="500円", category=category, status=ArticleStatus.PUBLISHED)
    page = client.get(f"/help/a/{article.pk}/", **BROWSER).content.decode()
    assert f'href="/help/{cast.brand.pk}/c/{category.pk}/">配送</a>' in page


def test_a_brands_help_site_leaves_out_another_brands_articles_and_categories(cast, client):
    from xml.etree import ElementTree

    from madoguchi.accounts.models import Brand

    other = Brand.objects.create(workspace=cast.ws, name="Other brand")
    shared_cat = actions.do_create_category(cast.ws, "Shared")
    other_cat = actions.do_create_category(cast.ws, "Other only", brand=other)
    ours = actions.do_create_article(cast.ws, title="Our returns", body="Within 14 days", brand=cast.brand, category=shared_cat, status=ArticleStatus.PUBLISHED)
    shared = actions.do_create_article(cast.ws, title="Shared returns", body="Within 14 days", category=shared_cat, status=ArticleStatus.PUBLISHED)
    theirs = actions.do_create_article(cast.ws, title="Their returns", body="Within 30 days", brand=other, category=shared_cat, status=ArticleStatus.PUBLISHED)
    actions.do_create_article(cast.ws, title="Their parcels", body="Tracking", brand=other, category=other_cat, status=ArticleStatus.PUBLISHED)

    home = client.get(f"/help/{cast.brand.pk}/", **BROWSER).content.decode()
    assert "Our returns" in home and "Shared returns" in home and "Their returns" not in home
    assert "Shared" in home and "Other only" not in home
    category = client.get(f"/help/{cast.brand.pk}/c/{shared_cat.pk}/", **BROWSER).content.decode()
    assert "Our returns" in category and "Shared returns" in category and "Their returns" not in category
    assert client.get(f"/help/{cast.brand.pk}/c/{other_cat.pk}/", **BROWSER).status_code == 404
    assert client.get(f"/help/{cast.brand.pk}/c/{other_cat.pk}/feed.atom").status_code == 404
    search = client.get(f"/help/{cast.brand.pk}/search/", {"q": "returns"}, **BROWSER).content.decode()
    assert "Our returns" in search and "Shared returns" in search and "Their returns" not in search
    sitemap = ElementTree.fromstring(client.get(f"/help/{cast.brand.pk}/sitemap.xml").content)
    locs = {loc.text for loc in sitemap.iter("{http://www.sitemaps.org/schemas/sitemap/0.9}loc")}
    assert {loc for loc in locs if "/help/a/" in loc} == {f"http://testserver/help/a/{ours.pk}/", f"http://testserver/help/a/{shared.pk}/"}
    assert f"http://testserver/help/{cast.brand.pk}/c/{other_cat.pk}/" not in locs
    assert f"http://testserver/help/a/{theirs.pk}/" not in locs


def test_the_language_switch_changes_the_whole_page_and_is_kept_on_the_next_pages(cast, client):
    from madoguchi.kb.models import Article, Category

    cat = Category.objects.create(workspace=cast.ws, name="Billing", slug="billing")
    Article.objects.create(workspace=cast.ws, brand=cast.brand, title="請求について", body="…", language="ja", status="published", category=cat)
    en = Article.objects.create(workspace=cast.ws, brand=cast.brand, title="About billing", body="…", language="en", status="published", category=cat)
    home = client.get(f"/help/{cast.brand.pk}/?lang=en", HTTP_ACCEPT_LANGUAGE="ja", **BROWSER).content.decode()
    assert '<html lang="en">' in home and "<h1>Categories</h1>" in home
    # The next page, reached by a plain link, stays in English although the browser asks for Japanese.
    category = client.get(f"/help/{cast.brand.pk}/c/{cat.pk}/", HTTP_ACCEPT_LANGUAGE="ja", **BROWSER).content.decode()
    assert '<html lang="en">' in category and "About billing" in category and "請求について" not in category
    article = client.get(f"/help/a/{en.pk}/", HTTP_ACCEPT_LANGUAGE="ja", **BROWSER).content.decode()
    assert "Was this helpful?" in article
    # Switching back works the same way.
    home = client.get(f"/help/{cast.brand.pk}/?lang=ja", HTTP_ACCEPT_LANGUAGE="en", **BROWSER).content.decode()
    assert '<html lang="ja">' in home and "請求について" in home


def test_a_category_page_leads_to_its_subcategories(cast, client):
    orders = actions.category_from_path(cast.ws, "注文")
    returns = actions.category_from_path(cast.ws, "注文 > 返品")
    actions.category_from_path(cast.ws, "注文 > 空のカテゴリ")
    article = actions.do_create_article(cast.ws, title="返品の方法", body="30日以内", category=returns, status=ArticleStatus.PUBLISHED)
    home = client.get(f"/help/{cast.brand.pk}/", **BROWSER).content.decode()
    assert f'href="/help/{cast.brand.pk}/c/{orders.pk}/"' in home
    page = client.get(f"/help/{cast.brand.pk}/c/{orders.pk}/", **BROWSER).content.decode()
    assert f'href="/help/{cast.brand.pk}/c/{returns.pk}/">返品</a>' in page
    assert "空のカテゴリ" not in page  # nothing to read there
    assert "No articles in this category yet." not in page
    sub = client.get(f"/help/{cast.brand.pk}/c/{returns.pk}/", **BROWSER).content.decode()
    assert f'href="/help/a/{article.pk}/"' in sub and f'href="/help/{cast.brand.pk}/c/{orders.pk}/">注文</a>' in sub


def test_a_reader_it_did_not_help_is_offered_a_person(cast, client):
    from madoguchi.connectors.models import ChannelAccount

    ChannelAccount.objects.create(workspace=cast.ws, brand=cast.brand, kind="webform", name="Contact form")
    article = actions.do_create_article(cast.ws, title="Returns", body="Within 14 days.", brand=cast.brand, status=ArticleStatus.PUBLISHED)
    client.get(f"/help/a/{article.pk}/", **BROWSER)  # the visitor cookie
    client.post(f"/help/a/{article.pk}/vote/", {"helpful": "no"}, **BROWSER)
    page = client.get(f"/help/a/{article.pk}/", **BROWSER).content.decode()
    vote = page[page.index('id="vote-h"') :]
    assert "Sorry this did not answer your question." in vote and f'href="/connectors/webform/{cast.brand.pk}/?lang=en"' in vote.split("</section>")[0]

    other = actions.do_create_article(cast.ws, title="Delivery", body="3 days.", brand=cast.brand, status=ArticleStatus.PUBLISHED)
    client.post(f"/help/a/{other.pk}/vote/", {"helpful": "yes"}, **BROWSER)
    assert "Sorry this did not answer" not in client.get(f"/help/a/{other.pk}/", **BROWSER).content.decode()


def test_the_home_and_category_pages_name_their_language_versions_for_search_engines(cast, client):
    from madoguchi.kb.models import Category

    cat = Category.objects.create(workspace=cast.ws, name="Billing", slug="billing")
    for url in (f"/help/{cast.brand.pk}/", f"/help/{cast.brand.pk}/c/{cat.pk}/"):
        head = client.get(url, **BROWSER).content.decode().split("</head>")[0]
        full = f"http://testserver{url}"
        assert f'<link rel="canonical" href="{full}">' in head
        assert f'<link rel="alternate" hreflang="ja" href="{full}?lang=ja">' in head
        assert f'<link rel="alternate" hreflang="en" href="{full}?lang=en">' in head
        assert f'<link rel="alternate" hreflang="x-default" href="{full}">' in head
        english = client.get(url, {"lang": "en"}, **BROWSER).content.decode().split("</head>")[0]
        assert f'<link rel="canonical" href="{full}?lang=en">' in english  # its own page, not a duplicate


def test_a_question_article_carries_faq_structured_data_that_cannot_break_out_of_its_script(cast, client):
    import json

    question = actions.do_create_article(
        cast.ws, title="送料はいくらですか？", body="全国一律 **500円** です。</script><script>alert(1)</script>", status=ArticleStatus.PUBLISHED
    )
    page = client.get(f"/help/a/{question.pk}/", **BROWSER).content.decode()
    raw = re.search(r'<script type="application/ld\+json">(.*?)</script>', page, re.S).group(1)
    assert "<" not in raw
    data = json.loads(raw)
    assert data["@type"] == "FAQPage" and data["inLanguage"] == "ja"
    entity = data["mainEntity"][0]
    assert entity["name"] == "送料はいくらですか？"
    assert entity["acceptedAnswer"]["text"].startswith("全国一律 500円 です。")  # plain text, not Markdown
    notice = actions.do_create_article(cast.ws, title="Maintenance on Sunday", body="x", status=ArticleStatus.PUBLISHED)
    assert "application/ld+json" not in client.get(f"/help/a/{notice.pk}/", **BROWSER).content.decode()
