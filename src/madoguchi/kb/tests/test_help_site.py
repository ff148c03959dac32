"""The public help site speaks the reader's language."""


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
