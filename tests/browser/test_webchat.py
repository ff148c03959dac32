"""The chat widget in a real browser: a visitor on another website chats live with an agent.

The visitor's page is a static HTML file served by a tiny http.server on its own port (another
origin, like a customer's website), embedding the exact script tag the admin copies from the
widget's settings page. The demo's widget allows any local origin (http://127.0.0.1:*).
"""

from __future__ import annotations

import base64
import functools
import itertools
import queue
import re
import sqlite3
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from madoguchi.connectors.webchat.fake import FakeVisitor

from .conftest import PHONE
from .harness import Server, log_in

pytestmark = pytest.mark.browser
_n = itertools.count(1)
SLOW = 15_000  # ms: two busy cores

# A hostile host page: its CSS must not reach the widget (Shadow DOM + all: initial).
PAGE = """<!doctype html><html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Shop</title>
<style>* {{ font-family: serif !important; color: red; }} button {{ display: none; }} li {{ list-style: square; }}</style>
</head><body><h1>Demo shop</h1><p>Our products.</p>{snippet}</body></html>"""


PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def snippet(chromium: Browser, server: Server) -> str:
    """The embed tag, as an admin copies it from the widget's settings page."""
    context = chromium.new_context()
    try:
        page = log_in(context, server, "admin@demo.example")
        page.goto(f"{server.url}connectors/webchat/{server.seed['accounts']['webchat']}/settings/")
        tag = page.locator("#widget-snippet").input_value()
    finally:
        context.close()
    assert re.fullmatch(r'<script src="http://127\.0\.0\.1:\d+/connectors/webchat/widget\.js" data-key="wk_[\w-]+" async></script>', tag), tag
    return tag


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory, snippet: str) -> Iterator[str]:
    """A customer's website on another port: index.html (English) and ja.html (Japanese)."""
    root: Path = tmp_path_factory.mktemp("shop")
    (root / "index.html").write_text(PAGE.format(lang="en", snippet=snippet), encoding="utf-8")
    (root / "ja.html").write_text(PAGE.format(lang="ja", snippet=snippet), encoding="utf-8")
    quick = snippet.replace(" async>", ' data-live-idle="0" async>')  # lets go of its stream at once when hidden
    (root / "idle.html").write_text(PAGE.format(lang="en", snippet=quick), encoding="utf-8")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def widget(page: Page):
    return page.locator("madoguchi-chat")  # Playwright's CSS reaches into the open shadow root


def test_visitor_and_agent_chat_live_both_ways(chromium: Browser, server: Server, shop: str, open_page):
    name = f"Web Visitor {next(_n)}"
    visitor_context = chromium.new_context()
    try:
        visitor = visitor_context.new_page()
        visitor.set_default_timeout(SLOW)
        visitor.goto(shop)
        launcher = widget(visitor).locator(".launcher")
        expect(launcher).to_be_visible()
        assert launcher.evaluate("b => getComputedStyle(b).display") != "none", "host page CSS reached the widget"
        launcher.click()
        panel = widget(visitor).locator(".panel")
        panel.locator("input[name=name]").fill(name)
        panel.get_by_role("button", name="Start chatting").click()
        panel.locator("textarea").fill("Hello! Does the Pro plan include roaming?")
        panel.locator("textarea").press("Enter")
        mine = panel.locator(".msg.me").last
        expect(mine).to_contain_text("roaming")
        expect(mine.locator(".mark")).to_have_text("Sent")
        assert mine.evaluate("m => getComputedStyle(m).color") != "rgb(255, 0, 0)", "host page CSS reached the widget"

        agent = open_page("inbox/")
        expect(agent.locator("#live-dot.on")).to_be_visible()
        row = agent.locator("#conv-list .conv-item", has_text=name)
        expect(row).to_be_visible(timeout=SLOW)
        row.locator("a.conv-link").click()
        expect(agent.locator("#thread")).to_contain_text("Does the Pro plan include roaming?")
        expect(mine.locator(".mark")).to_have_text("Read")  # the agent's page is open on it

        agent.locator("#reply-text").press_sequentially("Yes, ")
        expect(panel.locator(".typing")).to_contain_text("Kenta Agent")
        agent.locator("#reply-text").press_sequentially("in 40 countries.")
        agent.locator("#reply-text").press("Control+Enter")
        answer = panel.locator(".msg.team").last
        expect(answer).to_contain_text("Yes, in 40 countries.")
        expect(answer.locator(".who")).to_have_text("Kenta Agent")
        expect(panel.locator(".typing")).to_be_hidden()
        expect(agent.locator("#thread .read-mark")).to_be_visible()  # the visitor's panel showed it

        panel.locator("textarea").press_sequentially("<b>Great</b>, thanks!")
        expect(agent.locator("#visitor-typing")).to_contain_text(name)
        panel.locator("textarea").press("Enter")
        expect(agent.locator("#thread .msg-in").last).to_contain_text("<b>Great</b>, thanks!")

        panel.locator("input[type=file]").set_input_files(files=[{"name": "receipt.png", "mimeType": "image/png", "buffer": PNG}])
        expect(panel.locator(".msg.me .file img")).to_be_visible()
        expect(agent.locator("#thread .msg-in img.att-img")).to_be_visible()

        # Back on the site later: the same visitor, the whole conversation.
        visitor.reload()
        widget(visitor).locator(".launcher").click()
        expect(widget(visitor).locator(".msg")).to_have_count(4)
        expect(widget(visitor).locator(".msg.me").nth(1)).to_contain_text("<b>Great</b>, thanks!")
        expect(widget(visitor).locator(".msg.me .file img")).to_be_visible()
    finally:
        visitor_context.close()


