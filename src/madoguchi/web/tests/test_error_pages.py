"""Error pages are the app's own: styled, translated, with a way back (not the server's bare text)."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_unknown_page_is_a_styled_404_in_the_readers_language(client):
    english = client.get("/no-such-page/", HTTP_ACCEPT_LANGUAGE="en")
    assert english.status_code == 404
    page = english.content.decode()
    assert "Page not found" in page and "app.css" in page and 'href="/"' in page
    japanese = client.get("/no-such-page/", HTTP_ACCEPT_LANGUAGE="ja")
    assert "ページが見つかりません" in japanese.content.decode()


def test_an_agent_sees_the_menu_on_a_404(cast, client_for):
    page = client_for(cast.agent).get("/no-such-page/").content.decode()
    assert "Page not found" in page or "ページが見つかりません" in page
    assert 'class="topbar"' in page  # the way back into the app


@pytest.mark.urls("madoguchi.web.tests.error_urls")
def test_forbidden_and_server_errors_have_their_own_pages(settings):
    client = Client(raise_request_exception=False)
    forbidden = client.get("/forbidden/", HTTP_ACCEPT_LANGUAGE="en")
    assert forbidden.status_code == 403 and "No access" in forbidden.content.decode()
    broken = client.get("/broken/", HTTP_ACCEPT_LANGUAGE="en")
    assert broken.status_code == 500 and "Something went wrong" in broken.content.decode()


def test_a_stale_form_gets_the_expired_form_page(cast):
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast.agent)
    answer = client.post("/settings/", {"language": "ja"}, HTTP_ACCEPT_LANGUAGE="en")
    assert answer.status_code == 403
    assert "The form has expired" in answer.content.decode() or "フォームの有効期限" in answer.content.decode()
