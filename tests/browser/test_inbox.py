"""The agent inbox in a real browser: live arrivals, seen mark, reply, resolve, reopen, keys."""

from __future__ import annotations

import itertools
import re

import pytest
from playwright.sync_api import Page, expect

from .conftest import PHONE
from .harness import AGENT2, Server

pytestmark = pytest.mark.browser
_n = itertools.count(1)


def unique(name: str) -> str:
    """A customer name no other test uses, so tests can share one server."""
    return f"{name} {next(_n)}"


def item(page: Page, name: str):
    return page.locator("#conv-list .conv-item", has_text=name)


def wait_live(page: Page) -> None:
    """The SSE stream is connected (the green dot in the top bar)."""
    expect(page.locator("#live-dot.on")).to_be_visible()


def test_agent_logs_in_and_lands_on_the_todo_view(chromium, server: Server):
    context = chromium.new_context()
    page = context.new_page()
    page.goto(server.url)
    expect(page).to_have_url(re.compile(r"/login/"))
    page.fill("input[name=username]", "agent1@demo.example")
    page.fill("input[name=password]", "wrong password")
    page.click("button[type=submit]")
    expect(page.get_by_role("alert")).to_be_visible()
    page.fill("input[name=password]", server.seed["password"])
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/inbox/$"))
    expect(page.locator(".list-head h2")).to_have_text("To do")
    wait_live(page)
    context.close()


def test_new_message_arrives_live_and_opening_marks_it_seen(open_page, server: Server):
    page = open_page()
    wait_live(page)
    page.evaluate("window.__notReloaded = true")
    name = unique("Emma Wilson")
    conv = server.customer_writes("My order hasn't arrived yet. Order number A-20931.", name=name)
    row = item(page, name)
    expect(row).to_be_visible()
    expect(row.locator(".badge.new")).to_be_visible()
    assert page.evaluate("window.__notReloaded") is True, "the page reloaded instead of updating live"

    row.locator("a.conv-link").click()
    expect(page).to_have_url(re.compile(rf"/inbox/c/{conv}/"))
    expect(page.locator("#conversation .seen")).to_contain_text("Kenta Agent")
    expect(page.locator("#status-badge")).to_have_text("Open")
    expect(page.locator("#thread")).to_contain_text("A-20931")
    expect(item(page, name)).to_have_class(re.compile(r"\bselected\b"))
    assert server.status(conv) == "open"


def test_reply_leaves_todo_resolve_with_e_and_customer_reopens_live(open_page, server: Server):
    name = unique("佐藤 ゆい")
    thread = f"thread-{name}"
    conv = server.customer_writes("注文した商品がまだ届きません。いつ頃届きますか？", name=name, thread=thread, language="ja")
    page = open_page(f"inbox/c/{conv}/")
    wait_live(page)
    expect(item(page, name)).to_be_visible()

    page.keyboard.press("r")
    expect(page.locator("#reply-text")).to_be_focused()
    page.keyboard.type("お問い合わせありがとうございます。配送状況を確認いたします。")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#thread .msg-out")).to_contain_text("配送状況を確認")
    expect(page.locator("#status-badge")).to_have_text("Pending")
    expect(item(page, name)).to_have_count(0)  # replied: no longer on the to-do list
    expect(page.locator("#thread .msg-out .delivery")).to_have_text(re.compile("Sent|Delivered"))

    page.locator("body").click(position={"x": 5, "y": 300})  # keyboard focus back on the page
    page.keyboard.press("e")
    expect(page.locator("#status-badge")).to_have_text("Resolved")
    assert server.status(conv) == "resolved"

    page.evaluate("window.__notReloaded = true")
    server.customer_writes("まだ届いていません。", name=name, thread=thread, language="ja")
    expect(page.locator("#status-badge")).to_have_text("Open")
    expect(page.locator("#thread")).to_contain_text("まだ届いていません")
    expect(item(page, name)).to_be_visible()
    assert page.evaluate("window.__notReloaded") is True


