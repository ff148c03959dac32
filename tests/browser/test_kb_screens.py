"""The knowledge base's agent and manager screens in a real browser, on a phone and a desktop."""

from __future__ import annotations

import itertools
import re

import pytest
from playwright.sync_api import Browser, Page, expect

from .conftest import PHONE
from .harness import Server, log_in

pytestmark = pytest.mark.browser
MANAGER = "manager@demo.example"
_n = itertools.count(1)


def fits_the_screen(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], f"{page.url} scrolls sideways"


def test_an_agent_writes_a_draft_on_a_phone_and_a_refused_save_keeps_the_text(open_page):
    page = open_page("kb/", viewport=PHONE, has_touch=True)
    page.get_by_role("link", name="New article").tap()
    expect(page.get_by_role("heading", level=1)).to_have_text("New article")
    fits_the_screen(page)

    body = "## Steps\n\n1. Open **My page**\n2. Tap *Cancel plan*"
    page.get_by_label("Body (Markdown)").fill(body)
    page.get_by_role("button", name="Save draft").tap()
    expect(page.get_by_role("alert")).to_be_visible()  # no title: said on the field
    expect(page.get_by_label("Body (Markdown)")).to_have_value(body)  # and nothing typed is lost

    title = f"How to cancel a plan {next(_n)}"
    page.get_by_label("Title").fill(title)
    page.get_by_role("button", name="Save draft").tap()
    expect(page.get_by_role("heading", level=1)).to_contain_text(title)
    expect(page.get_by_role("heading", level=1)).to_contain_text("Draft")
    expect(page.locator(".article-body strong")).to_have_text("My page")
    # An agent proposes; publishing is a manager's move, so it is not offered.
    expect(page.get_by_role("button", name="Move to In review")).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("Move to Published"))).to_have_count(0)
    fits_the_screen(page)


def test_the_managers_report_fits_a_phone_and_archiving_asks_first(chromium: Browser, server: Server):
    context = chromium.new_context(viewport=PHONE, has_touch=True)
    try:
        page = log_in(context, server, MANAGER)
        page.goto(server.url + "kb/report/")
        expect(page.get_by_role("heading", level=1)).to_have_text("Knowledge base report")
        fits_the_screen(page)

        article = server.call("article", external_id="demo-faq-en-cancel")
        page.goto(f"{server.url}kb/a/{article['id']}/")
        asked = []
        page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
        page.get_by_role("button", name="Move to Archived").tap()
        assert asked and "help site" in asked[0]
        page.reload()
        expect(page.get_by_role("heading", level=1)).to_contain_text("Published")  # dismissed: nothing changed
    finally:
        context.close()


def test_japanese_headings_on_a_phone_break_between_phrases_not_inside_words(chromium: Browser, server: Server):
    returns = server.call("article", external_id="demo-faq-ja-return")
    context = chromium.new_context(viewport=PHONE, has_touch=True, locale="ja-JP")
    try:
        page = context.new_page()
        page.goto(f"{server.url}help/a/{returns['id']}/")
        heading = page.locator("#vote-h")
        expect(heading).to_have_text("この記事は役に立ちましたか？")
        # Where the line breaks: "た" and the "か" after it must stay on one line (立ちましたか？ is one phrase).
        same_line = heading.evaluate(
            """h => {
                const text = h.firstChild, at = text.textContent.indexOf("か？"), range = document.createRange();
                const top = (i) => { range.setStart(text, i); range.setEnd(text, i + 1); return range.getBoundingClientRect().top; };
                return top(at - 1) === top(at);
            }"""
        )
        assert same_line, "the heading breaks inside a word"
    finally:
        context.close()


def test_the_language_switch_shows_which_language_is_on(chromium: Browser, server: Server):
    context = chromium.new_context(viewport=PHONE, locale="ja-JP")
    try:
        page = context.new_page()
        page.goto(f"{server.url}help/{server.seed['brand']}/")
        switch = page.get_by_role("navigation", name="言語")
        switch.get_by_role("link", name="English").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Categories")
        switch = page.get_by_role("navigation", name="Language")  # the page is in English now, its labels too
        on, off = switch.get_by_role("link", name="English"), switch.get_by_role("link", name="日本語")
        expect(on).to_have_attribute("aria-current", "page")
        assert on.evaluate("a => getComputedStyle(a).fontWeight") != off.evaluate("a => getComputedStyle(a).fontWeight")
    finally:
        context.close()