def _open_panel(context, url: str, *, tap: bool = False):
    """A shop page in `context` with the chat panel opened: (page, panel)."""
    page = context.new_page()
    page.set_default_timeout(SLOW)
    page.goto(url)
    launcher = widget(page).locator(".launcher")
    launcher.tap() if tap else launcher.click()
    return page, widget(page).locator(".panel")


def test_japanese_page_on_a_phone_gets_a_full_screen_japanese_widget(chromium: Browser, shop: str):
    context = chromium.new_context(viewport=PHONE, has_touch=True, locale="ja-JP")
    try:
        page, panel = _open_panel(context, shop + "ja.html", tap=True)
        expect(panel).to_be_visible()
        box = panel.bounding_box()
        assert box is not None and box["width"] == PHONE["width"] and box["height"] == PHONE["height"]
        expect(panel.locator("button.send")).to_have_text("送信")
    finally:
        context.close()


def test_a_scripted_visitor_gets_the_agents_reply_over_the_event_stream(server: Server, snippet: str):
    """The fake visitor (as the demo uses it) against the real server: SSE across processes."""
    key = re.search(r'data-key="([^"]+)"', snippet).group(1)  # type: ignore[union-attr]
    visitor = FakeVisitor(key=key, base_url=server.url, origin="http://127.0.0.1:9")
    visitor.start(name=f"Scripted {next(_n)}")
    sent = visitor.say("Is the shop open on Sunday?")
    after = visitor.history()["live_after"]  # as the widget does: nothing sent from here on is missed
    events: queue.Queue = queue.Queue()

    def listen() -> None:
        try:
            for kind, data in visitor.events(after=after):
                events.put((kind, data))
        except Exception as exc:  # the stream closes when the test ends
            events.put(("closed", {"error": str(exc)}))

    threading.Thread(target=listen, daemon=True).start()
    # The widget API never tells a visitor conversation ids; read it from the server's own database.
    with sqlite3.connect(server.data_dir / "madoguchi.sqlite3") as db:
        (conv_id,) = db.execute("SELECT conversation_id FROM inbox_message WHERE id = ?", [sent["id"]]).fetchone()
    try:
        reply_text = "Yes, from 10:00 to 17:00."
        server.call("reply", conversation=conv_id, email="agent1@demo.example", text=reply_text)
        while True:
            kind, data = events.get(timeout=SLOW / 1000)
            if kind == "message" and data.get("direction") == "out":
                assert data["text"] == reply_text and data["author"] == "Kenta Agent"
                break
    finally:
        visitor.close()


def test_a_hidden_shop_tab_lets_go_of_the_stream_and_shows_the_reply_when_back(chromium: Browser, server: Server, shop: str):
    name = f"Web Visitor {next(_n)}"
    context = chromium.new_context()
    try:
        visitor, panel = _open_panel(context, shop + "idle.html")
        panel.locator("input[name=name]").fill(name)
        panel.get_by_role("button", name="Start chatting").click()
        panel.locator("textarea").fill("Can I pick up my order in the shop?")
        panel.locator("textarea").press("Enter")
        expect(panel.locator(".msg.me .mark")).to_have_text("Sent")
        expect(widget(visitor).locator(".panel.live")).to_have_count(1)

        set_hidden = "h => { Object.defineProperty(document, 'hidden', {configurable: true, get: () => h}); document.dispatchEvent(new Event('visibilitychange')); }"
        visitor.evaluate(set_hidden, True)
        expect(widget(visitor).locator(".panel.live")).to_have_count(0)  # the connection is given back
        with sqlite3.connect(server.data_dir / "madoguchi.sqlite3") as db:
            (conv_id,) = db.execute(
                "SELECT conversation_id FROM inbox_message WHERE text = ? ORDER BY id DESC", ["Can I pick up my order in the shop?"]
            ).fetchone()
        server.call("reply", conversation=conv_id, email="agent1@demo.example", text="Yes, any day from 10:00.")
        visitor.evaluate(set_hidden, False)
        expect(widget(visitor).locator(".panel.live")).to_have_count(1)
        expect(panel.locator(".msg.team").last).to_contain_text("Yes, any day from 10:00.")  # replayed
    finally:
        context.close()


def test_the_try_it_page_on_the_helpdesk_itself_works(open_page, server: Server):
    """Same origin as the API: the browser sends no Origin on GET, only Sec-Fetch-Site."""
    page = open_page(f"connectors/webchat/{server.seed['accounts']['webchat']}/try/")
    widget(page).locator(".launcher").click()
    widget(page).get_by_role("button", name="Start chatting").click()
    widget(page).locator("textarea").fill("Testing the widget from the sample page")
    widget(page).locator("textarea").press("Enter")
    expect(widget(page).locator(".msg.me .mark")).to_have_text(re.compile("Sent|Read"))
    expect(widget(page).locator(".panel.live")).to_have_count(1)  # the event stream is connected
