"""The knowledge base in a real browser: the public help site on a phone, and the agents' suggestions.

The demo seed imports the FAQ articles of src/madoguchi/web/demo/faq.jsonl. Their embeddings are
computed by the worker in the background; nothing here waits for them, since lexical search
answers on its own (Japanese included, without spaces between words).
"""

from __future__ import annotations

import itertools
import re

import pytest
from playwright.sync_api import Browser, Page, expect

from .conftest import PHONE
from .harness import Server

pytestmark = pytest.mark.browser
_n = itertools.count(1)
THANKS = "フィードバックをお寄せいただきありがとうございます。"
SLOW = 20_000  # ms: the machine may be busy (two cores, a worker embedding articles)


def fits_the_screen(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], f"{page.url} scrolls sideways"


def test_visitor_on_a_phone_searches_in_japanese_reads_and_votes_once(chromium: Browser, server: Server):
    returns = server.call("article", external_id="demo-faq-ja-return")
    assert returns["title"] == "返品・交換の方法を教えてください"
    context = chromium.new_context(viewport=PHONE, has_touch=True, locale="ja-JP")  # logged out: no session
    try:
        page = context.new_page()
        page.set_default_timeout(SLOW)
        page.goto(f"{server.url}help/{server.seed['brand']}/")
        expect(page.get_by_role("heading", name="カテゴリ")).to_be_visible()
        expect(page.locator("main").get_by_role("link", name="返品・交換", exact=True)).to_be_visible()
        fits_the_screen(page)

        # Instant results while typing a word that is written without spaces in the article.
        box = page.get_by_role("searchbox", name="ヘルプセンターを検索")
        box.tap()
        box.fill("返品")
        result = page.locator("#instant").get_by_role("link", name=returns["title"])
        expect(result).to_be_visible(timeout=SLOW)
        expect(page.locator("#instant li").first).to_contain_text(returns["title"])  # the best match comes first
        fits_the_screen(page)
        result.tap()

        expect(page).to_have_url(re.compile(rf"/help/a/{returns['id']}/$"))
        expect(page.get_by_role("heading", level=1)).to_have_text(returns["title"])
        expect(page.locator(".article-body")).to_contain_text("14日以内")
        fits_the_screen(page)

        # A second tab of the same visitor, still showing the form when the first one votes.
        other = context.new_page()
        other.set_default_timeout(SLOW)
        other.goto(page.url)
        expect(other.get_by_role("button", name="いいえ")).to_be_visible()

        vote = page.get_by_role("region", name="この記事は役に立ちましたか？")
        vote.get_by_role("button", name="はい").tap()
        expect(page.get_by_role("status")).to_have_text(THANKS)
        expect(page.locator("main")).to_have_count(1)  # the notice sits inside the page's one main landmark
        expect(vote).to_contain_text(THANKS)
        expect(vote.get_by_role("button")).to_have_count(0)  # nothing left to vote with
        after_one = server.call("article", external_id="demo-faq-ja-return")
        assert (after_one["helpful_yes"], after_one["helpful_no"], after_one["votes"]) == (
            returns["helpful_yes"] + 1, returns["helpful_no"], returns["votes"] + 1
        )

        other.get_by_role("button", name="いいえ").tap()
        expect(other.get_by_role("status")).to_have_text("この記事はすでに評価済みです。")
        expect(other.get_by_role("region", name="この記事は役に立ちましたか？").get_by_role("button")).to_have_count(0)
        after_two = server.call("article", external_id="demo-faq-ja-return")
        assert (after_two["helpful_yes"], after_two["helpful_no"], after_two["votes"]) == (
            after_one["helpful_yes"], after_one["helpful_no"], after_one["votes"]
        ), "the same visitor's second vote was counted"

        page.reload()  # the vote is remembered for this visitor, not only in the page that sent it
        expect(page.get_by_role("region", name="この記事は役に立ちましたか？")).to_contain_text(THANKS)
        expect(page.get_by_role("button", name="はい")).to_have_count(0)
    finally:
        context.close()


def test_agent_inserts_a_suggested_article_into_the_reply(open_page, server: Server):
    delivery = server.call("article", external_id="demo-faq-ja-delivery")
    name = f"山本 さくら {next(_n)}"
    conv = server.customer_writes("先週注文した商品がまだ届きません。いつ届きますか？", name=name, language="ja")
    page = open_page(f"inbox/c/{conv}/")
    page.set_default_timeout(SLOW)
    expect(page.locator("#thread")).to_contain_text("まだ届きません")

    panel = page.locator("#kb-suggestions")
    suggestion = panel.locator("li", has=page.get_by_role("link", name=delivery["title"]))
    expect(suggestion).to_be_visible(timeout=SLOW)
    expect(panel.locator("li").first).to_contain_text(delivery["title"])
    expect(suggestion.get_by_role("link", name=delivery["title"])).to_have_attribute("href", f"/kb/a/{delivery['id']}/")

    reply = page.locator("#reply-text")
    expect(reply).to_have_value("")
    suggestion.get_by_role("button", name="Insert text").click()
    expect(reply).to_be_focused()
    expect(reply).to_have_value(re.compile(r"^ご注文から通常2〜4営業日でお届けします。"))
    body = reply.input_value()

    suggestion.get_by_role("button", name="Insert link").click()
    link = f"{server.url}help/a/{delivery['id']}/"
    expect(reply).to_have_value(body.rstrip() + "\n\n" + link)

    # The link the agent sends opens the article on the public help site.
    help_page = page.context.new_page()
    help_page.goto(link)
    expect(help_page.get_by_role("heading", level=1)).to_have_text(delivery["title"])


def test_agent_sees_a_similar_resolved_conversation_and_inserts_its_answer(open_page, server: Server):
    """An answered and resolved conversation becomes a suggestion for the next customer asking the
    same thing (the worker's clock indexes resolved conversations every few seconds)."""
    n = next(_n)
    first = server.customer_writes(f"ポイントの有効期限はいつまでですか？ 会員{n}", name=f"佐藤 花子 {n}", language="ja")
    server.call("reply", conversation=first, email="agent1@demo.example", text="ポイントは付与された日から1年間有効です。")
    page = open_page(f"inbox/c/{first}/")
    page.set_default_timeout(SLOW)
    page.locator("#resolve-form").get_by_role("button").click()
    expect(page.locator("#status-badge")).to_have_text(re.compile("Resolved|解決"))

    second = server.customer_writes("ポイントの有効期限を知りたいです", name=f"鈴木 一郎 {n}", language="ja")
    page.goto(f"{server.url}inbox/c/{second}/")
    earlier = page.locator("#kb-suggestions .kb-earlier li", has_text="ポイントは付与された日から1年間有効です。")
    for _attempt in range(15):  # until the clock has indexed the resolved conversation
        if earlier.count():
            break
        page.wait_for_timeout(2000)
        page.reload()
        page.locator("#kb-suggestions h3").last.wait_for()
    expect(earlier).to_be_visible(timeout=SLOW)
    reply = page.locator("#reply-text")
    earlier.get_by_role("button", name="Insert answer").click()
    expect(reply).to_have_value("ポイントは付与された日から1年間有効です。")
