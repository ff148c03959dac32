"""The listening stream and rule editor in a real browser: keys, live arrivals, phone layout, live preview.

The demo seed imports listening rules and replays a day of public posts (listening/fixtures/), so
the stream starts full. New posts arrive through `madoguchi listen replay` in another process:
the batch ingest path → the live event log → SSE → a "new posts" pill on the open page.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import pytest
from playwright.sync_api import Browser, Page, expect

from .conftest import PHONE
from .harness import Server, _env, log_in

pytestmark = pytest.mark.browser
SLOW = 15_000


def row_ids(page: Page) -> list[str]:
    return page.locator("tr.post").evaluate_all("rows => rows.map(r => r.dataset.id)")


def cursor_id(page: Page) -> str:
    return page.locator("tr.post.cursor").get_attribute("data-id") or ""


def test_keys_move_mark_seen_dismiss_select_and_bulk_dismiss(open_page):
    page = open_page("listening/?sort=newest")
    ids = row_ids(page)
    assert len(ids) >= 6
    assert cursor_id(page) == ids[0]
    page.keyboard.press("j")
    page.keyboard.press("j")
    assert cursor_id(page) == ids[2]
    page.keyboard.press("k")
    assert cursor_id(page) == ids[1]

    row = page.locator(f"tr.post[data-id='{ids[1]}']")
    if "status-new" in (row.get_attribute("class") or ""):
        page.keyboard.press("s")
        expect(row).to_have_class(re.compile(r"\bstatus-seen\b"), timeout=SLOW)
    page.keyboard.press("d")  # dismissed: it leaves the to-do list, the cursor moves on
    expect(row).to_have_count(0, timeout=SLOW)
    assert cursor_id(page) == ids[2]

    page.keyboard.press("x")
    page.keyboard.press("j")
    page.keyboard.press("x")
    expect(page.locator("#stream-bulk")).to_be_visible()
    expect(page.locator("#stream-bulk .n")).to_have_text("2")
    page.keyboard.press("Shift+D")
    page.wait_for_load_state()
    expect(page.locator(f"tr.post[data-id='{ids[2]}']")).to_have_count(0, timeout=SLOW)
    expect(page.locator(f"tr.post[data-id='{ids[3]}']")).to_have_count(0)
    assert ids[0] in row_ids(page)

    page.keyboard.press("?")
    expect(page.locator("#listen-help")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#listen-help")).to_be_hidden()


def test_a_dismissal_by_mistake_is_undone_with_u(open_page):
    page = open_page("listening/?sort=newest")
    ids = row_ids(page)
    page.keyboard.press("j")
    row = page.locator(f"tr.post[data-id='{ids[1]}']")
    page.keyboard.press("d")
    expect(row).to_have_count(0, timeout=SLOW)
    expect(page.locator("#undo-bar")).to_be_visible()
    expect(page.locator("#undo-bar")).to_contain_text("Post dismissed.")
    page.keyboard.press("u")
    expect(row).to_have_count(1, timeout=SLOW)  # back where it was, as seen, with its buttons
    expect(page.locator("#undo-bar")).to_be_hidden()
    assert row_ids(page)[:3] == ids[:3] and cursor_id(page) == ids[1]
    expect(row.locator(".state")).to_have_text("Seen")
    expect(row.locator("form.dismiss")).to_have_count(1)

    page.keyboard.press("x")
    page.keyboard.press("j")
    page.keyboard.press("x")
    page.keyboard.press("Shift+D")  # a bulk dismissal: the page comes back offering to undo it
    expect(page.locator("#undo-bar")).to_contain_text("2 posts dismissed.", timeout=SLOW)
    expect(page.locator(f"tr.post[data-id='{ids[1]}']")).to_have_count(0)
    page.locator("#undo-bar button").click()
    expect(page.locator(f"tr.post[data-id='{ids[1]}']")).to_have_count(1, timeout=SLOW)
    expect(page.locator(f"tr.post[data-id='{ids[2]}']")).to_have_count(1)
    expect(page.locator(".flash")).to_contain_text("2 posts are back on the stream")
    page.locator(".flash div").first.click()  # a notice closes when tapped
    expect(page.locator(".flash div")).to_have_count(0)


def test_new_posts_arrive_live_as_a_pill_and_the_list_stays_put(open_page, server: Server, tmp_path):
    page = open_page("listening/?sort=newest")
    before = row_ids(page)
    stamp = int(time.time())
    path = tmp_path / "new.jsonl"
    path.write_text(
        "\n".join(
            json.dumps({"id": f"live-{stamp}-{i}", "channel": "x", "author": f"live{i}", "text": text,
                        "created_at": "2026-11-23T09:00:00+09:00", "lang": "ja"}, ensure_ascii=False)
            for i, text in enumerate(["ソラネットがまた繋がらない", "ソラネットの料金プランを教えて", "今日は晴れ"])
        ),
        encoding="utf-8",
    )
    subprocess.run(
        [sys.executable, "-m", "madoguchi.cli", "listen", "replay", str(path), "--workspace", "Demo"],
        env=_env(server.data_dir), check=True, capture_output=True,
    )
    pill = page.locator("#new-posts")
    expect(pill).to_be_visible(timeout=SLOW)
    expect(pill).to_contain_text("2")  # the third post matches no rule
    assert row_ids(page) == before  # nothing jumped
    pill.click()
    expect(page.locator("tr.post", has_text="ソラネットがまた繋がらない")).to_be_visible(timeout=SLOW)


def test_stream_and_rules_fit_a_phone(open_page):
    page = open_page("listening/", viewport=PHONE, has_touch=True)
    expect(page.locator("tr.post").first).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    respond = page.locator("tr.post").first.get_by_role("button", name="Respond")
    assert respond.bounding_box()["height"] >= 44
    page.goto(page.url.split("listening/")[0] + "listening/rules/")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_manager_sees_a_live_preview_and_inline_errors_while_typing(chromium: Browser, server: Server):
    context = chromium.new_context()
    try:
        log_in(context, server, "manager@demo.example").close()
        page = context.new_page()
        page.set_default_timeout(SLOW)
        page.goto(server.url + "listening/rules/new/")
        page.fill("textarea[name=any_of]", "ソラネット")
        box = page.locator("#rule-preview")
        expect(box).to_have_attribute("data-count", re.compile(r"^[1-9]"), timeout=SLOW)  # set by the answer
        count = int(box.get_attribute("data-count") or 0)
        assert count > 0
        expect(page.locator("#rule-preview .sample li").first).to_contain_text("ソラネット")
        page.fill("input[name=languages]", "japanese!")
        expect(page.locator("[data-errors-for=languages]")).to_contain_text("japanese!", timeout=SLOW)
        page.fill("input[name=languages]", "")
        expect(page.locator("[data-errors-for=languages]")).to_be_hidden(timeout=SLOW)
        expect(box).to_have_attribute("data-count", str(count), timeout=SLOW)
        page.fill("textarea[name=none_of]", "料金")
        expect(box).not_to_have_attribute("data-count", str(count), timeout=SLOW)
        expect(box).to_have_attribute("data-count", re.compile(r"^\d+$"), timeout=SLOW)
        assert int(box.get_attribute("data-count") or 0) < count
    finally:
        context.close()
