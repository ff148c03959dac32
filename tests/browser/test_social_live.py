"""Social channels live in a real browser: a mention on the fake X and a comment on the fake
Facebook Page arrive in the inbox without a reload, the agent answers both in the UI, and each
fake receives a reply threaded to the right post (X `in_reply_to_tweet_id`) or comment (Facebook
`POST /{comment-id}/comments`). The server and worker are real processes (harness.py); the fakes
run in this process and the worker calls them over loopback."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from madoguchi.connectors.facebook.fake import FakeGraph
from madoguchi.connectors.x.fake import FakeX

from .harness import Server, _env

pytestmark = [pytest.mark.browser, pytest.mark.slow]
_n = itertools.count(1)

# Creates the two channel accounts in the server's database, pointing at the fakes.
SEED = """
import json, sys, django
django.setup()
from madoguchi.accounts.models import Brand
from madoguchi.connectors.models import ChannelAccount
spec = json.loads(sys.argv[1])
brand = Brand.objects.filter(workspace__slug="demo").order_by("pk").first()
ids = {}
for kind, name, config, secrets in spec:
    account, _ = ChannelAccount.objects.update_or_create(
        workspace=brand.workspace, kind=kind, name=name,
        defaults={"brand": brand, "config": config, "secrets": secrets, "handle": name.lstrip("@")},
    )
    ids[kind] = account.pk
print(json.dumps(ids))
"""


@pytest.fixture(scope="module")
def fakes(server: Server) -> Iterator[tuple[FakeX, FakeGraph, dict[str, int]]]:
    fake_x = FakeX().start()
    fake_fb = FakeGraph().start()
    x_config, x_secrets = fake_x.account_settings()
    fb_config, fb_secrets = fake_fb.account_settings()
    spec = [["x", "@AcmeSupport (live test)", x_config, x_secrets], ["facebook", "Acme Page (live test)", fb_config, fb_secrets]]
    done = subprocess.run([sys.executable, "-c", SEED, json.dumps(spec)], env=_env(server.data_dir), check=True, capture_output=True, text=True)
    ids = json.loads(done.stdout.strip().splitlines()[-1])
    yield fake_x, fake_fb, ids
    fake_x.stop()
    fake_fb.stop()


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
    """Wait for the worker (another process) to call a fake; fail with `what` if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def answer_in_the_ui(page: Page, name: str, text: str) -> None:
    row = page.locator("#conv-list .conv-item", has_text=name)
    expect(row).to_be_visible()
    row.locator("a.conv-link").click()
    expect(page.locator("#thread")).to_contain_text(name.split()[0])
    page.locator("#reply-text").fill(text)
    page.locator("#reply-text").press("Control+Enter")
    expect(page.locator("#thread .msg-out", has_text=text)).to_be_visible()


def test_a_mention_on_x_and_a_facebook_comment_arrive_live_and_the_replies_thread_right(open_page, server: Server, fakes):
    fake_x, fake_fb, ids = fakes
    page = open_page("inbox/?view=todo")
    expect(page.locator("#live-dot.on")).to_be_visible()
    page.evaluate("window.__notReloaded = true")

    # A customer mentions the brand on X; X's Account Activity webhook pushes it.
    n = next(_n)
    x_name = f"Riku Mori {n}"
    x_user = str(7_000_000 + n)
    fake_x.add_user(x_user, f"riku{n}", x_name, followers=820)
    tweet = fake_x.post(x_user, f"@AcmeSupport アプリにログインできません ({n})")
    body, signature = fake_x.activity(tweets=[tweet])
    response = httpx.post(f"{server.url}connectors/x/{ids['x']}/webhook/", content=body, headers={"content-type": "application/json", "x-twitter-webhooks-signature": signature})
    assert response.status_code == 200

    # A customer comments on the page's post; Meta's signed feed webhook pushes it.
    fb_name = f"Hana Kobayashi {n}"
    fb_user = str(9_100_000_000 + n)
    fake_fb.add_user(fb_user, fb_name)
    post_id = fake_fb.page_post("冬のセールを開始しました")["id"]
    comment = fake_fb.comment(fb_user, post_id, f"クーポンコードが使えません ({n})")
    assert fake_fb.deliver(f"{server.url}connectors/facebook/{ids['facebook']}/webhook/", fake_fb.feed(comment)).status_code == 200

    for name in (x_name, fb_name):
        expect(page.locator("#conv-list .conv-item", has_text=name)).to_be_visible()
    assert page.evaluate("window.__notReloaded") is True, "the page reloaded instead of updating live"

    answer_in_the_ui(page, x_name, f"ご不便をおかけしております。DMで詳細をお送りください ({n})")
    answer_in_the_ui(page, fb_name, f"ご迷惑をおかけしました。新しいコードをお送りします ({n})")

    posted = wait_for(lambda: [p for p in fake_x.posted if f"({n})" in p["text"]], "the reply on the fake X")
    assert posted[0]["in_reply_to_tweet_id"] == tweet["id"]
    replied = wait_for(lambda: [r for r in fake_fb.replies if f"({n})" in r["message"]], "the reply on the fake Facebook")
    assert replied[0]["to"] == comment["comment_id"] and replied[0]["edge"] == "comments"
    expect(page.locator("#thread .msg-out .delivery").last).to_have_text("Sent", timeout=15_000)