def test_typing_a_reply_survives_live_updates_of_the_thread(open_page, server: Server):
    name = unique("Liam Chen")
    thread = f"thread-{name}"
    conv = server.customer_writes("Can I change my delivery address?", name=name, thread=thread)
    page = open_page(f"inbox/c/{conv}/")
    wait_live(page)
    page.locator("#reply-text").click()
    server.customer_writes("It's for order B-7731.", name=name, thread=thread)
    # Keep typing while the thread refreshes: no keystroke is lost, the focus stays.
    words = "Thanks, I have changed the address on order B-7731 for you."
    page.keyboard.type(words, delay=40)
    expect(page.locator("#thread")).to_contain_text("B-7731")
    expect(page.locator("#reply-text")).to_have_value(words)
    expect(page.locator("#reply-text")).to_be_focused()


def test_reading_earlier_messages_is_not_interrupted_by_new_ones(open_page, server: Server):
    name = unique("Olivia Park")
    thread = f"thread-{name}"
    conv = 0
    for i in range(1, 56):  # more than one page of the thread (50)
        conv = server.customer_writes(f"Line {i} of my long story.", name=name, thread=thread)
    page = open_page(f"inbox/c/{conv}/")
    wait_live(page)
    page.locator(".load-older").click()
    expect(page.locator("#thread")).to_contain_text("Line 1 of my long story.")
    page.evaluate("document.querySelector('#thread').scrollTop = 0")  # reading from the start

    server.customer_writes("Are you still there?", name=name, thread=thread)
    expect(page.locator("#thread")).to_contain_text("Are you still there?")
    # The earlier messages the agent loaded stay, and the view stays where they were reading.
    expect(page.locator("#thread")).to_contain_text("Line 1 of my long story.")
    assert page.evaluate("document.querySelector('#thread').scrollTop") < 50

    # Back at the end, new messages are followed.
    page.evaluate("const t = document.querySelector('#thread'); t.scrollTop = t.scrollHeight")
    server.customer_writes("Hello?", name=name, thread=thread)
    expect(page.locator("#thread")).to_contain_text("Hello?")
    page.wait_for_function("(() => { const t = document.querySelector('#thread'); return t.scrollHeight - t.scrollTop - t.clientHeight < 60; })()")


def _set_hidden(page: Page, hidden: bool) -> None:
    """What the browser does when the agent switches to another tab and back."""
    page.evaluate(
        "h => { Object.defineProperty(document, 'hidden', {configurable: true, get: () => h});"
        " document.dispatchEvent(new Event('visibilitychange')); }",
        hidden,
    )


def test_a_hidden_tab_lets_go_of_its_stream_and_catches_up_when_shown(open_page, server: Server):
    page = open_page("inbox/?view=todo")
    wait_live(page)
    page.evaluate("document.body.dataset.liveIdle = '0'")  # no grace period in the test
    _set_hidden(page, True)
    expect(page.locator("#live-dot.on")).to_have_count(0)  # the connection is given back
    name = unique("Noah Kim")
    server.customer_writes("Written while the tab was in the background.", name=name)
    page.wait_for_timeout(1000)
    expect(item(page, name)).to_have_count(0)
    _set_hidden(page, False)
    wait_live(page)
    expect(item(page, name)).to_be_visible()  # replayed from the last event the tab saw


def test_j_k_move_through_the_list_enter_opens_and_question_mark_shows_help(open_page, server: Server):
    names = [unique("Liam Johnson"), unique("Mia Garcia"), unique("田中 健一")]
    for n in names:
        server.customer_writes(f"Question from {n}", name=n)
    page = open_page("inbox/?view=todo")
    rows = page.locator("#conv-list .conv-item")
    expect(rows.first).to_contain_text(names[-1])  # newest activity first

    bulk_bar = page.locator("#bulk-bar")
    expect(bulk_bar).to_be_hidden()
    page.keyboard.press("j")
    expect(rows.nth(0)).to_have_class(re.compile(r"\bcursor\b"))
    page.keyboard.press("x")
    expect(rows.nth(0).locator("input[type=checkbox]")).to_be_checked()
    expect(bulk_bar).to_be_visible()
    page.keyboard.press("x")
    expect(bulk_bar).to_be_hidden()
    page.keyboard.press("j")
    expect(rows.nth(1)).to_have_class(re.compile(r"\bcursor\b"))
    expect(rows.nth(0)).not_to_have_class(re.compile(r"\bcursor\b"))
    page.keyboard.press("k")
    expect(rows.nth(0)).to_have_class(re.compile(r"\bcursor\b"))
    page.keyboard.press("Enter")
    expect(page.locator("#conversation h2")).to_contain_text(names[-1])

    page.keyboard.press("?")
    dialog = page.locator("#help-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Next / previous conversation")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(page.locator("#conversation")).to_be_visible()  # Esc closed the dialog, not the conversation
    page.keyboard.press("Escape")
    expect(page).to_have_url(re.compile(r"/inbox/\?view=todo$"))  # back to the view it came from

    page.keyboard.press("/")
    expect(page.locator("#search-box")).to_be_focused()
    page.keyboard.press("Escape")  # out of the search box; no cursor yet on this page
    page.keyboard.press("o")  # opens the first conversation of the list
    expect(page.locator("#conversation h2")).to_contain_text(names[-1])


def test_phone_list_then_conversation_then_back(open_page, server: Server):
    page = open_page(viewport=PHONE, has_touch=True)
    wait_live(page)
    expect(page.locator("#list-pane")).to_be_visible()
    expect(page.locator("#detail-pane")).to_be_hidden()
    name = unique("Olivia Brown")
    conv = server.customer_writes("I was charged twice last month.", name=name)
    row = item(page, name)
    expect(row).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], "the list scrolls sideways"
    box = row.bounding_box()
    assert box and box["height"] >= 44, "rows are too small to tap"

    row.locator("a.conv-link").tap()
    expect(page).to_have_url(re.compile(rf"/inbox/c/{conv}/"))
    expect(page.locator("#list-pane")).to_be_hidden()
    expect(page.locator("#conversation .seen")).to_be_visible()
    expect(page.locator("#thread")).to_contain_text("charged twice")
    expect(page.locator("#composer")).to_be_in_viewport()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], "the conversation scrolls sideways"

    page.locator("#reply-text").tap()
    page.locator("#reply-text").fill("Sorry about that! We have refunded the second charge.")
    page.locator("#send-button").tap()
    expect(page.locator("#thread .msg-out")).to_contain_text("refunded")
    expect(page.locator("#status-badge")).to_have_text("Pending")

    page.locator(".conv-head .back").tap()
    expect(page).to_have_url(re.compile(r"/inbox/$"))
    expect(page.locator("#list-pane")).to_be_visible()
    expect(item(page, name)).to_have_count(0)


def test_second_agent_on_the_same_conversation_shows_a_collision_warning(open_page, server: Server):
    name = unique("鈴木 美咲")
    conv = server.customer_writes("解約の手続きを教えてください。", name=name, language="ja")
    first = open_page(f"inbox/c/{conv}/")
    wait_live(first)
    collision = first.locator("#collision")
    expect(collision).to_be_hidden()

    second = open_page(f"inbox/c/{conv}/", as_=AGENT2)
    expect(collision).to_be_visible()
    expect(collision).to_have_text("Sara Agent is also viewing this conversation")

    second.locator("#reply-text").click()
    second.keyboard.type("確認します")
    expect(collision).to_have_text("Sara Agent is typing a reply…")
    expect(second.locator("#collision")).not_to_contain_text("Sara Agent")


@pytest.mark.parametrize("path", ["contacts/", "settings/", "login/"])
def test_other_pages_fit_a_phone_screen(open_page, path: str):
    page = open_page(path, viewport=PHONE)
    expect(page.locator("main")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], f"{path} scrolls sideways"
